import CMicroHTTPD
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// The only file that calls libmicrohttpd. Everything above it sees HTTPRequest and HTTPResponse.

/// Shared by every libmicrohttpd callback of one daemon; handed to C as an unretained pointer whose
/// lifetime `MHDDaemon` guarantees (retained from start until after `MHD_stop_daemon`).
final class ServerCore: Sendable {
    let router: Router
    let configuration: ServerConfiguration
    let observer: (any HTTPServerObserver)?
    let logger: Logger
    let inFlight = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    /// Requests whose handler deferred its response, so that a stop can answer and resume them:
    /// libmicrohttpd aborts if it is stopped with a suspended connection.
    let suspended = Mutex(SuspendedConnections())

    init(router: Router, configuration: ServerConfiguration, observer: (any HTTPServerObserver)?, logger: Logger) {
        self.router = router
        self.configuration = configuration
        self.observer = observer
        self.logger = logger
    }
}

/// The suspended connections of a daemon and whether libmicrohttpd may still be called for them.
///
/// One lock covers the table and the calls to `MHD_suspend_connection` and `MHD_resume_connection`,
/// so that an entry leaves the table only once its connection has been resumed, and `stop` can close
/// the table when it is empty: after that no connection is suspended, and a completion that arrives
/// late (the store acknowledging after the daemon was stopped) finds its entry gone and touches nothing.
struct SuspendedConnections: ~Copyable {
    private var contexts: [ObjectIdentifier: RequestContext] = [:]
    /// Set by `stop` just before `MHD_stop_daemon`; nothing is suspended or resumed after.
    private(set) var closed = false

    /// Suspends the connection, unless the daemon is stopping. Called on the connection's thread.
    /// - Returns: false when the table is closed and the request must be answered at once instead.
    mutating func suspend(_ context: RequestContext) -> Bool {
        guard !self.closed else { return false }
        self.contexts[ObjectIdentifier(context)] = context
        MHD_suspend_connection(context.connection)
        return true
    }

    /// Resumes the connection if it is still suspended here; from any thread.
    mutating func resume(_ context: RequestContext) {
        guard self.contexts.removeValue(forKey: ObjectIdentifier(context)) != nil else { return }
        MHD_resume_connection(context.connection)
    }

    /// The connections still suspended; when there are none, closes the table instead.
    mutating func waitingOrClose() -> [RequestContext] {
        if self.contexts.isEmpty {
            self.closed = true
        }
        return Array(self.contexts.values)
    }
}

/// Where a deferred response stands. Transitions happen under the context's lock.
enum PendingState {
    case none
    /// The handler's start closure is still running on the server thread.
    case running
    /// Completed before the server thread suspended the connection.
    case ready(HTTPResponse)
    case suspended
    /// Completed while suspended; the connection was resumed and will send this.
    case resumed(HTTPResponse)
    case done
}

/// Per-request state kept in libmicrohttpd's `*con_cls` from the first call to the completion
/// callback, which releases it.
///
/// `@unchecked Sendable`: libmicrohttpd calls the handler for one connection from one thread at a time,
/// so the plain fields are never touched concurrently; the only field another thread reaches (a
/// deferred completion) is `pending`, which is a Mutex.
final class RequestContext: @unchecked Sendable {
    let start: ContinuousClock.Instant
    let connection: OpaquePointer
    var request: HTTPRequest
    var route: Route?
    var early: HTTPResponse?
    var status = 0
    let pending = Mutex<PendingState>(.none)

    init(connection: OpaquePointer, request: HTTPRequest) {
        self.start = .now
        self.connection = connection
        self.request = request
    }
}

/// A running libmicrohttpd daemon.
final class MHDDaemon: @unchecked Sendable {
    // @unchecked: `daemon` and `listen` are set once in init and read by `stop`, which the owner calls once.
    private let daemon: OpaquePointer
    private let listen: ListenSocket
    private let core: ServerCore
    private let coreReference: Unmanaged<ServerCore>

    var port: Int { self.listen.port }

    init(core: ServerCore) throws(HTTPServerError) {
        ignoreSIGPIPE()
        let configuration = core.configuration
        let listen = try ListenSocket.open(host: configuration.host, port: configuration.port)
        let reference = Unmanaged.passRetained(core)
        var settings = carma_mhd_settings(
            flags: MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
                | MHD_USE_ERROR_LOG.rawValue,
            listen_fd: listen.descriptor,
            thread_pool_size: UInt32(max(1, configuration.threads)),
            connection_timeout_seconds: UInt32(max(0, configuration.connectionTimeoutSeconds)),
            connection_limit: UInt32(max(1, configuration.maxConnections)),
            per_ip_connection_limit: UInt32(max(0, configuration.maxConnectionsPerIP)),
            // The pool also holds the response's header buffer: with 2 KiB beyond the request-head limit,
            // every head up to the limit is answered. (A head that fills the whole pool leaves
            // libmicrohttpd 0.9.75 no room even for its 431, and it closes the connection instead.)
            connection_memory_limit: max(4096, configuration.maxHeaderBytes) + 2048,
            // Not strict: at 1, libmicrohttpd 0.9.75 answers a request without Host with a 400 whose
            // head is sent twice (measured). RequestHead makes that check and the others instead.
            strict_for_client: 0
        )
        guard let daemon = carma_mhd_start(&settings, accessHandler, reference.toOpaque(), completedHandler, reference.toOpaque()) else {
            reference.release()
            listen.close()
            throw .daemonFailed
        }
        self.daemon = daemon
        self.listen = listen
        self.core = core
        self.coreReference = reference
    }

    /// Stops accepting, lets requests in flight finish until the deadline, answers what is still
    /// waiting with 503 and resumes it, then stops the daemon and closes the listening socket. Blocks.
    func stop(drainTimeout: Duration) {
        self.core.draining.store(true, ordering: .relaxed)
        _ = MHD_quiesce_daemon(self.daemon)
        let clock = ContinuousClock()
        let deadline = clock.now + drainTimeout
        while self.core.inFlight.load(ordering: .relaxed) > 0, clock.now < deadline {
            usleep(5_000)
        }
        // Every suspended connection is resumed before MHD_stop_daemon, which aborts on one still
        // suspended. A context whose completion is racing us (already `.resumed`, not yet out of the
        // table) is left to that completion; the loop ends once the table is empty and closed.
        var answered = 0
        while true {
            let waiting = self.core.suspended.withLock { $0.waitingOrClose() }
            if waiting.isEmpty { break }
            for context in waiting where complete(context, with: shuttingDown, core: self.core) {
                answered += 1
            }
            usleep(1_000)
        }
        if answered > 0 {
            self.core.logger.warning("answered requests still waiting at shutdown with 503", metadata: ["http.requests": "\(answered)"])
        }
        // Resumed connections send their answers from the pool threads; give them a moment to go out
        // before the daemon closes every connection.
        let last = clock.now + .seconds(2)
        while self.core.inFlight.load(ordering: .relaxed) > 0, clock.now < last {
            usleep(5_000)
        }
        MHD_stop_daemon(self.daemon)
        self.listen.close()
        self.coreReference.release()
    }
}

/// The answer to a request that cannot be served because the server is stopping.
private let shuttingDown = HTTPResponse.problem(
    503, type: "shutting-down", title: "The server is shutting down", headers: ["Retry-After": "5"])

// MARK: - Callbacks

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, version, uploadData, uploadDataSize, conCls in
    guard let cls, let connection, let url, let method, let uploadDataSize, let conCls else { return .NO }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    return access(
        core: core, connection: connection, url: url, method: method, version: version, uploadData: uploadData, uploadDataSize: uploadDataSize,
        conCls: conCls)
}

private let completedHandler: MHD_RequestCompletedCallback = { cls, _, conCls, termination in
    guard let cls, let conCls, let raw = conCls.pointee else { return }
    conCls.pointee = nil
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let context = Unmanaged<RequestContext>.fromOpaque(raw).takeRetainedValue()
    core.inFlight.subtract(1, ordering: .relaxed)
    let status = termination == .REQUEST_TERMINATED_COMPLETED_OK ? context.status : 0
    let route = context.route?.template.description ?? (context.request.route.isEmpty ? "unmatched" : context.request.route)
    core.observer?.requestFinished(route: route, method: context.request.method, status: status, duration: ContinuousClock.now - context.start)
}

/// Collects header fields or query arguments into a Swift array passed as `cls`.
private let collectValues: MHD_KeyValueIterator = { cls, _, key, value in
    guard let cls, let key else { return .YES }
    let box = cls.assumingMemoryBound(to: [(name: String, value: String)].self)
    box.pointee.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}

// MARK: - The access-handler protocol

private func access(
    core: ServerCore,
    connection: OpaquePointer,
    url: UnsafePointer<CChar>,
    method: UnsafePointer<CChar>,
    version: UnsafePointer<CChar>?,
    uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>,
    conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>
) -> MHD_Result {
    guard let raw = conCls.pointee else {
        // First call: the head only. Set up, decide early rejections, and wait for the body.
        core.inFlight.add(1, ordering: .relaxed)
        let context = begin(core: core, connection: connection, url: url, method: method, version: version)
        conCls.pointee = Unmanaged.passRetained(context).toOpaque()
        if let early = context.early, context.bodyAnnounced || early.headers["Connection"] == "close" {
            // Reject before reading a body the client announced; libmicrohttpd closes the connection.
            context.early = nil
            var response = early
            response.headers.set("Connection", "close")
            return queue(response, context: context, core: core)
        }
        return .YES
    }
    let context = Unmanaged<RequestContext>.fromOpaque(raw).takeUnretainedValue()
    if uploadDataSize.pointee > 0 {
        // A body chunk. Content-Length was checked against the limit on the first call and
        // libmicrohttpd delivers no more than it announced, but keep the bound explicit.
        let count = uploadDataSize.pointee
        guard context.request.body.count + count <= core.configuration.maxBodyBytes else { return .NO }
        if let uploadData, context.early == nil, context.route?.body.acceptsBody ?? false {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: count) {
                context.request.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }
    // Final call: the whole request is here (or a suspended request was resumed).
    let resumed: HTTPResponse? = context.pending.withLock { state in
        if case .resumed(let response) = state {
            state = .done
            return response
        }
        return nil
    }
    if let resumed {
        return queue(resumed, context: context, core: core)
    }
    if let early = context.early {
        return queue(early, context: context, core: core)
    }
    guard let route = context.route else {
        return queue(.problem(500, type: "internal", title: "No route"), context: context, core: core)
    }
    switch route.handler(context.request) {
    case .response(let response):
        return queue(response, context: context, core: core)
    case .deferred(let start):
        context.pending.withLock { $0 = .running }
        start { [context] response in complete(context, with: response, core: core) }
        let ready: HTTPResponse? = context.pending.withLock { state in
            switch state {
            case .ready(let response):
                state = .done
                return response
            case .running:
                guard core.suspended.withLock({ $0.suspend(context) }) else {
                    // The server is stopping and can resume nothing more: answer now.
                    state = .done
                    return shuttingDown
                }
                state = .suspended
                return nil
            default:
                return nil
            }
        }
        if let ready {
            return queue(ready, context: context, core: core)
        }
        return .YES
    }
}

/// Delivers a deferred response, from any thread; only the first completion counts.
/// - Returns: Whether this completion was the one that counted.
@discardableResult
private func complete(_ context: RequestContext, with response: HTTPResponse, core: ServerCore) -> Bool {
    let outcome: (counted: Bool, resume: Bool) = context.pending.withLock { state in
        switch state {
        case .running:
            state = .ready(response)
            return (true, false)
        case .suspended:
            state = .resumed(response)
            return (true, true)
        default:
            return (false, false)
        }
    }
    if outcome.resume {
        // Resumed under the table's lock and removed only then, so that `stop` cannot find the table
        // empty while this connection is still suspended; after `stop`, the entry is gone and this
        // does nothing.
        core.suspended.withLock { $0.resume(context) }
    }
    return outcome.counted
}

extension RequestContext {
    /// Whether the client said a body follows, so that an early answer must close the connection.
    var bodyAnnounced: Bool {
        if self.request.headers["Transfer-Encoding"] != nil { return true }
        if let length = self.request.headers["Content-Length"], let value = Int(length), value > 0 { return true }
        return false
    }
}

private func begin(
    core: ServerCore, connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>, version: UnsafePointer<CChar>?
) -> RequestContext {
    var headerFields: [(name: String, value: String)] = []
    headerFields.reserveCapacity(8)
    _ = withUnsafeMutablePointer(to: &headerFields) { MHD_get_connection_values(connection, .HEADER_KIND, collectValues, $0) }
    let path = String(cString: url)
    // Before routing, so that a smuggled request is refused (and its connection closed) whatever its path.
    let headProblem = RequestHead.problem(version: version.map { String(cString: $0) } ?? "", fields: headerFields)
    var request = HTTPRequest(method: HTTPMethod(rawValue: String(cString: method)), path: path, headers: HTTPHeaders(fields: headerFields))
    var route: Route?
    let early = headProblem ?? resolve(&request, route: &route, connection: connection, core: core)
    if let length = request.headers["Content-Length"].flatMap(Int.init), length > 0, early == nil, route?.body.acceptsBody == true {
        request.body.reserveCapacity(length)
    }
    // The request is complete here and moves into the context (built once, not copied field by field).
    let context = RequestContext(connection: connection, request: request)
    context.route = route
    context.early = early
    return context
}

/// Decodes the query and finds the route; returns the answer to send at once, if any.
private func resolve(_ request: inout HTTPRequest, route: inout Route?, connection: OpaquePointer, core: ServerCore) -> HTTPResponse? {
    var rawArguments: [(name: String, value: String)] = []
    _ = withUnsafeMutablePointer(to: &rawArguments) { MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, collectValues, $0) }
    for (name, value) in rawArguments {
        guard let name = PercentEncoding.decode(Substring(name), plusIsSpace: true),
            let value = PercentEncoding.decode(Substring(value), plusIsSpace: true)
        else {
            return .problem(400, type: "malformed-query", title: "Malformed query string", detail: "a query argument is not valid percent-encoded UTF-8")
        }
        request.query.append((name, value))
    }

    switch core.router.resolve(request.method, path: request.path) {
    case .notFound:
        return .problem(404, type: "not-found", title: "Not found", detail: "no resource at this path")
    case .malformedPath(let template):
        request.route = template
        return .problem(400, type: "malformed-path", title: "Malformed path", detail: "a path segment is not valid percent-encoded UTF-8")
    case .methodNotAllowed(let template, let allowed):
        request.route = template
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        return .problem(
            405, type: "method-not-allowed", title: "Method not allowed",
            detail: "\(request.method) is not allowed here; allowed: \(allow)", headers: ["Allow": allow])
    case .found(let found, let parameters):
        request.route = found.template.description
        request.pathParameters = parameters
        route = found
        return checkHead(request, route: found, core: core)
    }
}

/// The checks that need only the head: body length and type against the route's policy, then the
/// route's own preflight (authorization).
private func checkHead(_ request: HTTPRequest, route: Route, core: ServerCore) -> HTTPResponse? {
    let headers = request.headers
    let chunked = headers["Transfer-Encoding"] != nil
    let contentLength = headers["Content-Length"]
    var length = 0
    if let contentLength {
        guard let value = Int(contentLength), value >= 0 else {
            return .problem(400, type: "malformed-content-length", title: "Malformed Content-Length")
        }
        length = value
    }
    if chunked {
        return .problem(
            411, type: "length-required", title: "Length required",
            detail: "send the body with a Content-Length; chunked request bodies are not accepted")
    }
    if length > core.configuration.maxBodyBytes {
        return .problem(
            413, type: "body-too-large", title: "Request body too large",
            detail: "the body may be at most \(core.configuration.maxBodyBytes) bytes; this one announced \(length)",
            extra: ["max_body_bytes": .number(Double(core.configuration.maxBodyBytes))])
    }
    if route.body.required, contentLength == nil {
        return .problem(411, type: "length-required", title: "Length required", detail: "this request needs a body with a Content-Length")
    }
    if route.body.required, length == 0 {
        return .problem(400, type: "empty-body", title: "Empty body", detail: "this request needs a body")
    }
    if length > 0, route.body.acceptsBody {
        guard let contentType = headers["Content-Type"] else {
            return .problem(415, type: "unsupported-media-type", title: "Unsupported media type", detail: "send Content-Type: \(route.body.mediaTypes.joined(separator: " or "))")
        }
        let media = MediaType(contentType)
        let charset = media.parameters["charset"]?.lowercased()
        guard route.body.mediaTypes.contains(media.essence), charset == nil || charset == "utf-8" else {
            return .problem(
                415, type: "unsupported-media-type", title: "Unsupported media type",
                detail: "'\(contentType)' is not accepted; send \(route.body.mediaTypes.joined(separator: " or ")) in UTF-8")
        }
    }
    return route.preflight?(request)
}

private func queue(_ response: HTTPResponse, context: RequestContext, core: ServerCore) -> MHD_Result {
    context.status = response.status
    let created: OpaquePointer?
    if let stream = response.stream {
        created = streamingResponse(stream)
    } else {
        created = response.body.withUnsafeBytes { buffer in
            MHD_create_response_from_buffer(buffer.count, UnsafeMutableRawPointer(mutating: buffer.baseAddress), .RESPMEM_MUST_COPY)
        }
    }
    guard let mhdResponse = created else { return .NO }
    defer { MHD_destroy_response(mhdResponse) }
    for field in response.headers {
        // withCString, not the implicit conversion, which would allocate a copy of each string.
        let added = field.name.withCString { name in field.value.withCString { value in MHD_add_response_header(mhdResponse, name, value) } }
        if added == .NO {
            core.logger.warning("dropped an invalid response header", metadata: ["http.header": "\(field.name)"])
        }
    }
    if core.draining.load(ordering: .relaxed) {
        _ = MHD_add_response_header(mhdResponse, "Connection", "close")
    }
    return MHD_queue_response(context.connection, UInt32(response.status), mhdResponse)
}

/// The stream behind a callback response, retained for libmicrohttpd until its free callback.
private final class StreamBox {
    let stream: any HTTPBodyStream

    init(_ stream: any HTTPBodyStream) {
        self.stream = stream
    }
}

/// Bytes per read libmicrohttpd asks a stream for.
private let streamBlockBytes = 64 * 1024

/// A chunked response of unknown size whose body libmicrohttpd pulls from `stream`. The box is
/// released (and the stream closed) exactly once, by the free callback, also when creating the
/// response fails.
private func streamingResponse(_ stream: any HTTPBodyStream) -> OpaquePointer? {
    let box = Unmanaged.passRetained(StreamBox(stream))
    let response = MHD_create_response_from_callback(
        UInt64.max,  // MHD_SIZE_UNKNOWN: chunked
        streamBlockBytes,
        { cls, _, buffer, max in
            guard let cls, let buffer else { return -2 }
            let stream = Unmanaged<StreamBox>.fromOpaque(cls).takeUnretainedValue().stream
            switch stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max)) {
            case .bytes(let count): return count
            case .end: return -1  // MHD_CONTENT_READER_END_OF_STREAM
            case .failed: return -2  // MHD_CONTENT_READER_END_WITH_ERROR
            }
        },
        box.toOpaque(),
        { cls in
            guard let cls else { return }
            Unmanaged<StreamBox>.fromOpaque(cls).takeRetainedValue().stream.close()
        })
    if response == nil {
        box.takeRetainedValue().stream.close()
    }
    return response
}
