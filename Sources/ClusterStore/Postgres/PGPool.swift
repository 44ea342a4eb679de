import Dispatch
import Synchronization

/// A bounded pool of connections. Every call has one deadline (the configured timeout), covering the
/// wait for a free connection, connecting and the statements; past it the database counts as
/// unavailable and the caller answers accordingly.
public final class PGPool: Sendable {
    public let url: String
    public let size: Int
    /// The deadline of one call.
    public let timeout: Duration
    private let idle = Mutex<[PGConnection]>([])
    private let slots: DispatchSemaphore
    /// Whether the last call reached the database; for `/readyz` and `carma_database_up`.
    private let up = Atomic<Bool>(true)
    private let failures = Atomic<Int>(0)
    /// While the database is known down, one call at a time finds out whether it is back; the others
    /// fail at once instead of each waiting out its deadline (a stalled server accepts connections and
    /// answers nothing: without this every request, and every thread serving one, waited the timeout).
    private let probing = Atomic<Bool>(false)
    /// Run on each new connection (session settings).
    private let setup: @Sendable (PGConnection, ContinuousClock.Instant) throws(PGError) -> Void

    public init(url: String, size: Int, timeout: Duration, setup: @escaping @Sendable (PGConnection, ContinuousClock.Instant) throws(PGError) -> Void = { _, _ in }) {
        self.url = url
        self.size = size
        self.timeout = timeout
        self.slots = DispatchSemaphore(value: size)
        self.setup = setup
    }

    public var isUp: Bool { self.up.load(ordering: .relaxed) }
    /// Calls that found the database unavailable, since start.
    public var unavailableCount: Int { self.failures.load(ordering: .relaxed) }

    /// Runs `body` with a connection of its own. A connection that broke is dropped, not returned.
    /// - Parameters:
    ///   - timeout: The call's time in all, waiting for a free connection included (default: the pool's).
    ///   - deadline: When given, the instant the call must end by instead (a request's arrival plus
    ///     the timeout, so that time spent queued before the call counts too).
    public func with<T>(
        timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil, _ body: (PGConnection, ContinuousClock.Instant) throws(PGError) -> T
    ) throws(PGError) -> T {
        let deadline = deadline ?? ContinuousClock.now.advanced(by: timeout ?? self.timeout)
        var probe = false
        if !self.up.load(ordering: .relaxed) {
            guard self.probing.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
                throw .unavailable("PostgreSQL did not answer in time; another call is checking whether it is back")
            }
            probe = true
        }
        defer { if probe { self.probing.store(false, ordering: .releasing) } }
        let left = ContinuousClock.now.duration(to: deadline).wholeMilliseconds
        guard left > 0, self.slots.wait(timeout: .now() + .milliseconds(Int(left))) == .success else {
            throw self.noted(.unavailable("every database connection of this node is busy (pool of \(self.size))"))
        }
        defer { self.slots.signal() }
        var retried = false
        while true {
            let connection: PGConnection
            var reused = false
            if let idle = self.idle.withLock({ $0.popLast() }) {
                connection = idle
                reused = true
            } else {
                do throws(PGError) {
                    connection = try PGConnection(url: self.url, deadline: deadline)
                    try self.setup(connection, deadline)
                } catch {
                    throw self.noted(error)
                }
            }
            let answered = connection.answered
            do throws(PGError) {
                let value = try body(connection, deadline)
                if connection.usable { self.idle.withLock { $0.append(connection) } }
                self.up.store(true, ordering: .relaxed)
                return value
            } catch {
                if connection.usable, ContinuousClock.now < deadline {
                    // A server error leaves the connection in step; roll back whatever was open, within
                    // the call's deadline (past it the connection is dropped instead).
                    if (try? connection.execute("ROLLBACK", deadline: deadline)) != nil, connection.usable {
                        self.idle.withLock { $0.append(connection) }
                    }
                } else if error.kind == .unavailable {
                    // The server went away: every idle connection is as dead as this one.
                    self.drain()
                    // A pooled connection that failed on its first call of this checkout never had a
                    // statement executed (the server had closed it): once more on a new connection.
                    if reused, connection.answered == answered, !retried, ContinuousClock.now < deadline {
                        retried = true
                        continue
                    }
                }
                throw self.noted(error)
            }
        }
    }

    /// Runs `body` in a transaction, again (up to 5 times) after a serialization failure or deadlock.
    /// - Parameter deadline: When given, the instant every attempt must end by (see `with`).
    public func transaction<T>(
        deadline: ContinuousClock.Instant? = nil, _ body: (PGConnection, ContinuousClock.Instant) throws(PGError) -> T
    ) throws(PGError) -> T {
        var attempt = 0
        while true {
            do throws(PGError) {
                return try self.with(deadline: deadline) { connection, deadline throws(PGError) in
                    try connection.execute("BEGIN", deadline: deadline)
                    let value = try body(connection, deadline)
                    try connection.execute("COMMIT", deadline: deadline)
                    return value
                }
            } catch where error.isRetryable && attempt < 5 {
                attempt += 1
            }
        }
    }

    private func noted(_ error: PGError) -> PGError {
        if error.kind == .unavailable {
            self.up.store(false, ordering: .relaxed)
            self.failures.add(1, ordering: .relaxed)
        }
        return error
    }

    /// Drops every idle connection (after an outage they are all dead).
    public func drain() {
        self.idle.withLock { $0.removeAll() }
    }
}
