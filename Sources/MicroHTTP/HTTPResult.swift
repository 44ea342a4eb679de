/// What a handler gives back: a response now, or a promise to complete one from another thread.
public enum HTTPResult: Sendable {
    case response(HTTPResponse)
    /// The closure receives a completion to call exactly once, from any thread. Until it is called the
    /// connection is suspended, so no server thread waits (for example on a group commit).
    case deferred(@Sendable (_ complete: @escaping @Sendable (HTTPResponse) -> Void) -> Void)
}

/// Turns a request into a result. Runs on a server pool thread: it must not block for long.
public typealias HTTPHandler = @Sendable (HTTPRequest) -> HTTPResult

/// A check run on the request head, before any of the body is read; a response it returns is sent
/// at once in place of the handler's (for example 401 without reading the body).
public typealias HTTPPreflight = @Sendable (HTTPRequest) -> HTTPResponse?
