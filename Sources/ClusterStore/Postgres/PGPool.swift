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
    public func with<T>(timeout: Duration? = nil, _ body: (PGConnection, ContinuousClock.Instant) throws(PGError) -> T) throws(PGError) -> T {
        let timeout = timeout ?? self.timeout
        let deadline = ContinuousClock.now.advanced(by: timeout)
        guard self.slots.wait(timeout: .now() + .milliseconds(Int(timeout.wholeMilliseconds))) == .success else {
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
                if connection.usable {
                    // A server error leaves the connection in step; roll back whatever was open.
                    if (try? connection.execute("ROLLBACK", deadline: ContinuousClock.now.advanced(by: .seconds(1)))) != nil, connection.usable {
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
    public func transaction<T>(_ body: (PGConnection, ContinuousClock.Instant) throws(PGError) -> T) throws(PGError) -> T {
        var attempt = 0
        while true {
            do throws(PGError) {
                return try self.with { connection, deadline throws(PGError) in
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
