#if canImport(Glibc)
import Glibc
#endif

/// Why a client call failed below HTTP.
public struct ClientError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Whether the call ran out of time (a deadline or the socket timeout): the server may still
    /// act on the request, so it must not be sent again blindly.
    public let timedOut: Bool

    public init(_ message: String, timedOut: Bool = false) {
        self.message = message
        self.timedOut = timedOut
    }

    public var description: String { self.message }

    static func system(_ what: String) -> ClientError {
        ClientError("\(what): \(String(cString: strerror(errno)))")
    }
}

/// A response as received.
public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return self.headers.first(where: { $0.name.lowercased() == lower })?.value
    }

    public var text: String { String(decoding: self.body, as: UTF8.self) }
}

/// One HTTP/1.1 connection with keep-alive, blocking, over a POSIX socket. Small on purpose: the
/// tests need to control the bytes on the wire (slow clients, oversized heads, half-sent bodies),
/// and the CLI needs nothing more.
///
/// Not thread-safe: use one connection per thread.
public final class HTTPConnection {
    public let host: String
    public let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private let timeoutSeconds: Int
    /// When set, no call waits past it: a receive or send that would is a `timedOut` error.
    public var deadline: ContinuousClock.Instant?
    /// Bodies from this size on are sent after `Expect: 100-continue`, so that a refusal (a 413 for a
    /// body over the server's limit) is read before the body is sent, instead of a broken pipe.
    public static let expectContinueBytes = 64 * 1024

    /// Connects.
    /// - Parameters:
    ///   - host: A numeric IPv4 or IPv6 address.
    ///   - port: The TCP port.
    ///   - timeoutSeconds: Receive and send timeout per call.
    ///   - sourceAddress: Local address to bind before connecting (e.g. `127.0.0.2`, to appear as
    ///     another client to per-address limits).
    public init(host: String = "127.0.0.1", port: Int, timeoutSeconds: Int = 30, sourceAddress: String? = nil) throws(ClientError) {
        self.host = host
        self.port = port
        self.timeoutSeconds = timeoutSeconds
        try self.connect(sourceAddress: sourceAddress)
    }

    deinit {
        self.close()
    }

    public var isOpen: Bool { self.fd >= 0 }

    private func connect(sourceAddress: String?) throws(ClientError) {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(self.host, String(self.port), &hints, &result) == 0, let info = result else {
            throw ClientError("cannot resolve \(self.host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw .system("socket") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: self.timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let sourceAddress {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, sourceAddress, &local.sin_addr)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                Glibc.close(fd)
                throw .system("bind \(sourceAddress)")
            }
        }
        guard Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = ClientError.system("connect \(self.host):\(self.port)")
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
    }

    public func close() {
        if self.fd >= 0 {
            Glibc.close(self.fd)
            self.fd = -1
        }
        self.buffer.removeAll()
    }

    /// Sends a request and reads its response.
    public func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws(ClientError) -> ClientResponse {
        guard let body, body.count >= Self.expectContinueBytes else {
            try self.send(Self.encode(method, target, host: "\(self.host):\(self.port)", headers: headers, body: body))
            return try self.readResponse(method: method)
        }
        // The head first; the body only after 100 Continue (or a second of silence, RFC 9110 §10.1.1).
        // A server that refuses on the head (413) answers at once and closes: that answer is returned.
        let head = Self.encode(method, target, host: "\(self.host):\(self.port)", headers: headers + [("Content-Length", String(body.count)), ("Expect", "100-continue")], body: [])
        try self.send(head)
        if self.waitForData(milliseconds: 1000) {
            let early = try self.readResponse(method: method)
            if early.status != 100 {
                self.close()
                return early
            }
        }
        do {
            try self.send(body)
        } catch {
            // The server may have answered and closed while the body went out: read that answer.
            if let answer = try? self.readResponse(method: method) { return answer }
            throw error
        }
        return try self.readResponse(method: method)
    }

    /// Whether bytes (or the end of the stream) arrive within `milliseconds`, or are buffered already.
    private func waitForData(milliseconds: Int32) -> Bool {
        guard self.buffer.isEmpty else { return true }
        guard self.fd >= 0 else { return false }
        var descriptor = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    /// The bytes of a request.
    public static func encode(_ method: String, _ target: String, host: String, headers: [(String, String)] = [], body: [UInt8]?) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers {
            head += "\(name): \(value)\r\n"
        }
        if let body, !headers.contains(where: { $0.0.lowercased() == "content-length" || $0.0.lowercased() == "transfer-encoding" }) {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    /// Writes raw bytes.
    public func send(_ bytes: [UInt8]) throws(ClientError) {
        guard self.fd >= 0 else { throw ClientError("connection closed") }
        var offset = 0
        while offset < bytes.count {
            if let deadline = self.deadline {
                var descriptor = pollfd(fd: self.fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&descriptor, 1, Self.milliseconds(until: deadline)) > 0 else {
                    throw ClientError("timed out sending to the server", timedOut: true)
                }
            }
            let sent = bytes.withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw .system("send")
            }
            offset += sent
        }
    }

    /// Reads one response. `method` matters for HEAD, whose response has no body.
    public func readResponse(method: String = "GET") throws(ClientError) -> ClientResponse {
        let headEnd = try self.fill(until: { buffer in Self.find(buffer, [13, 10, 13, 10]) })
        let head = String(decoding: self.buffer[0..<headEnd], as: UTF8.self)
        self.buffer.removeFirst(headEnd + 4)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw ClientError("empty response") }
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError("bad status line") }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingLeadingSpaces()))
        }
        var response = ClientResponse(status: status, headers: headers, body: [])
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            return response
        }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            _ = try self.fill(until: { $0.count >= length ? length : nil })
            response.body = Array(self.buffer[0..<length])
            self.buffer.removeFirst(length)
        } else if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            response.body = try self.readChunked()
        } else {
            // Until the server closes.
            while true {
                let count = try self.receive()
                if count == 0 { break }
            }
            response.body = self.buffer
            self.buffer.removeAll()
            self.close()
        }
        if response.header("Connection")?.lowercased() == "close" {
            self.close()
        }
        return response
    }

    /// Sends a GET and hands its body to `consume` piece by piece as it arrives (chunked or with a
    /// length), so that a large answer never sits in memory whole. A non-2xx answer is read whole
    /// and returned with its body; a 2xx one returns with an empty body.
    /// - Returns: The response (status and headers).
    public func stream(
        _ target: String, headers: [(String, String)] = [], consume: ([UInt8]) throws(ClientError) -> Void
    ) throws(ClientError) -> ClientResponse {
        try self.send(Self.encode("GET", target, host: "\(self.host):\(self.port)", headers: headers, body: nil))
        let headEnd = try self.fill(until: { buffer in Self.find(buffer, [13, 10, 13, 10]) })
        let head = String(decoding: self.buffer[0..<headEnd], as: UTF8.self)
        self.buffer.removeFirst(headEnd + 4)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.isEmpty ? [] : lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError("bad status line") }
        var response = ClientResponse(status: status, headers: [], body: [])
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            response.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingLeadingSpaces()))
        }
        func deliver(_ bytes: [UInt8]) throws(ClientError) {
            if (200..<300).contains(status) { try consume(bytes) } else { response.body.append(contentsOf: bytes) }
        }
        /// Hands the next `count` body bytes over as they arrive.
        func pass(_ count: Int) throws(ClientError) {
            var left = count
            while left > 0 {
                if self.buffer.isEmpty, try self.receive() == 0 { throw ClientError("connection closed by the server mid-body") }
                let take = min(left, self.buffer.count)
                try deliver(Array(self.buffer[0..<take]))
                self.buffer.removeFirst(take)
                left -= take
            }
        }
        if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            while true {
                let lineEnd = try self.fill(until: { Self.find($0, [13, 10]) })
                let sizeText = String(decoding: self.buffer[0..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                self.buffer.removeFirst(lineEnd + 2)
                guard let size = Int(sizeText.trimmingLeadingSpaces(), radix: 16), size >= 0 else { throw ClientError("bad chunk size") }
                try pass(size)
                _ = try self.fill(until: { $0.count >= 2 ? 2 : nil })
                self.buffer.removeFirst(2)
                if size == 0 { break }
            }
        } else if let length = response.header("Content-Length").flatMap(Int.init) {
            try pass(length)
        } else {
            throw ClientError("a streamed answer needs chunked encoding or a length")
        }
        if response.header("Connection")?.lowercased() == "close" {
            self.close()
        }
        return response
    }

    private func readChunked() throws(ClientError) -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let lineEnd = try self.fill(until: { Self.find($0, [13, 10]) })
            let sizeText = String(decoding: self.buffer[0..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            self.buffer.removeFirst(lineEnd + 2)
            guard let size = Int(sizeText.trimmingLeadingSpaces(), radix: 16) else { throw ClientError("bad chunk size") }
            _ = try self.fill(until: { $0.count >= size + 2 ? size : nil })
            body.append(contentsOf: self.buffer[0..<size])
            self.buffer.removeFirst(size + 2)
            if size == 0 { return body }
        }
    }

    /// Receives until `done` finds what it needs in the buffer; returns what `done` returned.
    private func fill(until done: ([UInt8]) -> Int?) throws(ClientError) -> Int {
        while true {
            if let found = done(self.buffer) { return found }
            if try self.receive() == 0 { throw ClientError("connection closed by the server") }
        }
    }

    /// Reads what is available into the buffer; 0 at end of stream.
    @discardableResult
    public func receive() throws(ClientError) -> Int {
        guard self.fd >= 0 else { throw ClientError("connection closed") }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let deadline = self.deadline {
                var descriptor = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Self.milliseconds(until: deadline))
                if ready < 0, errno == EINTR { continue }
                guard ready > 0 else { throw ClientError("timed out waiting for the server", timedOut: true) }
            }
            let count = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw ClientError("timed out waiting for the server", timedOut: true) }
                throw .system("recv")
            }
            self.buffer.append(contentsOf: chunk[0..<count])
            return count
        }
    }

    /// Whether the server closed the connection (waits up to `seconds` for an end of stream).
    public func waitForClose(seconds: Int) -> Bool {
        guard self.fd >= 0 else { return true }
        var descriptor = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(seconds * 1000))
        guard ready > 0 else { return false }
        var byte: UInt8 = 0
        let count = recv(self.fd, &byte, 1, Int32(MSG_PEEK))
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    /// Milliseconds from now until `deadline`, 0 once it has passed (for poll).
    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(min(Int64(Int32.max), seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
    }

    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}

extension Substring {
    func trimmingLeadingSpaces() -> String {
        String(self.drop(while: { $0 == " " || $0 == "\t" }))
    }
}

extension String {
    func trimmingLeadingSpaces() -> String {
        Substring(self).trimmingLeadingSpaces()
    }
}
