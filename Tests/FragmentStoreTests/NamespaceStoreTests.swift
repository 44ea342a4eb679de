import CarmaTesting
import Foundation
import FragmentCore
@testable import FragmentStore
import Testing

@Suite("Namespaces on one machine")
struct NamespaceStoreTests {
    @Test("the catalog survives a restart; a torn last line is cut; damage in one copy is mended from the other; damage in both refuses to open")
    func journal() throws {
        let test = try TestStore()
        let catalog = test.store.namespaces
        _ = try catalog.create("alice", quota: NamespaceQuota(fragments: 5, bytes: nil))
        try catalog.addToken(NamespaceToken(id: "tok1", namespace: "alice", scope: .read, hash: [UInt8](repeating: 7, count: 32), createdAt: .now))
        try catalog.addToken(NamespaceToken(id: "tok2", namespace: "alice", scope: .write, hash: [UInt8](repeating: 9, count: 32), createdAt: .now))
        #expect(try catalog.revokeToken("tok1", of: "alice"))
        #expect(try !catalog.revokeToken("tok2", of: "bob"))
        try test.reopen()
        #expect(test.store.namespaces.entry("alice")?.quota == NamespaceQuota(fragments: 5))
        #expect(test.store.namespaces.token("tok1") == nil)
        #expect(test.store.namespaces.token("tok2")?.scope == .write)

        // A torn append (never acknowledged) is cut at open.
        test.store.close()
        let paths = [test.directory.path + "/namespaces.journal", test.directory.path + "/redundancy/namespaces.journal"]
        for path in paths {
            let handle = try #require(FileHandle(forWritingAtPath: path))
            handle.seekToEndOfFile()
            handle.write(Data("0badf00d {\"op\":\"namespace\",\"na".utf8))
            handle.closeFile()
        }
        try test.reopen()
        #expect(test.store.namespaces.entry("alice") != nil)

        // A flipped byte in one copy: the other copy serves, and the damaged one is rewritten.
        test.store.close()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: paths[0]))
        bytes[12] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: paths[0]))
        try test.reopen()
        #expect(test.store.namespaces.token("tok2") != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: paths[0])) == Data(contentsOf: URL(fileURLWithPath: paths[1])))

        // Both copies damaged: the store refuses to open rather than forget a revocation.
        test.store.close()
        for path in paths {
            var damaged = try Data(contentsOf: URL(fileURLWithPath: path))
            damaged[12] ^= 0x20
            try damaged.write(to: URL(fileURLWithPath: path))
        }
        #expect(throws: StoreError.self) { try test.reopen() }
        for path in paths {
            var mended = try Data(contentsOf: URL(fileURLWithPath: path))
            mended[12] ^= 0x20
            try mended.write(to: URL(fileURLWithPath: path))
        }
        try test.reopen()
    }

    @Test("keys of two namespaces hold different fragments; listings, searches and usage stay in their namespace")
    func isolation() throws {
        let test = try TestStore()
        _ = try test.store.namespaces.create("alice", quota: nil)
        _ = try test.store.namespaces.create("bob", quota: nil)
        try test.put("alice/n1", "Alice keeps the spare key under the blue flowerpot.", links: ["alice/n2"])
        try test.put("alice/n2", "Alice's flowerpot stands by the kitchen door.")
        try test.put("bob/n1", "Bob keeps the spare key under the blue flowerpot too.")
        try test.put("n1", "The default namespace's own note.")
        test.store.flush()
        #expect(try test.store.list(namespace: "alice", status: nil, tag: nil, after: nil, limit: 10).rows.map(\.id) == ["alice/n1", "alice/n2"])
        #expect(try test.store.list(status: nil, tag: nil, after: nil, limit: 10).rows.map(\.id) == ["n1"])
        #expect(try test.store.ids(namespace: "bob", after: nil, limit: 10) == ["bob/n1"])
        let sketch = try #require(test.store.sketch(of: "alice/n1"))
        #expect(test.store.similar(to: sketch.vector, k: 10, in: "alice", excluding: []).allSatisfy { $0.id.hasPrefix("alice/") })
        #expect(test.store.related(to: sketch, k: 10, in: "bob", excluding: []).map(\.id) == ["bob/n1"])
        #expect(test.store.backlinks("alice/n2") == ["alice/n1"])
        var query = QueryRequest(text: "spare key flowerpot")
        query.namespace = "bob"
        #expect(try test.store.query(query).hits.map(\.id) == ["bob/n1"])
        #expect(test.store.usage(of: "alice") == NamespaceUsage(fragments: 2, bytes: Int64(51 + 45)))
        // The body a client reads holds the local id, the namespace and local links.
        guard case .fragment(let served) = test.store.read("alice/n1") else { Issue.record("not readable"); return }
        let body = String(decoding: served.body, as: UTF8.self)
        #expect(body.hasPrefix("{\"id\":\"n1\",\"namespace\":\"alice\","))
        #expect(body.contains("\"links\":[\"n2\"]"))
        // A link into another namespace is refused, whatever the caller checked.
        #expect(throws: StoreError.self) { try test.put("alice/n3", "x", links: ["bob/n1"]) }
        // A write into an unknown namespace is refused.
        #expect(throws: StoreError.self) { try test.put("carol/n1", "x") }
    }

    @Test("quotas refuse in log order, a batch is one commit with a result per item, and a retry is unchanged")
    func quotasAndBatches() throws {
        let test = try TestStore()
        _ = try test.store.namespaces.create("small", quota: NamespaceQuota(fragments: 2, bytes: 100))
        let items = (1...3).map { BatchPut(id: "small/n\($0)", input: FragmentInput(content: "note \($0)"), unlessUnchanged: true) }
        let results = try wait { (done: @escaping @Sendable (Result<[Result<PutOutcome, StoreError>], StoreError>) -> Void) in
            test.store.put(batch: items) { done(.success($0)) }
        }
        #expect(results.map { (try? $0.get())?.created } == [true, true, nil])
        if case .failure(let error) = results[2] { #expect(error.code == .quotaExceeded) } else { Issue.record("no refusal") }
        let retry = try wait { (done: @escaping @Sendable (Result<[Result<PutOutcome, StoreError>], StoreError>) -> Void) in
            test.store.put(batch: [items[0]]) { done(.success($0)) }
        }
        let outcome = try retry[0].get()
        let first = try results[0].get()
        #expect(outcome.unchanged && outcome.fragment.version == first.fragment.version)
        #expect(throws: StoreError.self) { try test.put("small/n1", String(repeating: "x", count: 101)) }
        #expect(test.store.usage(of: "small") == NamespaceUsage(fragments: 2, bytes: 12))
    }

    @Test("a deleted namespace stays deleted after a reopen and a rebuilt registry; older versions import as superseded")
    func deletion() throws {
        let test = try TestStore()
        _ = try test.store.namespaces.create("gone", quota: nil)
        let old = try test.put("gone/n1", "soon gone")
        let deleted = try wait { done in test.store.deleteNamespace("gone", completion: done) }
        #expect(deleted == 1)
        #expect(test.store.row("gone/n1") == nil && test.store.namespaces.entry("gone") == nil)
        try test.reopen()
        #expect(test.store.row("gone/n1") == nil)
        test.store.close()
        try FileManager.default.removeItem(atPath: test.directory.path + "/registry.sqlite3")
        try test.reopen()
        #expect(test.store.row("gone/n1") == nil)
        _ = try test.store.namespaces.create("gone", quota: nil)
        let imported = try wait { done in
            test.store.importFragments(
                [ImportedFragment(id: "gone/n1", version: old.fragment.version, createdAt: .now, updatedAt: .now, payload: .exact(FragmentInput(content: "soon gone")))],
                completion: done)
        }
        #expect(imported == [.superseded])
        #expect(test.store.row("gone/n1") == nil)
    }

    @Test("a backup carries the catalog: the restored store has the namespace, its quota, its tokens and its fragments")
    func backup() throws {
        let test = try TestStore(cacheBytes: 0)
        _ = try test.store.namespaces.create("alice", quota: NamespaceQuota(fragments: 9))
        try test.store.namespaces.addToken(NamespaceToken(id: "tok1", namespace: "alice", scope: .write, hash: [UInt8](repeating: 1, count: 32), createdAt: .now))
        try test.put("alice/n1", "Alice's note, backed up.")
        test.store.flush()
        let target = TemporaryDirectory("backup-namespaces")
        defer { target.remove() }
        _ = try StoreBackup.take(from: TestStore.configuration(test.directory.path, cacheBytes: 0), to: target.path)
        let restored = try FragmentStore(
            configuration: StoreConfiguration(dataDirectory: "\(target.path)/data", redundancyDirectory: "\(target.path)/redundancy", cacheBytes: 0),
            logger: .init(label: "restored"))
        defer { restored.close() }
        #expect(restored.namespaces.entry("alice")?.quota == NamespaceQuota(fragments: 9))
        #expect(restored.namespaces.token("tok1")?.namespace == "alice")
        guard case .fragment = restored.read("alice/n1") else { Issue.record("not restored"); return }
    }

    @Test("repair tickets come with namespaces in turn: one namespace's backlog does not hold back another's")
    func repairTurns() throws {
        let test = try TestStore(cacheBytes: 0)
        _ = try test.store.namespaces.create("big", quota: nil)
        _ = try test.store.namespaces.create("small", quota: nil)
        for index in 0..<20 { try test.put("big/n\(index)", "big note \(index)") }
        try test.put("small/only", "the small namespace's one note")
        test.store.flush()
        _ = try test.disk.zero(Set((0..<20).map { "big/n\($0)" } + ["small/only"]), in: .primary)
        for index in 0..<20 { _ = test.store.read("big/n\(index)") }
        _ = test.store.read("small/only")
        test.store.flush()
        let tickets = try test.store.readyRepairs(limit: 3, now: .now.adding(milliseconds: 3_600_000))
        #expect(tickets.count == 3)
        #expect(tickets.map(\.id).contains("small/only"))
    }
}
