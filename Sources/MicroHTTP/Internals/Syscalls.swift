#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The POSIX calls of the HTTP layer. libmicrohttpd's own calls live in MHDDaemon.swift.

func sysconfProcessors() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// setrlimit(RLIMIT_NOFILE) to the hard limit. On Linux the hard limit is finite (at most
/// /proc/sys/fs/nr_open); an infinite one (RLIM_INFINITY, all ones, which Swift does not import) is capped at 2^20, which setrlimit would otherwise refuse.
func raiseOpenFileLimitToHard() -> (before: Int, now: Int, hard: Int) {
    var limits = rlimit()
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limits) == 0 else { return (1024, 1024, 1024) }
    let before = limits.rlim_cur
    let hard = limits.rlim_max == rlim_t.max ? rlim_t(1 << 20) : limits.rlim_max
    if before < hard {
        var raised = limits
        raised.rlim_cur = hard
        if setrlimit(resource, &raised) == 0 {
            limits = raised
        }
    }
    func count(_ value: rlim_t) -> Int { value > rlim_t(Int.max) ? Int.max : Int(value) }
    return (count(before), count(limits.rlim_cur), count(hard))
}

func loopbackAddress(_ text: String) -> Bool? {
    var ipv4 = in_addr()
    if inet_pton(AF_INET, text, &ipv4) == 1 {
        return UInt32(bigEndian: ipv4.s_addr) >> 24 == 127
    }
    var ipv6 = in6_addr()
    guard inet_pton(AF_INET6, text, &ipv6) == 1 else { return nil }
    let bytes = withUnsafeBytes(of: ipv6) { Array($0) }
    let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
    let mappedIPv4 = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    return loopback || (mappedIPv4 && bytes[12] == 127)
}

func errorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// A bound, listening TCP socket.
struct ListenSocket {
    let descriptor: Int32
    let port: Int

    /// Resolves `host` numerically (no DNS), binds with `SO_REUSEADDR` and listens.
    static func open(host: String, port: Int, backlog: Int32 = 1024) throws(HTTPServerError) -> ListenSocket {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw .invalidAddress(host)
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw .bindFailed(host, port, errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .bindFailed(host, port, errno: code)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        var boundPort = port
        if bound == 0 {
            if Int32(storage.ss_family) == AF_INET6 {
                boundPort = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
            } else {
                boundPort = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
            }
        }
        return ListenSocket(descriptor: fd, port: boundPort)
    }

    func close() {
        _ = Glibc.close(self.descriptor)
    }
}

/// Makes writes to a closed socket fail with EPIPE instead of killing the process.
func ignoreSIGPIPE() {
    signal(SIGPIPE, SIG_IGN)
}
