import CarmaJSON
import CarmaTesting
import FragmentCore
import Foundation
import Testing

/// Snapshots (what an export reads) and imports at the exported versions, the same on both
/// backends, and from each backend into each.
@Suite("Export and import on both backends")
struct PortabilityBehaviourTests {
    static let past = Timestamp(milliseconds: 1_700_000_000_000)

    @Test("an import writes each fragment at its version: exact, reconstructed and blank; again it changes nothing; older is superseded; other content at a stored version is a conflict", arguments: Backend.allCases)
    func importOutcomes(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let t = Self.past
        let exact = ImportedFragment(
            id: "a", version: 10, createdAt: t, updatedAt: t.adding(milliseconds: 5),
            payload: .exact(FragmentInput(content: "alpha, imported", links: ["b"], tags: ["x"], metadata: ["k": 1])))
        let rebuilt = ImportedFragment(
            id: "b", version: 12, createdAt: t, updatedAt: t,
            payload: .reconstructed(FragmentInput(content: "beta, approximately"), Reconstruction(confidence: 0.625, sources: ["a"], method: "context-extractive-v1", at: t)))
        let blank = ImportedFragment(
            id: "c", version: 14, createdAt: t, updatedAt: t, payload: .blank(links: ["a"], tags: ["y"], size: 42, reason: .missing, lostAt: t))
        #expect(try s.importFragments([exact, rebuilt, blank]) == [.imported, .imported, .imported])

        let a = try #require(s.served("a"))
        #expect(a.fragment.version == 10)
        #expect(a.fragment.status == .ok)
        #expect(a.json["content"] == "alpha, imported")
        #expect(a.json["metadata"] == ["k": 1])
        #expect(a.json["created_at"]?.stringValue == t.rfc3339)
        #expect(a.json["updated_at"]?.stringValue == t.adding(milliseconds: 5).rfc3339)
        #expect(s.store.row("a")?.createdAt == t)
        let b = try #require(s.served("b"))
        #expect(b.fragment.status == .reconstructed)
        #expect(b.fragment.version == 12)
        #expect(b.json["confidence"] == 0.625)
        #expect(s.store.row("b")?.confidence == 0.625)
        let c = try #require(s.blank("c"))
        #expect(c.row.version == 14)
        #expect(c.row.blankReason == .missing)
        #expect(c.row.size == 42)
        #expect(c.row.links == ["a"])
        #expect(c.row.tags == ["y"])
        #expect(c.row.lostAt == t)
        let events = try #require(try s.history("a"))
        #expect(events.map(\.kind) == ["created"])
        #expect(events.first?.detail["imported"] == true)
        #expect(events.first?.detail["version"] == 10)
        #expect(try s.kinds("c") == ["created"])
        // The imported blank waits for a repair like any other.
        let tickets = try s.tickets()
        #expect(tickets.map(\.id) == ["c"])
        #expect(tickets.first?.priority == .background)
        #expect(try s.listed(status: .blank) == ["c"])
        #expect(try s.listed(status: .reconstructed) == ["b"])

        // The same file again: nothing changes.
        #expect(try s.importFragments([exact, rebuilt, blank]) == [.unchanged, .unchanged, .unchanged])
        #expect(try s.kinds("a") == ["created"])
        // An older version is superseded by the stored one.
        var older = exact
        older.version = 9
        older.payload = .exact(FragmentInput(content: "alpha, older"))
        #expect(try s.importFragments([older]) == [.superseded])
        #expect(s.served("a")?.json["content"] == "alpha, imported")

        // A stored version with other content: the whole batch is refused, naming the fragment.
        var contradicting = exact
        contradicting.payload = .exact(FragmentInput(content: "alpha, other content at the same version"))
        let fresh = ImportedFragment(id: "d", version: 3, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "delta")))
        let conflict = storeError { _ = try s.importFragments([fresh, contradicting]) }
        #expect(conflict?.code == .conflict)
        #expect(conflict?.fragmentIndex == 1)
        #expect(conflict?.field == "version")
        #expect(s.isGone("d"), "nothing of a refused batch is written")
        #expect(s.served("a")?.json["content"] == "alpha, imported")

        // Bad input is refused as a whole too.
        var zero = fresh
        zero.version = 0
        let invalid = storeError { _ = try s.importFragments([zero]) }
        #expect(invalid?.code == .invalid)
        #expect(invalid?.field == "version")

        // A newer version replaces; versions handed out afterwards are above every imported one.
        var newer = exact
        newer.version = 20
        newer.payload = .exact(FragmentInput(content: "alpha, newer"))
        #expect(try s.importFragments([newer, fresh]) == [.imported, .imported])
        #expect(s.served("a")?.json["content"] == "alpha, newer")
        #expect(try s.kinds("a") == ["created", "updated"])
        let written = try s.put("e", "written after the import")
        #expect(written.fragment.version > 20)
        // A blank imported over an exact fragment's older version is imported too, and read as blank.
        #expect(try s.importFragments([ImportedFragment(id: "a", version: 30, createdAt: t, updatedAt: t, payload: .blank(links: [], tags: [], size: 5, reason: .checksumMismatch, lostAt: nil))]) == [.imported])
        #expect(s.blank("a")?.row.blankReason == .checksumMismatch)
    }

    @Test("an import keeps to the store's client-vector dimension, as a write does", arguments: Backend.allCases)
    func importVectors(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.put("three", FragmentInput(content: "three numbers", embedding: [1, 0, 0]))
        let t = Self.past
        let two = ImportedFragment(id: "two", version: 50, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "two numbers", embedding: [0, 1])))
        let refused = storeError { _ = try s.importFragments([two]) }
        #expect(refused?.code == .invalid)
        #expect(refused?.field == "embedding")
        #expect(s.isGone("two"))
        var three = two
        three.payload = .exact(FragmentInput(content: "three numbers too", embedding: [0, 1, 0]))
        #expect(try s.importFragments([three]) == [.imported])
        #expect(s.served("two")?.json["embedding"] == [0, 1, 0])
    }

    @Test("a snapshot holds every live fragment in id order, as it was when taken: bodies, reconstructions and blanks", arguments: Backend.allCases)
    func snapshot(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        var bodies: [String: [UInt8]] = [:]
        for id in ["k1", "k2", "k3", "k4", "k5"] {
            bodies[id] = try s.put(id, "snapshot note \(id)", tags: ["snap"]).fragment.body
        }
        try s.delete("k2")
        let t = Self.past
        _ = try s.importFragments([
            ImportedFragment(
                id: "r1", version: 40, createdAt: t, updatedAt: t,
                payload: .reconstructed(FragmentInput(content: "roughly this"), Reconstruction(confidence: 0.5, sources: ["k1"], method: "test", at: t))),
            ImportedFragment(id: "old", version: 41, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "expired", expiresAt: t))),
        ])
        try s.damage(["k3"], .lose)
        #expect(s.blank("k3") != nil)
        // Damaged and not yet read: the snapshot reads it as a blank too.
        try s.damage(["k4"], .corrupt)
        s.applied()

        let snapshot = try s.store.snapshot()
        defer { snapshot.close() }
        #expect(snapshot.rows.map(\.id) == ["k1", "k3", "k4", "k5", "r1"])
        #expect(snapshot.maxVersion >= snapshot.rows.map(\.version).max()!)
        // Written after the snapshot was taken: not in it.
        try s.put("k1", "rewritten after the snapshot")
        try s.put("k0", "new after the snapshot")
        var entries: [String: StoreSnapshot.Entry] = [:]
        for (index, row) in snapshot.rows.enumerated() { entries[row.id] = snapshot.entry(index) }

        guard case .fragment(let k1) = entries["k1"], case .fragment(let k5) = entries["k5"], case .fragment(let r1) = entries["r1"] else {
            Issue.record("k1, k5 and r1 are not fragments in the snapshot: \(entries)")
            return
        }
        #expect(k1 == bodies["k1"], "the snapshot keeps the version it saw")
        #expect(k5 == bodies["k5"])
        #expect(try JSONParser.parse(r1)["status"] == "reconstructed")
        guard case .blank(let k3) = entries["k3"], case .blank(let k4) = entries["k4"] else {
            Issue.record("k3 and k4 are not blanks in the snapshot: \(entries)")
            return
        }
        #expect(k3.blankReason == backend.reason(for: .lose))
        #expect(k4.blankReason == .checksumMismatch)
    }

    @Test("what one backend exports, the other imports: every fragment equal, at its version, reconstructed and blank too", arguments: Backend.allCases, Backend.allCases)
    func exportImport(_ from: Backend, _ to: Backend) throws {
        let source = try BackendStore(from)
        for index in 0..<12 {
            var input = FragmentInput(content: "Note \(index) on the harbour tide pools, crabs and anemones.", links: ["n\((index + 1) % 12)"], tags: ["t\(index % 3)"])
            if index % 4 == 0 { input.metadata = ["n": .number(Double(index)), "nested": ["ok": true]] }
            if index == 5 { input.expiresAt = Timestamp.now.adding(milliseconds: 3_600_000) }
            if index == 6 { input.embedding = [0.5, 0.25] }
            try source.put("n\(index)", input)
        }
        try source.put("n3", "Note 3, replaced.")
        try source.delete("n7")
        _ = try source.importFragments([
            ImportedFragment(
                id: "n8", version: 100, createdAt: Self.past, updatedAt: Self.past,
                payload: .reconstructed(FragmentInput(content: "Note 8, roughly."), Reconstruction(confidence: 0.4, sources: ["n9"], method: "test", at: Self.past)))
        ])
        try source.damage(["n9"], .lose)
        #expect(source.blank("n9") != nil)
        source.applied()

        let exported = try Self.export(source.store)
        #expect(exported.map(\.id) == ["n0", "n1", "n10", "n11", "n2", "n3", "n4", "n5", "n6", "n8", "n9"])
        let target = try BackendStore(to)
        #expect(try target.importFragments(exported) == Array(repeating: .imported, count: exported.count))
        for fragment in exported {
            let id = fragment.id
            switch (source.store.read(id), target.store.read(id)) {
            case (.fragment(let original), .fragment(let copy)):
                #expect(copy.version == original.version, "\(id): the version travels")
                #expect(copy.status == original.status, "\(id)")
                #expect(copy.body == original.body, "\(id) not byte-exact")
            case (.blank(let original), .blank(let copy)):
                #expect(copy.row.version == original.row.version, "\(id)")
                #expect(copy.row.blankReason == original.row.blankReason, "\(id)")
                #expect(copy.row.links == original.row.links && copy.row.tags == original.row.tags, "\(id)")
            case (let original, let copy):
                Issue.record("\(id): \(original) exported, \(copy) imported")
            }
        }
        #expect(target.isGone("n7"))
        #expect(try target.importFragments(exported) == Array(repeating: .unchanged, count: exported.count))
        let written = try target.put("n3", "Note 3, written after the import.")
        #expect(written.fragment.version > exported.map(\.version).max()!)
    }

    /// What an export holds: every fragment of a snapshot as an imported fragment.
    static func export(_ store: any FragmentBackend) throws -> [ImportedFragment] {
        let snapshot = try store.snapshot()
        defer { snapshot.close() }
        return try snapshot.rows.indices.map { index -> ImportedFragment in
            let row = snapshot.rows[index]
            switch snapshot.entry(index) {
            case .fragment(let body):
                let record = try #require(FragmentRecord.decode(body))
                let payload: ImportedFragment.Payload = record.reconstruction.map { .reconstructed(record.input, $0) } ?? .exact(record.input)
                return ImportedFragment(id: row.id, version: row.version, createdAt: record.createdAt, updatedAt: record.updatedAt, payload: payload)
            case .blank(let blank):
                return ImportedFragment(
                    id: row.id, version: row.version, createdAt: row.createdAt, updatedAt: row.updatedAt,
                    payload: .blank(links: blank.links, tags: blank.tags, size: blank.size, reason: blank.blankReason ?? .missing, lostAt: blank.lostAt))
            case .unavailable(let reason):
                throw StoreError.unavailable(reason)
            }
        }
    }
}
