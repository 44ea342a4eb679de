import CarmaJSON
import CarmaTesting
import FragmentCore
import Dispatch
import Synchronization
import Testing

/// Writes, reads, preconditions, deletes and expiry: the same calls and the same answers on both
/// backends.
@Suite("Fragments on both backends")
struct FragmentBehaviourTests {
    @Test("a fragment reads back as written: unicode content, links, tags, metadata and a client vector", arguments: Backend.allCases)
    func roundTrip(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        #expect(s.store.kind == backend.kind)
        let text = "Ünïcødé ✓ — 日本語のテキスト, emoji 🧠, quotes \"\\\" and\ttabs\nnew lines"
        let metadata: JSONObject = ["n": 1.5, "nested": ["ok": true, "list": [1, "två"]], "name": "Åsa"]
        let input = FragmentInput(content: text, links: ["other"], tags: ["lang:ja", "ümlaut"], metadata: metadata, embedding: [0.25, -0.5, 1])
        let written = try s.put("unicode", input)
        #expect(written.created)
        #expect(written.fragment.status == .ok)

        let read = try #require(s.served("unicode"))
        #expect(read.fragment.version == written.fragment.version)
        #expect(read.fragment.checksum == written.fragment.checksum)
        #expect(read.fragment.body == written.fragment.body, "the write answers the body every later read serves")
        #expect(read.json["id"] == "unicode")
        #expect(read.json["content"]?.stringValue == text)
        #expect(read.json["links"] == ["other"])
        #expect(read.json["tags"] == ["lang:ja", "ümlaut"])
        #expect(read.json["metadata"] == .object(metadata))
        #expect(read.json["embedding"] == [0.25, -0.5, 1])
        #expect(read.json["version"]?.intValue == Int(written.fragment.version))
        #expect(read.json["size"]?.intValue == text.utf8.count)
        #expect(read.json["status"] == "ok")

        let row = try #require(s.store.row("unicode"))
        #expect(row.status == .ok)
        #expect(row.version == written.fragment.version)
        #expect(row.size == text.utf8.count)
        #expect(row.links == ["other"])
        #expect(row.tags == ["lang:ja", "ümlaut"])
        #expect(row.blankReason == nil && row.confidence == nil && row.expiresAt == nil)

        // A second write is a new version of the same fragment: created once, updated since.
        let replaced = try s.put("unicode", "second version")
        #expect(!replaced.created)
        #expect(replaced.fragment.version > written.fragment.version)
        let again = try #require(s.served("unicode"))
        #expect(again.json["content"] == "second version")
        #expect(again.json["links"] == [])
        #expect(again.json["metadata"] == [:])
        #expect(again.json["embedding"] == nil)
        let newRow = try #require(s.store.row("unicode"))
        #expect(newRow.createdAt == row.createdAt)
        #expect(newRow.updatedAt >= row.updatedAt)
        #expect(try s.kinds("unicode") == ["created", "updated"])
        #expect(s.isGone("never-stored"))
        #expect(s.store.row("never-stored") == nil)
        #expect(try s.history("never-stored") == nil)
    }

    @Test("conditional writes hold or fail with the current version; bad input is refused by field and changes nothing", arguments: Backend.allCases)
    func preconditionsAndErrors(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let first = try s.put("doc", "first", WritePrecondition(ifNoneMatchAny: true))
        #expect(first.created)
        let v1 = first.fragment.version

        let exists = storeError { try s.put("doc", "again", WritePrecondition(ifNoneMatchAny: true)) }
        #expect(exists?.code == .preconditionFailed)
        #expect(exists?.currentVersion == v1)
        let stale = storeError { try s.put("doc", "again", WritePrecondition(ifMatch: [v1 + 1000])) }
        #expect(stale?.code == .preconditionFailed)
        #expect(stale?.currentVersion == v1)
        let absent = storeError { try s.put("nothing", "x", WritePrecondition(matchAny: true)) }
        #expect(absent?.code == .preconditionFailed)
        #expect(absent?.currentVersion == nil)
        #expect(s.isGone("nothing"))
        #expect(s.served("doc")?.json["content"] == "first")

        let second = try s.put("doc", "second", WritePrecondition(ifMatch: [v1 + 1000, v1]))
        #expect(!second.created)
        #expect(second.fragment.version > v1)
        #expect(try s.put("doc", "third", WritePrecondition(matchAny: true)).fragment.version > second.fragment.version)

        let staleDelete = storeError { try s.delete("doc", WritePrecondition(ifMatch: [v1])) }
        #expect(staleDelete?.code == .preconditionFailed)
        #expect(s.served("doc")?.json["content"] == "third")
        #expect(storeError { try s.delete("nothing") }?.code == .notFound)
        #expect(storeError { try s.delete("nothing", WritePrecondition(matchAny: true)) }?.code == .notFound)

        // Exactly at the limit is stored; one byte over is refused, naming the field.
        let atLimit = String(repeating: "é", count: 32768)
        try s.put("limit", atLimit)
        #expect(s.served("limit")?.json["content"]?.stringValue == atLimit)
        let refusals: [(String, FragmentInput, String)] = [
            ("over", FragmentInput(content: atLimit + "x"), "content"),
            (".hidden", FragmentInput(content: "x"), "id"),
            ("links", FragmentInput(content: "x", links: ["bad/link"]), "links"),
            ("tags", FragmentInput(content: "x", tags: [""]), "tags"),
            ("expired", FragmentInput(content: "x", expiresAt: Timestamp.now.adding(milliseconds: -1000)), "expires_at"),
            ("vector", FragmentInput(content: "x", embedding: [.infinity]), "embedding"),
        ]
        for (id, input, field) in refusals {
            let error = storeError { try s.put(id, input) }
            #expect(error?.code == .invalid, "\(id)")
            #expect(error?.field == field, "\(id): \(error?.message ?? "")")
            #expect(s.isGone(id), "\(id) was stored")
        }
        // The first client vector fixes the dimension.
        try s.put("three", FragmentInput(content: "three numbers", embedding: [1, 0, 0]))
        let otherDimension = storeError { try s.put("four", FragmentInput(content: "four numbers", embedding: [1, 0, 0, 0])) }
        #expect(otherDimension?.code == .invalid)
        #expect(otherDimension?.field == "embedding")
        #expect(s.isGone("four"))
        #expect(try s.listed() == ["doc", "limit", "three"])
    }

    @Test("a deleted fragment is gone for every reader, and an id written again starts afresh", arguments: Backend.allCases)
    func delete(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.put("gone", "to be deleted", tags: ["t"])
        try s.put("gone", "updated once", tags: ["t"])
        try s.put("kept", "stays", tags: ["t"])
        try s.delete("gone")
        #expect(s.isGone("gone"))
        #expect(s.store.row("gone") == nil)
        #expect(try s.history("gone") == nil)
        #expect(try s.listed() == ["kept"])
        #expect(try s.listed(tag: "t") == ["kept"])
        #expect(storeError { try s.delete("gone") }?.code == .notFound)
        #expect(s.store.stats().fragments == 1)

        let again = try s.put("gone", "written again", WritePrecondition(ifNoneMatchAny: true))
        #expect(again.created)
        #expect(s.served("gone")?.json["content"] == "written again")
        #expect(try s.kinds("gone") == ["created"], "the history of the deleted fragment went with it")
    }

    @Test("an expired fragment is gone for every reader and may be written again as new", arguments: Backend.allCases)
    func expiry(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let soon = Timestamp.now.adding(milliseconds: 400)
        try s.put("brief", FragmentInput(content: "soon gone", expiresAt: soon))
        try s.put("stays", "kept")
        // An import keeps an expiry already past (an export must not be refused for aging): gone at once.
        let past = Timestamp.now.adding(milliseconds: -60_000)
        let outcomes = try s.importFragments([
            ImportedFragment(id: "old", version: 5, createdAt: past, updatedAt: past, payload: .exact(FragmentInput(content: "expired", expiresAt: past)))
        ])
        #expect(outcomes == [.imported])
        #expect(s.isGone("old"))
        #expect(s.store.row("old") == nil)

        let served = try #require(s.served("brief"))
        #expect(served.json["expires_at"]?.stringValue == soon.rfc3339)
        #expect(s.store.row("brief")?.expiresAt == soon)
        #expect(try s.listed() == ["brief", "stays"])

        try s.eventually("a query finds the fragment while it lives") {
            try s.store.query(QueryRequest(text: "soon gone", mode: .text, k: 5)).hits.contains { $0.id == "brief" }
        }
        s.eventually("the fragment expires") { s.isGone("brief") }
        #expect(s.store.row("brief") == nil)
        #expect(try s.history("brief") == nil)
        #expect(try s.store.query(QueryRequest(text: "soon gone", mode: .text, k: 5)).hits.allSatisfy { $0.id != "brief" })
        // Counted until a cycle's compaction deletes them (with a tombstone, on the embedded store).
        let report = try s.dream()
        #expect(report["compaction"]?["expired"] == 2, "\(report)")
        #expect(s.store.stats().fragments == 1)
        #expect(s.store.stats().byStatus[.ok] == 1)
        #expect(try s.listed() == ["stays"])
        #expect(storeError { try s.delete("brief") }?.code == .notFound)
        let expiredMatch = storeError { try s.put("brief", "x", WritePrecondition(matchAny: true)) }
        #expect(expiredMatch?.code == .preconditionFailed)
        #expect(expiredMatch?.currentVersion == nil, "an expired fragment has no current version")
        let rewritten = try s.put("brief", "back again", WritePrecondition(ifNoneMatchAny: true))
        #expect(rewritten.created)
        #expect(s.served("brief")?.json["content"] == "back again")
        #expect(s.served("brief")?.json["expires_at"] == nil)
    }

    @Test("everything acknowledged survives a reopen: fragments, blanks and their queue, histories, versions and the client vectors' dimension", arguments: Backend.allCases)
    func reopen(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        var bodies: [String: [UInt8]] = [:]
        for index in 0..<8 {
            bodies["r\(index)"] = try s.put("r\(index)", "reopened note \(index) about lighthouses and tides", tags: ["r"]).fragment.body
        }
        bodies["vector"] = try s.put("vector", FragmentInput(content: "a note with a vector", embedding: [1, 0, 0])).fragment.body
        bodies["r1"] = try s.put("r1", "r1, rewritten before the restart").fragment.body
        bodies["r2"] = nil
        try s.delete("r2")
        try s.damage(["r3"], .lose)
        let blank = try #require(s.blank("r3"))
        bodies["r3"] = nil
        let highest = try #require(s.store.row("r1")?.version)

        try s.reopen()
        for (id, body) in bodies {
            #expect(s.served(id)?.fragment.body == body, "\(id)")
        }
        #expect(s.isGone("r2"))
        let reopened = try #require(s.blank("r3"))
        #expect(reopened.row.version == blank.row.version)
        #expect(reopened.row.blankReason == blank.row.blankReason)
        #expect(s.queue().total == 1)
        #expect(try s.kinds("r1") == ["created", "updated"])
        #expect(try s.kinds("r3") == ["created", "lost", "queued"])
        #expect(try s.listed() == ["r0", "r1", "r3", "r4", "r5", "r6", "r7", "vector"])
        let otherDimension = storeError { try s.put("four", FragmentInput(content: "four numbers", embedding: [1, 0, 0, 0])) }
        #expect(otherDimension?.field == "embedding")
        #expect(try s.put("after", "written after the restart").fragment.version > highest)
        // The text index is loaded again (in the background) and finds the same.
        s.indexed(9)
        let found = try s.store.query(QueryRequest(text: "lighthouses and tides", mode: .text, k: 10))
        #expect(found.hits.map(\.id).sorted() == ["r0", "r3", "r4", "r5", "r6", "r7"], "\(found.hits.map { ($0.id, $0.row.status) })")
    }

    @Test("many writers and readers on the same ids at once: every read whole, versions only go up, the last write wins", arguments: Backend.allCases)
    func concurrentWriters(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let store = s.store
        let ids = (0..<4).map { "shared\($0)" }
        let failures = Mutex<[String]>([])
        let lastWritten = Mutex<[String: UInt64]>([:])
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            var seen: [String: UInt64] = [:]
            for round in 0..<40 {
                let id = ids[(worker + round) % ids.count]
                if worker % 2 == 0 {
                    let done = DispatchSemaphore(value: 0)
                    store.put(id, FragmentInput(content: "\(id) by \(worker) round \(round)"), precondition: .none) { result in
                        switch result {
                        case .success(let outcome): lastWritten.withLock { $0[id] = max($0[id] ?? 0, outcome.fragment.version) }
                        case .failure(let error): failures.withLock { $0.append("put \(id): \(error)") }
                        }
                        done.signal()
                    }
                    done.wait()
                } else {
                    guard case .fragment(let fragment) = store.read(id) else { continue }
                    let json = try? JSONParser.parse(fragment.body)
                    if json?["content"]?.stringValue?.hasPrefix("\(id) by ") != true { failures.withLock { $0.append("torn read of \(id)") } }
                    if json?["version"]?.intValue != Int(fragment.version) { failures.withLock { $0.append("\(id): body and version differ") } }
                    if fragment.version < seen[id, default: 0] { failures.withLock { $0.append("\(id) went back to version \(fragment.version)") } }
                    seen[id] = fragment.version
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        for id in ids {
            #expect(s.served(id)?.fragment.version == lastWritten.withLock { $0[id] }, "\(id): the newest acknowledged version is served")
            // Three writers, each writing every id ten times.
            #expect(try s.kinds(id) == ["created"] + Array(repeating: "updated", count: 29), "\(id)")
        }
    }
}
