import CarmaClient
import CarmaTesting
import Foundation
import Testing

/// The tests' throw-away PostgreSQL, which the cluster tests stand on.
@Suite("PostgreSQL test server (live)")
struct PostgresServerTests {
    @Test("a fresh server answers SQL, stops, starts again on the same port with its data, and is gone after destroy", .timeLimit(.minutes(10)))
    func lifecycle() throws {
        let server = try PostgresServer()
        let directory = server.directory
        #expect(server.url == "postgresql://postgres@127.0.0.1:\(server.port)/carma")
        #expect(try server.psql("SELECT 1") == "1")
        #expect(try server.psql("SHOW max_connections") == "200")
        #expect(try server.psql("SELECT current_database()") == "carma")
        #expect(try server.psql("SHOW listen_addresses") == "127.0.0.1")
        try server.psql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")

        try server.stop()
        #expect(throws: ClientError.self) { try server.psql("SELECT 1") }

        let port = server.port
        try server.start()
        #expect(server.port == port)
        #expect(try server.psql("SELECT 1") == "1")
        #expect(try server.psql("SELECT n FROM kept") == "42")

        // A failing statement throws with PostgreSQL's message.
        let error = #expect(throws: ClientError.self) { try server.psql("SELECT * FROM no_such_table") }
        #expect(error?.message.contains("no_such_table") == true)

        server.destroy()
        #expect(!FileManager.default.fileExists(atPath: directory))
        server.destroy()
    }

    @Test("two servers run side by side on different ports", .timeLimit(.minutes(10)))
    func sideBySide() throws {
        let first = try PostgresServer()
        let second = try PostgresServer()
        defer {
            first.destroy()
            second.destroy()
        }
        #expect(first.port != second.port)
        try first.psql("CREATE TABLE only_here (n int)")
        #expect(try first.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'") == "1")
        #expect(try second.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'") == "0")
    }
}
