import Logging
import Synchronization

/// An HTTP/1.1 server on libmicrohttpd: a thread pool with one epoll loop per thread, keep-alive,
/// connection limits and timeouts, and a graceful stop.
///
/// Handlers run on the pool threads. A handler that must wait (for a group commit, say) returns
/// `.deferred`, and the connection is suspended instead of a thread being blocked.
public final class HTTPServer: Sendable {
    public let configuration: ServerConfiguration
    private let core: ServerCore
    private let state = Mutex<State>(.idle)

    private enum State {
        case idle
        case running(MHDDaemon)
        case stopped
    }

    /// - Parameters:
    ///   - configuration: Where to listen and the limits to enforce.
    ///   - router: The routes; fixed for the server's lifetime.
    ///   - observer: Told about every finished request (metrics).
    ///   - logger: For the server's own warnings.
    public init(configuration: ServerConfiguration, router: Router, observer: (any HTTPServerObserver)? = nil, logger: Logger) {
        self.configuration = configuration
        self.core = ServerCore(router: router, configuration: configuration, observer: observer, logger: logger)
    }

    /// Binds and starts serving. Returns once the socket is listening.
    public func start() throws(HTTPServerError) {
        try self.state.withLock { (state) throws(HTTPServerError) in
            guard case .idle = state else { throw .alreadyStarted }
            state = .running(try MHDDaemon(core: self.core))
        }
    }

    /// The port being listened on (useful after asking for port 0), or nil when not running.
    public var port: Int? {
        self.state.withLock { state in
            if case .running(let daemon) = state { return daemon.port }
            return nil
        }
    }

    /// Requests received and not yet finished. Background work backs off while this is above zero.
    public var inFlightRequests: Int {
        self.core.inFlight.load(ordering: .relaxed)
    }

    /// Stops accepting connections, lets requests in flight finish (up to `configuration.drainTimeout`),
    /// then closes everything. Blocks the calling thread; safe to call more than once.
    public func shutdown() {
        let daemon: MHDDaemon? = self.state.withLock { state in
            guard case .running(let daemon) = state else { return nil }
            state = .stopped
            return daemon
        }
        daemon?.stop(drainTimeout: self.configuration.drainTimeout)
    }
}
