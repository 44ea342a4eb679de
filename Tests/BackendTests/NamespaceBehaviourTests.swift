import CarmaJSON
import CarmaTesting
import Dispatch
import FragmentCore
import Foundation
import Synchronization
import Testing

/// Namespaces, the same on both backends: isolation of ids, listings, searches and reconstruction;
/// quotas; writes into unknown namespaces; batch writes; deleting a namespace for good. Ids below
/// are keys (`alice/note`), as the service hands them to a backend.
@Suite("Namespaces on both backends")
struct NamespaceBehaviourTests {
    static let past = Timestamp(milliseconds: 1_700_000_000_000)

    @Test("the same id in two namespaces holds different content; reads, listings, histories, snapshots and usage keep them apart", arguments: Backend.allCases)
    func sameIDApart(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.create("alice")
        try s.create("bob")
        try s.put("note", "the default namespace's note")
        try s.put("alice/note", "Alice keeps her notes here.", links: ["alice/other"])
        try s.put("alice/other", "another of Alice's")
        try s.put("bob/note", "Bob's note, a little longer than Alice's.")

        #expect(s.served("note")?.json["content"] == "the default namespace's note")
        #expect(s.served("note")?.json["namespace"] == nil, "a body in default has no namespace member")
        let alice = try #require(s.served("alice/note"))
        #expect(alice.json["content"] == "Alice keeps her notes here.")
        #expect(alice.json["id"] == "note")
        #expect(alice.json["namespace"] == "alice")
        #expect(alice.json["links"] == ["other"], "links are local ids in a body")
        #expect(s.served("bob/note")?.json["content"] == "Bob's note, a little longer than Alice's.")
        #expect(s.isGone("bob/other"))
        #expect(s.store.row("alice/note")?.links == ["alice/other"])

        s.applied()
        #expect(try s.listedIn("alice") == ["alice/note", "alice/other"])
        #expect(try s.listedIn("bob") == ["bob/note"])
        #expect(try s.listed() == ["note"], "the unprefixed listing is default's")
        #expect(try s.store.ids(namespace: "alice", after: nil, limit: 10) == ["alice/note", "alice/other"])
        #expect(try s.store.ids(namespace: "alice", after: "alice/note", limit: 10) == ["alice/other"])
        #expect(try s.store.ids(namespace: Namespace.default, after: nil, limit: 10) == ["note"])
        #expect(Set(try s.store.ids(namespace: nil, after: nil, limit: 10)) == ["note", "alice/note", "alice/other", "bob/note"])
        let page = try s.store.list(namespace: "alice", status: nil, tag: nil, after: nil, limit: 1)
        #expect(page.rows.map(\.id) == ["alice/note"])
        #expect(page.nextAfter == "alice/note")
        #expect(try s.store.list(namespace: "nobody", status: nil, tag: nil, after: nil, limit: 10).rows.isEmpty)

        let snapshot = try s.store.snapshot(namespace: "bob")
        defer { snapshot.close() }
        #expect(snapshot.rows.map(\.id) == ["bob/note"])
        guard case .fragment(let body) = snapshot.entry(0) else { throw StoreError.invalid(field: "snapshot", "no fragment") }
        #expect(try JSONParser.parse(body)["content"] == "Bob's note, a little longer than Alice's.")
        #expect(try s.store.snapshot().rows.map(\.id) == ["note"])

        try s.put("alice/note", "Alice rewrote it.")
        #expect(try s.kinds("alice/note") == ["created", "updated"])
        #expect(try s.kinds("bob/note") == ["created"])
        #expect(try s.kinds("note") == ["created"])

        #expect(s.store.usage(of: "alice") == NamespaceUsage(fragments: 2, bytes: Int64("Alice rewrote it.".utf8.count + "another of Alice's".utf8.count)))
        #expect(s.store.usage(of: "bob") == NamespaceUsage(fragments: 1, bytes: Int64("Bob's note, a little longer than Alice's.".utf8.count)))
        #expect(s.store.usage()["alice"]?.fragments == 2)
        #expect(s.store.usage()[Namespace.default]?.fragments == 1)

        try s.delete("alice/note")
        #expect(s.isGone("alice/note"))
        #expect(s.served("bob/note") != nil && s.served("note") != nil)
        #expect(s.store.usage(of: "alice").fragments == 1)

        // The catalog: default always there, the others in name order.
        #expect(s.store.namespaces.entry(Namespace.default) != nil)
        #expect(try s.store.namespaces.entries(after: nil, limit: 10).map(\.name) == ["alice", "bob", "default"])
        #expect(try s.store.namespaces.entries(after: "alice", limit: 1).map(\.name) == ["bob"])
        // Both backends keep it across a restart.
        try s.reopen()
        #expect(s.store.namespaces.entry("alice") != nil)
        #expect(s.served("bob/note")?.json["namespace"] == "bob")
        #expect(s.store.usage(of: "bob").fragments == 1)
    }

    @Test("queries, context and similarity stay in their namespace; a link cannot leave it", arguments: Backend.allCases)
    func searchesApart(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.create("alice")
        try s.create("bob")
        // Bob holds the best matches for everything Alice asks: none may reach her.
        try s.put("alice/lighthouse", FragmentInput(content: "The lighthouse keeper logs passing ships.", links: ["alice/harbour"], embedding: [1, 0, 0, 0]))
        try s.put("alice/harbour", FragmentInput(content: "Boats leave the harbour at dawn.", links: ["alice/lighthouse"], embedding: [0, 1, 0, 0]))
        try s.put("bob/lighthouse", FragmentInput(content: "The lighthouse keeper logs every passing ship at dusk, the lighthouse keeper.", links: ["bob/lighthouse-2"], embedding: [1, 0.01, 0, 0]))
        try s.put("bob/lighthouse-2", FragmentInput(content: "A second lighthouse keeper logs passing ships.", links: ["bob/lighthouse"], embedding: [0.99, 0, 0, 0]))
        try s.put("lighthouse", FragmentInput(content: "Default's lighthouse keeper logs passing ships too.", embedding: [1, 0, 0, 0]))
        s.indexed(5)

        var text = QueryRequest(text: "lighthouse keeper passing ships", mode: .text, k: 10)
        text.namespace = "alice"
        try s.eventually("alice's query finds her lighthouse") { try s.store.query(text).hits.first?.id == "alice/lighthouse" }
        #expect(try s.store.query(text).hits.allSatisfy { FragmentKey.belongs($0.id, to: "alice") })
        var vector = QueryRequest(embedding: [1, 0, 0, 0], mode: .vector, k: 10)
        vector.namespace = "alice"
        #expect(try s.store.query(vector).hits.map(\.id) == ["alice/lighthouse", "alice/harbour"])
        var hybrid = QueryRequest(text: "lighthouse keeper", embedding: [1, 0, 0, 0], k: 10, statuses: [.ok])
        hybrid.namespace = "bob"
        #expect(Set(try s.store.query(hybrid).hits.map(\.id)) == ["bob/lighthouse", "bob/lighthouse-2"])
        #expect(try s.store.query(QueryRequest(text: "lighthouse keeper", mode: .text, k: 10)).hits.map(\.id) == ["lighthouse"])
        var nowhere = QueryRequest(text: "lighthouse keeper", mode: .text, k: 10)
        nowhere.namespace = "carol"
        #expect(try s.store.query(nowhere).hits.isEmpty)

        // What context and reconstruction search.
        let sketch = try #require(s.store.sketch(of: "bob/lighthouse"))
        let similar = s.store.similar(to: sketch.vector, k: 10, in: "alice", excluding: [])
        #expect(!similar.isEmpty)
        #expect(similar.allSatisfy { FragmentKey.belongs($0.id, to: "alice") }, "\(similar)")
        let related = s.store.related(to: sketch, k: 10, in: "alice", excluding: [])
        #expect(!related.isEmpty)
        #expect(related.allSatisfy { FragmentKey.belongs($0.id, to: "alice") }, "\(related)")
        #expect(s.store.related(to: sketch, k: 10, in: "bob", excluding: ["bob/lighthouse"]).map(\.id) == ["bob/lighthouse-2"])
        #expect(s.store.similar(to: sketch.vector, k: 10, in: "carol", excluding: []).isEmpty)
        // Without a model there are no meanings; the namespace is still the only place searched.
        #expect(s.store.nearestByMeaning(to: [1, 0, 0, 0], k: 10, in: "alice", excluding: []).allSatisfy { FragmentKey.belongs($0.id, to: "alice") })
        s.eventually("backlinks follow the writes") { s.store.backlinks("alice/lighthouse") == ["alice/harbour"] }
        #expect(s.store.backlinks("bob/lighthouse") == ["bob/lighthouse-2"])
        #expect(s.store.backlinks("lighthouse") == [])
        #expect(s.store.idf(sketch.terms.first!.hash, in: "carol") >= 0)

        // A link into another namespace is not a link.
        let stray = storeError { try s.put("alice/stray", "points at bob", links: ["bob/lighthouse"]) }
        #expect(stray?.code == .invalid)
        #expect(stray?.field == "links")
        #expect(s.isGone("alice/stray"))
    }

    @Test("a write past a quota of fragments or of bytes is refused with the quota and the usage, and writes nothing", arguments: Backend.allCases)
    func quotas(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let (entry, created) = try s.store.namespaces.create("alice", quota: NamespaceQuota(fragments: 2))
        #expect(created)
        #expect(entry.quota == NamespaceQuota(fragments: 2))
        try s.put("alice/a", "one")
        try s.put("alice/b", "two")
        let over = storeError { try s.put("alice/c", "three") }
        #expect(over?.code == .quotaExceeded)
        #expect(over?.quota?.limit == NamespaceQuota(fragments: 2))
        #expect(over?.quota?.usage == NamespaceUsage(fragments: 3, bytes: 11))
        #expect(s.isGone("alice/c"))
        #expect(try s.history("alice/c") == nil)
        #expect(s.store.usage(of: "alice") == NamespaceUsage(fragments: 2, bytes: 6))
        // Rewriting a fragment does not add one; other namespaces have their own quotas.
        try s.put("alice/a", "one, rewritten at more length")
        try s.put("c", "default has no quota")
        // default takes a quota like any other namespace.
        let setDefault = try s.store.namespaces.create(Namespace.default, quota: NamespaceQuota(fragments: 1))
        #expect(setDefault.entry.quota == NamespaceQuota(fragments: 1))
        #expect(!setDefault.created, "default always exists: setting its quota creates nothing")
        #expect(storeError { try s.put("d", "default is full") }?.code == .quotaExceeded)
        try s.put("c", "rewritten within default's quota")
        _ = try s.store.namespaces.create(Namespace.default, quota: NamespaceQuota.none)
        try s.put("d", "default has room again")
        // Deleting makes room.
        try s.delete("alice/b")
        try s.put("alice/c", "three")
        #expect(try s.listedIn("alice") == ["alice/a", "alice/c"])

        // Bytes of content; a namespace's quota set afterwards.
        let (bob, bobCreated) = try s.store.namespaces.create("bob", quota: nil)
        #expect(bobCreated && bob.quota == .none)
        try s.put("bob/long", String(repeating: "x", count: 15))
        let (limited, again) = try s.store.namespaces.create("bob", quota: NamespaceQuota(bytes: 20))
        #expect(!again)
        #expect(limited.quota == NamespaceQuota(bytes: 20))
        #expect(s.store.namespaces.entry("bob")?.quota == NamespaceQuota(bytes: 20))
        let bytes = storeError { try s.put("bob/more", "0123456789") }
        #expect(bytes?.code == .quotaExceeded)
        #expect(bytes?.quota?.usage == NamespaceUsage(fragments: 2, bytes: 25))
        #expect(s.isGone("bob/more"))
        let longer = storeError { try s.put("bob/long", String(repeating: "y", count: 21)) }
        #expect(longer?.code == .quotaExceeded)
        #expect(s.served("bob/long")?.json["content"]?.stringValue == String(repeating: "x", count: 15), "the refused write changed nothing")
        try s.put("bob/long", "short now")
        try s.put("bob/more", "0123456789")
        #expect(s.store.usage(of: "bob") == NamespaceUsage(fragments: 2, bytes: 19))
        // Without a quota in the call, the quota stays as it is.
        #expect(try s.store.namespaces.create("bob", quota: nil).entry.quota == NamespaceQuota(bytes: 20))
        _ = try s.store.namespaces.create("bob", quota: NamespaceQuota.none)
        try s.put("bob/big", String(repeating: "z", count: 100))

        // An import past the quota is refused as a whole.
        let t = Self.past
        let imports = (0..<2).map { ImportedFragment(id: "alice/imported\($0)", version: 100 + UInt64($0), createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "imported"))) }
        let refused = storeError { _ = try s.importFragments(imports) }
        #expect(refused?.code == .quotaExceeded)
        #expect(s.isGone("alice/imported0") && s.isGone("alice/imported1"))
    }

    @Test("a write, a batch item or an import into a namespace nobody created is refused; default always exists", arguments: Backend.allCases)
    func unknownNamespace(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        #expect(s.store.namespaces.entry("ghost") == nil)
        #expect(s.store.namespaces.entry(Namespace.default)?.name == Namespace.default)
        let refused = storeError { try s.put("ghost/x", "nobody made this namespace") }
        #expect(refused?.code == .namespaceNotFound)
        #expect(s.isGone("ghost/x"))
        let results = s.putBatch([BatchPut(id: "ghost/y", input: FragmentInput(content: "y")), BatchPut(id: "fine", input: FragmentInput(content: "in default"))])
        #expect(results.count == 2)
        #expect(results[0].failure?.code == .namespaceNotFound)
        #expect(results[1].success?.created == true)
        let t = Self.past
        let imported = storeError {
            _ = try s.importFragments([ImportedFragment(id: "ghost/z", version: 5, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "z")))])
        }
        #expect(imported?.code == .namespaceNotFound)
        #expect(s.isGone("ghost/z"))
        #expect(s.store.usage(of: "ghost") == NamespaceUsage())
        #expect(s.store.usage()["ghost"] == nil)
        #expect(storeError { try s.deleteNamespace("ghost") }?.code == .namespaceNotFound)
        #expect(storeError { try s.deleteNamespace(Namespace.default) }?.code == .invalid)
    }

    @Test("a batch answers each item: created, updated, refused; retried, it writes no new versions", arguments: Backend.allCases)
    func batches(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        _ = try s.store.namespaces.create("alice", quota: NamespaceQuota(fragments: 4))
        let existing = try s.put("alice/old", "written before the batch")
        let batch = [
            BatchPut(id: "alice/a", input: FragmentInput(content: "first", tags: ["t"]), unlessUnchanged: true),
            BatchPut(id: "alice/old", input: FragmentInput(content: "written again in the batch"), precondition: WritePrecondition(ifMatch: [existing.fragment.version]), unlessUnchanged: true),
            BatchPut(id: "alice/b", input: FragmentInput(content: "second", metadata: ["k": 1]), unlessUnchanged: true),
            BatchPut(id: "alice/c", input: FragmentInput(content: "wrong version"), precondition: WritePrecondition(ifMatch: [999]), unlessUnchanged: true),
            BatchPut(id: "alice/bad id", input: FragmentInput(content: "x"), unlessUnchanged: true),
            BatchPut(id: "alice/d", input: FragmentInput(content: "third new one"), unlessUnchanged: true),
            BatchPut(id: "alice/e", input: FragmentInput(content: "over the quota of four"), unlessUnchanged: true),
        ]
        let first = s.putBatch(batch)
        #expect(first.count == batch.count)
        #expect(first[0].success?.created == true)
        #expect(first[1].success?.created == false)
        #expect(first[1].success?.unchanged == false)
        #expect(first[2].success?.created == true)
        #expect(first[3].failure?.code == .preconditionFailed)
        #expect(first[4].failure?.code == .invalid)
        #expect(first[5].success?.created == true)
        #expect(first[6].failure?.code == .quotaExceeded)
        #expect(first[6].failure?.quota?.usage.fragments == 5)
        let versions = [0, 1, 2, 5].map { first[$0].success?.fragment.version ?? 0 }
        #expect(versions.allSatisfy { $0 > existing.fragment.version })
        #expect(Set(versions).count == 4, "each write its own version")
        #expect(s.served("alice/a")?.json["tags"] == ["t"])
        #expect(s.served("alice/b")?.json["metadata"] == ["k": 1])
        #expect(s.served("alice/old")?.json["content"] == "written again in the batch")
        #expect(s.isGone("alice/c") && s.isGone("alice/e"))
        #expect(try s.listedIn("alice") == ["alice/a", "alice/b", "alice/d", "alice/old"])
        #expect(s.store.usage(of: "alice").fragments == 4)

        // The same batch again: nothing new is written. `old`'s If-Match is checked before whether it
        // is unchanged, as on one machine, and names the version the first attempt replaced.
        let retry = s.putBatch(batch)
        #expect(retry[0].success?.unchanged == true)
        #expect(retry[0].success?.created == false)
        #expect(retry[0].success?.fragment.version == versions[0])
        #expect(retry[0].success?.fragment.body == first[0].success?.fragment.body)
        #expect(retry[2].success?.unchanged == true)
        #expect(retry[2].success?.fragment.version == versions[2])
        #expect(retry[5].success?.unchanged == true)
        #expect(retry[1].failure?.code == .preconditionFailed, "If-Match names the version the first attempt replaced")
        #expect(retry[6].failure?.code == .quotaExceeded)
        #expect(try s.kinds("alice/a") == ["created"])
        #expect(try s.kinds("alice/d") == ["created"])

        // Retried without the precondition, an unchanged item is unchanged; a changed one is updated.
        let changed = s.putBatch([
            BatchPut(id: "alice/old", input: FragmentInput(content: "written again in the batch"), unlessUnchanged: true),
            BatchPut(id: "alice/a", input: FragmentInput(content: "first, changed", tags: ["t"]), unlessUnchanged: true),
            BatchPut(id: "alice/b", input: FragmentInput(content: "second", metadata: ["k": 1])),
        ])
        #expect(changed[0].success?.unchanged == true)
        #expect(changed[0].success?.fragment.version == versions[1])
        #expect(changed[1].success?.unchanged == false)
        #expect(changed[1].success?.fragment.version ?? 0 > versions[3])
        #expect(changed[2].success?.unchanged == false, "without unlessUnchanged, a write is a write")
        #expect(try s.kinds("alice/a") == ["created", "updated"])
        #expect(try s.kinds("alice/b") == ["created", "updated"])

        // The same id twice in a batch: the second sees the first.
        let twice = s.putBatch([
            BatchPut(id: "twice", input: FragmentInput(content: "one"), unlessUnchanged: true),
            BatchPut(id: "twice", input: FragmentInput(content: "two"), unlessUnchanged: true),
        ])
        #expect(twice[0].success?.created == true)
        #expect(twice[1].success?.created == false)
        #expect((twice[1].success?.fragment.version ?? 0) > (twice[0].success?.fragment.version ?? 0))
        #expect(s.served("twice")?.json["content"] == "two")
        #expect(s.putBatch([]).isEmpty)
    }

    @Test("deleting a namespace removes every fragment, its tokens and the namespace, for good; an older import into the name is superseded", arguments: Backend.allCases)
    func deleteNamespace(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.create("alice")
        try s.create("bob")
        var written: [String: UInt64] = [:]
        for index in 0..<12 {
            let id = "alice/f\(index)"
            written[id] = try s.put(id, "alice's fragment \(index) about tide pools", links: ["alice/f\((index + 1) % 12)"], tags: ["pools"]).fragment.version
        }
        try s.put("bob/f0", "bob's fragment about tide pools")
        try s.put("f0", "default's fragment about tide pools")
        try s.damage(["alice/f3"], .lose)
        #expect(s.blank("alice/f3") != nil)
        #expect(s.queue().total == 1)
        let token = NamespaceToken(id: "tokalice", namespace: "alice", scope: .write, hash: Array(repeating: 7, count: 32), createdAt: .now)
        try s.store.namespaces.addToken(token)
        #expect(s.store.namespaces.token("tokalice")?.namespace == "alice")
        #expect(try s.store.namespaces.tokens(of: "alice").map(\.id) == ["tokalice"])
        s.indexed(14)

        #expect(try s.deleteNamespace("alice") == 12)
        #expect(s.store.namespaces.entry("alice") == nil)
        #expect(s.store.namespaces.token("tokalice") == nil, "its tokens are revoked with it")
        #expect(s.store.namespaces.versionFloor("alice") >= written.values.max()!)
        for id in written.keys { #expect(s.isGone(id), "\(id)") }
        #expect(try s.listedIn("alice") == [])
        #expect(try s.store.ids(namespace: "alice", after: nil, limit: 100) == [])
        #expect(s.store.usage(of: "alice") == NamespaceUsage())
        #expect(s.store.usage()["alice"] == nil || s.store.usage()["alice"] == NamespaceUsage())
        #expect(s.queue().total == 0, "its repairs go with it")
        #expect(try s.history("alice/f0") == nil)
        s.indexed(2)
        var query = QueryRequest(text: "tide pools", mode: .text, k: 20)
        query.namespace = "alice"
        #expect(try s.store.query(query).hits.isEmpty)
        #expect(s.served("bob/f0") != nil && s.served("f0") != nil)
        #expect(try s.store.namespaces.entries(after: nil, limit: 10).map(\.name) == ["bob", "default"])
        #expect(storeError { try s.put("alice/late", "after the deletion") }?.code == .namespaceNotFound)
        #expect(storeError { try s.deleteNamespace("alice") }?.code == .namespaceNotFound)

        // After a restart, nothing comes back.
        try s.reopen()
        s.indexed(2)
        #expect(s.store.namespaces.entry("alice") == nil)
        #expect(try s.listedIn("alice") == [])
        #expect(s.store.usage(of: "alice") == NamespaceUsage())
        #expect(s.isGone("alice/f0"))

        // The name may be used again; the old export's versions stay deleted.
        let (_, created) = try s.store.namespaces.create("alice", quota: nil)
        #expect(created)
        let t = Self.past
        let old = written.sorted { $0.key < $1.key }.map { id, version in
            ImportedFragment(id: id, version: version, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "the old export of \(id)")))
        }
        #expect(try s.importFragments(old) == Array(repeating: .superseded, count: old.count))
        #expect(try s.listedIn("alice") == [])
        let fresh = try s.put("alice/f0", "written after the deletion")
        #expect(fresh.created)
        #expect(fresh.fragment.version > s.store.namespaces.versionFloor("alice"))
        #expect(try s.kinds("alice/f0") == ["created"])
        let newer = ImportedFragment(
            id: "alice/new", version: s.store.namespaces.versionFloor("alice") + 1_000, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "newer than the floor")))
        #expect(try s.importFragments([newer]) == [.imported])
        #expect(try s.listedIn("alice") == ["alice/f0", "alice/new"])
        #expect(s.store.usage(of: "alice").fragments == 2)
    }

    @Test("repairs are taken with namespaces in turn: one namespace's backlog does not hold back another's blank", arguments: Backend.allCases)
    func repairTurns(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.create("big")
        try s.create("small")
        let big = (0..<12).map { "big/n\($0)" }
        for id in big { try s.put(id, "a note of the big namespace, \(id)") }
        try s.put("small/only", "the small namespace's one note")
        try s.damage(big, .lose)
        for id in big { _ = s.store.read(id) }
        try s.damage(["small/only"], .lose)
        _ = s.store.read("small/only")
        s.applied()
        // Queued last, behind twelve older tickets; taken among the first three all the same.
        let first = try s.store.readyRepairs(limit: 3, now: Timestamp.now.adding(milliseconds: 3_600_000))
        #expect(first.count == 3)
        #expect(first.map(\.id).contains("small/only"))
    }

    @Test("a fragment rebuilt from context takes its sources from its own namespace only", arguments: Backend.allCases)
    func reconstructionStaysInNamespace(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.create("alice")
        try s.create("bob")
        let topic = "The tide pools north of the harbour hold anemones, crabs and small fish at low tide. "
            + "Volunteers from the marine station count them every month and publish the counts on the station's notice board. "
            + "Visitors are asked not to lift rocks, because the crabs that hide under them dry out in minutes. "
            + "The best time to visit is an hour before the lowest tide of the day, in calm weather."
        let original = try s.put("alice/pools", topic, links: ["alice/anemones", "alice/crabs"], tags: ["coast"]).fragment
        try s.put("alice/anemones", "Anemones in the tide pools close when the tide goes out.", links: ["alice/pools"])
        try s.put("alice/crabs", "Crabs hide under rocks in the tide pools of the harbour.", links: ["alice/pools"])
        // Bob holds the very same text, and more: the best source there is, in the wrong namespace.
        try s.put("bob/copy", topic, links: ["bob/pools"])
        try s.put("bob/pools", topic, links: ["bob/copy"])
        try s.put("bob/volunteers", "Volunteers from the marine station count the tide pools every month and publish the counts.")
        s.indexed(6)
        try s.damage(["alice/pools"], .loseBoth)
        #expect(s.blank("alice/pools") != nil)

        let report = try s.dream()
        #expect(report["outcomes"]?["reconstructed"] == 1, "\(report)")
        let rebuilt = try #require(s.served("alice/pools"))
        #expect(rebuilt.fragment.status == .reconstructed)
        #expect(rebuilt.fragment.version == original.version)
        #expect(rebuilt.json["namespace"] == "alice")
        let sources = (rebuilt.json["sources"]?.arrayValue ?? []).compactMap { $0.stringValue }
        #expect(!sources.isEmpty)
        #expect(Set(sources).isSubset(of: ["anemones", "crabs"]), "\(sources)")
        #expect(rebuilt.json["content"]?.stringValue != topic, "Bob's copy was not used")
        // The served body is the record with status and checksum appended: it decodes as one.
        let record = try #require(FragmentRecord.decode(rebuilt.fragment.body))
        #expect(record.reconstruction?.sources.allSatisfy { FragmentKey.belongs($0, to: "alice") } == true)
        #expect(s.served("bob/pools")?.json["content"]?.stringValue == topic)
    }
}

// MARK: Helpers

extension BackendStore {
    func create(_ name: String) throws {
        let (_, created) = try self.store.namespaces.create(name, quota: nil)
        #expect(created)
    }

    /// Every key of a namespace a listing yields, once everything acknowledged is applied.
    func listedIn(_ namespace: String) throws -> [String] {
        self.applied()
        var ids: [String] = []
        var after: String?
        repeat {
            let page = try self.store.list(namespace: namespace, status: nil, tag: nil, after: after, limit: 5)
            ids += page.rows.map(\.id)
            after = page.nextAfter
        } while after != nil
        return ids
    }

    func putBatch(_ batch: [BatchPut]) -> [Result<PutOutcome, StoreError>] {
        let box = Mutex<[Result<PutOutcome, StoreError>]?>(nil)
        let done = DispatchSemaphore(value: 0)
        self.store.put(batch: batch) { results in
            box.withLock { $0 = results }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    @discardableResult
    func deleteNamespace(_ name: String) throws(StoreError) -> Int {
        let box = Mutex<Result<Int, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        self.store.deleteNamespace(name) { result in
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try box.withLock { $0! }.get()
    }
}

extension Result {
    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }

    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
