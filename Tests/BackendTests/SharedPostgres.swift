import CarmaTesting
import Foundation
import Synchronization

/// One throw-away PostgreSQL server for the whole test process, started by the first test that
/// asks and stopped when the process exits; each test gets a database of its own on it.
///
/// `initdb` and a start take a second or two: paid once, not once per test. A database per test
/// keeps tests apart (their own schema, sequences, queue and change feed) while they run in parallel.
enum SharedPostgres {
    private static let server = Mutex<Result<PostgresServer, ServerError>?>(nil)
    private static let databases = Atomic<Int>(0)

    /// Why the shared server could not be started (kept, so that every test says the same).
    struct ServerError: Error, CustomStringConvertible {
        let description: String
    }

    /// The server, started on first use.
    static func shared() throws -> PostgresServer {
        try self.server.withLock { (started) throws(ServerError) -> PostgresServer in
            if let started { return try started.get() }
            let made: Result<PostgresServer, ServerError>
            do {
                made = .success(try PostgresServer())
                // A static is never deinitialised: without this the server would outlive the tests.
                atexit { SharedPostgres.shutdown() }
            } catch {
                made = .failure(ServerError(description: "cannot start the shared PostgreSQL: \(error)"))
            }
            started = made
            return try made.get()
        }
    }

    /// A fresh, empty database on the shared server.
    static func createDatabase() throws -> TestDatabase {
        let server = try self.shared()
        let name = "carma_\(getpid())_\(self.databases.add(1, ordering: .relaxed).newValue)"
        try server.psql("CREATE DATABASE \(name)", database: "postgres")
        return TestDatabase(server: server, name: name)
    }

    private static func shutdown() {
        let started = self.server.withLock { $0 }
        if case .success(let server) = started { server.destroy() }
    }
}
