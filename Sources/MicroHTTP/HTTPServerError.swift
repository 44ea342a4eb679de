/// Why the server could not start.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case invalidAddress
        case bindFailed
        case daemonFailed
        case alreadyStarted
    }

    let code: Code
    public let message: String

    public var description: String { self.message }

    static func invalidAddress(_ host: String) -> HTTPServerError {
        HTTPServerError(code: .invalidAddress, message: "cannot resolve listen address '\(host)'")
    }

    static func bindFailed(_ host: String, _ port: Int, errno: Int32) -> HTTPServerError {
        HTTPServerError(code: .bindFailed, message: "cannot listen on \(host):\(port): \(errorText(errno))")
    }

    static let daemonFailed = HTTPServerError(code: .daemonFailed, message: "libmicrohttpd refused to start the daemon")
    static let alreadyStarted = HTTPServerError(code: .alreadyStarted, message: "the server was already started")
}

