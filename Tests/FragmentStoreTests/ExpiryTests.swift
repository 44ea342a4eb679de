import FragmentCore
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

@testable import FragmentStore

/// Per-fragment expiry: gone for every reader once due, honoured across restarts and a registry
/// rebuilt from the logs, and deleted with a tombstone by compaction.
@Suite("Fragment expiry")
struct ExpiryTests {
    /// Waits (up to `seconds`) until `condition` holds; the tests assert outcomes, never timings.
    static func eventually(within seconds: Double = 20, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    static func isNotFound(_ result: ReadResult) -> Bool {
        if case .notFound = result { return true }
        return false
    }

    func put(_ test: TestStore, _ id: String, _ content: String, expiresAt: Timestamp?, precondition: WritePrecondition = .none) throws -> PutOutcome {
        try wait { done in
            test.store.put(id, FragmentInput(content: content, tags: ["t"], expiresAt: expiresAt), precondition: precondition, completion: done)
        }
    }

    @Test("a fragment is served with its expiry until then, and afterwards it is unknown to reads, rows, listings and history")
    func expiresForEveryReader() throws {
        let test = try TestStore()
        let due = Timestamp.now.adding(milliseconds: 400)
        _ = try self.put(test, "short", "short-lived", expiresAt: due)
        _ = try self.put(test, "long", "kept", expiresAt: nil)
        guard case .fragment(let served) = test.store.read("short") else {
            Issue.record("not readable before its expiry")
            return
        }
        #expect(try JSONParser.parse(served.body)["expires_at"]?.stringValue == due.rfc3339)
        #expect(Self.eventually { Self.isNotFound(test.store.read("short")) })
        #expect(test.store.row("short") == nil)
        #expect(test.store.rows(["short", "long"]).map { $0?.id } == [nil, "long"])
        test.store.flush()
        #expect(try test.store.list(status: nil, tag: "t", after: nil, limit: 10).rows.map(\.id) == ["long"])
        #expect(try test.store.list(status: nil, tag: nil, after: nil, limit: 10).rows.map(\.id) == ["long"])
        #expect(try test.store.history("short") == nil)
        #expect(throws: StoreError.self) { try test.delete("short") }
    }

    @Test("an expiry that is not in the future is refused and changes nothing")
    func pastExpiryRefused() throws {
        let test = try TestStore()
        do {
            _ = try self.put(test, "a", "x", expiresAt: Timestamp.now.adding(milliseconds: -1000))
            Issue.record("accepted an expiry in the past")
        } catch {
            let failure = error as? StoreError
            #expect(failure?.code == .invalid && failure?.field == "expires_at")
        }
        #expect(Self.isNotFound(test.store.read("a")))
        #expect(test.store.stats().fragments == 0)
    }

    @Test("writing an expired id creates it anew: If-None-Match holds, created is reported, the old history is gone")
    func reuseAfterExpiry() throws {
        let test = try TestStore()
        _ = try self.put(test, "a", "first", expiresAt: Timestamp.now.adding(milliseconds: 300))
        #expect(Self.eventually { Self.isNotFound(test.store.read("a")) })
        let outcome = try self.put(test, "a", "second", expiresAt: nil, precondition: WritePrecondition(ifNoneMatchAny: true))
        #expect(outcome.created)
        #expect(try test.history("a") == ["created"])
        guard case .fragment(let served) = test.store.read("a") else {
            Issue.record("the new fragment is not readable")
            return
        }
        #expect(try JSONParser.parse(served.body)["content"] == "second")
        #expect(try JSONParser.parse(served.body)["expires_at"] == nil)
    }

    @Test("expiry is honoured after a restart and after the registry is rebuilt from the logs")
    func survivesRestartAndRebuild() throws {
        let test = try TestStore()
        let due = Timestamp.now.adding(milliseconds: 1500)
        _ = try self.put(test, "short", "short-lived", expiresAt: due)
        _ = try self.put(test, "long", "kept", expiresAt: Timestamp.now.adding(milliseconds: 3_600_000))
        try test.reopen()
        #expect(test.store.row("short")?.expiresAt == due)
        test.store.close()
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: "\(test.directory.path)/registry.sqlite3\(suffix)")
        }
        try test.reopen()
        #expect(test.store.startup.rebuilt != nil)
        #expect(test.store.row("short")?.expiresAt == due)
        #expect(Self.eventually { Self.isNotFound(test.store.read("short")) })
        try test.reopen()
        #expect(Self.isNotFound(test.store.read("short")))
        guard case .fragment = test.store.read("long") else {
            Issue.record("the fragment that has not expired is gone")
            return
        }
    }

    @Test("compaction deletes expired fragments with a tombstone, so an older version never comes back from the logs")
    func compactionDeletesExpired() throws {
        let test = try TestStore()
        try test.put("a", "version without expiry")
        _ = try self.put(test, "a", "version that expires", expiresAt: Timestamp.now.adding(milliseconds: 300))
        #expect(Self.eventually { Self.isNotFound(test.store.read("a")) })
        let summary = test.store.compact(threshold: 0.5, maxSegments: 4)
        #expect(summary.expired == 1)
        #expect(test.store.stats().fragments == 0)
        #expect(test.store.compact(threshold: 0.5, maxSegments: 4).expired == 0)
        test.store.close()
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: "\(test.directory.path)/registry.sqlite3\(suffix)")
        }
        try test.reopen()
        #expect(test.store.startup.rebuilt?.deleted == 1)
        #expect(test.store.row("a") == nil)
        #expect(Self.isNotFound(test.store.read("a")))
    }

    @Test("a fragment written again before compaction is not deleted by it")
    func rewrittenIsKept() throws {
        let test = try TestStore()
        _ = try self.put(test, "a", "expires", expiresAt: Timestamp.now.adding(milliseconds: 200))
        #expect(Self.eventually { Self.isNotFound(test.store.read("a")) })
        try test.put("a", "written again")
        #expect(test.store.compact(threshold: 0.5, maxSegments: 4).expired == 0)
        #expect(test.store.row("a") != nil)
    }

    @Test("a registry of schema version 2 is upgraded in place; its rows never expire")
    func schemaUpgrade() throws {
        let test = try TestStore()
        try test.put("a", "old row")
        test.store.close()
        let path = "\(test.directory.path)/registry.sqlite3"
        let db = try SQLiteConnection(path: path)
        try db.execute("ALTER TABLE fragments DROP COLUMN expires_at; PRAGMA user_version = 2;")
        #expect(try Registry.schemaVersion(of: db) == 2)
        try test.reopen()
        #expect(test.store.row("a")?.expiresAt == nil)
        guard case .fragment = test.store.read("a") else {
            Issue.record("the old row is not readable after the upgrade")
            return
        }
        #expect(try Registry.schemaVersion(of: test.store.registry.writer) == Registry.schemaVersion)
    }

    @Test("RFC 3339 date-times are read with offsets and any fraction; impossible ones are refused")
    func parsesRFC3339() {
        #expect(Timestamp(parsingRFC3339: "2030-01-31T12:00:00Z")?.rfc3339 == "2030-01-31T12:00:00.000Z")
        #expect(Timestamp(parsingRFC3339: "2030-01-31t12:00:00.5z")?.rfc3339 == "2030-01-31T12:00:00.500Z")
        #expect(Timestamp(parsingRFC3339: "2030-01-31T12:00:00.123456789+02:00")?.rfc3339 == "2030-01-31T10:00:00.123Z")
        #expect(Timestamp(parsingRFC3339: "2030-01-31T23:30:00-01:00")?.rfc3339 == "2030-02-01T00:30:00.000Z")
        #expect(Timestamp(parsingRFC3339: "2028-02-29T00:00:00Z") != nil)
        for bad in [
            "2030-02-30T00:00:00Z", "2029-02-29T00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01T00:00:00",
            "2030-01-01 00:00:00Z", "2030-01-01T00:00:00.Z", "2030-01-01T00:00:00+2:00", "2030-01-01T00:00:00Zjunk", "tomorrow", "",
            "2030-01-01T00:00:00.1234567890Z",
        ] {
            #expect(Timestamp(parsingRFC3339: bad) == nil, "accepted \(bad)")
        }
    }
}
