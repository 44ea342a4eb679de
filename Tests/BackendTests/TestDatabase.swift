import CarmaTesting

/// A database of its own for one test, on the shared server.
struct TestDatabase: Sendable {
    let server: PostgresServer
    let name: String

    var url: String { "postgresql://postgres@127.0.0.1:\(self.server.port)/\(self.name)" }

    /// Runs SQL in this database (psql; for damage done behind the store's back).
    @discardableResult
    func psql(_ sql: String) throws -> String {
        try self.server.psql(sql, database: self.name)
    }

    /// Drops the database, cutting any connection still open to it.
    func drop() {
        _ = try? self.server.psql("DROP DATABASE IF EXISTS \(self.name) WITH (FORCE)", database: "postgres")
    }
}
