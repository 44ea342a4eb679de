import CarmaClient
import CarmaFaults
import Foundation

/// The storage a live test's carmad runs on: the embedded default (segment logs in a temporary data
/// directory) or cluster mode on a throw-away PostgreSQL. Behaviour tests run against both.
public enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case embedded
    case postgres

    public var description: String { self.rawValue }
}

/// How a test damages a stored fragment, in each backend's own terms.
public enum TestDamage: Sendable {
    /// One byte of the served record changed (a flipped bit on disk, a changed byte in the row).
    case corrupt
    /// The served record gone; the redundancy copy kept.
    case lose
    /// The served record and its redundancy copy both gone.
    case loseBoth
}

/// One carmad on a backend, with what it needs (a data directory; a PostgreSQL for cluster mode),
/// and the backend's way of damaging records.
public final class TestNode: @unchecked Sendable {
    // @unchecked: set in init, then used from one test.
    public let backend: TestBackend
    public let directory: TemporaryDirectory
    public private(set) var server: ServerProcess
    public let database: PostgresServer?

    /// Starts carmad on `backend` with `arguments` (for cluster mode a fresh PostgreSQL too).
    public init(_ backend: TestBackend, arguments: [String] = []) throws {
        self.backend = backend
        self.directory = TemporaryDirectory("node")
        switch backend {
        case .embedded:
            self.database = nil
            self.server = try ServerProcess(dataDirectory: self.directory.path, extraArguments: arguments)
        case .postgres:
            let database = try PostgresServer()
            self.database = database
            self.server = try ServerProcess(
                dataDirectory: self.directory.path, extraArguments: ["--database-url", database.url, "--node-name", "test-node"] + arguments)
        }
    }

    public func api() -> CarmaAPI { self.server.api() }

    /// Stops carmad (and its PostgreSQL) and removes the files.
    public func remove() {
        _ = self.server.stop()
        self.database?.destroy()
        self.directory.remove()
    }

    /// Restarts carmad on the same data.
    public func restart() throws {
        _ = self.server.stop()
        self.server = try self.server.restarted()
    }

    /// Damages the stored records of `ids` (carmad keeps running; reads find the damage).
    public func damage(_ ids: some Collection<String>, _ kind: TestDamage) throws {
        guard !ids.isEmpty else { return }
        switch self.backend {
        case .embedded:
            let disk = DiskDamage(dataDirectory: self.directory.path)
            switch kind {
            case .corrupt: try disk.flip(Set(ids), in: .primary)
            case .lose: try disk.zero(Set(ids), in: .primary)
            case .loseBoth:
                try disk.zero(Set(ids), in: .primary)
                try disk.zero(Set(ids), in: .redundancy)
            }
        case .postgres:
            let list = ids.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: ",")
            switch kind {
            case .corrupt:
                // The first byte of a record is '{': any other value breaks the checksum.
                _ = try self.database!.psql("UPDATE carma_payloads SET record = overlay(record placing '\\x20'::bytea from 1 for 1) WHERE id IN (\(list))")
            case .lose:
                _ = try self.database!.psql("DELETE FROM carma_payloads WHERE id IN (\(list))")
            case .loseBoth:
                _ = try self.database!.psql("DELETE FROM carma_payloads WHERE id IN (\(list)); DELETE FROM carma_redundancy WHERE id IN (\(list))")
            }
        }
    }

    /// The reason a read reports for `kind` on this backend: damage in place reads as a checksum
    /// mismatch; a row that is gone, as missing.
    public func reason(for kind: TestDamage) -> String {
        switch (self.backend, kind) {
        case (_, .corrupt), (.embedded, _): "checksum_mismatch"
        case (.postgres, _): "missing"
        }
    }
}
