/// Told about every request the server finished, for metrics and access logs.
public protocol HTTPServerObserver: AnyObject, Sendable {
    /// - Parameters:
    ///   - route: The route template that matched, or `unmatched`.
    ///   - method: The request method.
    ///   - status: The status sent, or 0 when the client went away before a response was sent.
    ///   - duration: From the request head's arrival to the end of the exchange.
    func requestFinished(route: String, method: HTTPMethod, status: Int, duration: Duration)
}
