import CarmaJSON
import CarmaTesting
import Foundation
import Logging
import Synchronization
import Testing

@testable import FragmentStore

@Suite("Fragment store")
struct StoreTests {
    @Test("a stored fragment reads back byte-exact, from the cache and from disk")
    func roundTrip() throws {
        let test = try TestStore()
        let content = "Grüße, 世界 — \u{1F600} and a quote \" and a newline\n"
        let outcome = try test.put("a", content, links: ["b", "c"], tags: ["t"])
        #expect(outcome.created)
        for attempt in 0..<2 {
            guard case .fragment(let fragment) = test.store.read("a") else {
                Issue.record("not readable on attempt \(attempt)")
                return
            }
            let json = try JSONParser.parse(fragment.body)
            #expect(json["content"]?.stringValue == content)
            #expect(json["links"] == ["b", "c"])
            #expect(json["status"] == "ok")
            #expect(json["checksum"]?.stringValue == CRC32C.format(fragment.checksum))
            try test.reopen(cacheBytes: 0)
        }
    }

    @Test("the start-up scan hands over every registry row exactly once, across chunks")
    func registryScanChunks() throws {
        let test = try TestStore()
        let ids = (0..<23).map { "s\($0)" }
        for id in ids { try test.put(id, "content of \(id)", tags: ["scan"]) }
        test.store.close()
        // Chunks of 4 with one in flight: six hand-overs, the reader waiting on the consumer each time.
        let scan = RegistryScan(registry: test.store.registry, chunkSize: 4, chunksInFlight: 1)
        scan.start()
        var seen: [String] = []
        var sizes: [Int] = []
        while let chunk = scan.next() {
            sizes.append(chunk.count)
            seen += chunk.map(\.id)
        }
        #expect(scan.failure == nil)
        #expect(seen.sorted() == ids.sorted())
        #expect(sizes == [4, 4, 4, 4, 4, 3])

        // And a store opened on those rows indexes all of them.
        try test.reopen(cacheBytes: 0)
        for id in ids {
            guard case .fragment(let fragment) = test.store.read(id) else {
                Issue.record("\(id) not readable after reopening")
                continue
            }
            #expect(try JSONParser.parse(fragment.body)["content"]?.stringValue == "content of \(id)")
        }
    }

    @Test("versions only go up and replacing reports an update")
    func versions() throws {
        let test = try TestStore()
        let first = try test.put("a", "one")
        let second = try test.put("a", "two")
        #expect(!second.created)
        #expect(second.fragment.version > first.fragment.version)
        try test.delete("a")
        let third = try test.put("a", "three")
        #expect(third.created)
        #expect(third.fragment.version > second.fragment.version)
    }

    @Test("If-Match and If-None-Match hold or nothing changes")
    func preconditions() throws {
        let test = try TestStore()
        let first = try test.put("a", "one")
        #expect(throws: StoreError.self) { try test.put("a", "x", precondition: WritePrecondition(ifMatch: [first.fragment.version + 1])) }
        #expect(throws: StoreError.self) { try test.put("a", "x", precondition: WritePrecondition(ifNoneMatchAny: true)) }
        #expect(throws: StoreError.self) { try test.put("new", "x", precondition: WritePrecondition(matchAny: true)) }
        #expect(test.store.row("a")?.version == first.fragment.version)
        #expect(test.store.row("new") == nil)
        let second = try test.put("a", "two", precondition: WritePrecondition(ifMatch: [first.fragment.version]))
        #expect(second.fragment.version > first.fragment.version)
    }

    @Test("a deleted fragment is gone, files included, and an unknown one is not found")
    func deletion() throws {
        let test = try TestStore()
        try test.put("a", "one")
        let paths = test.payloadPaths("a")
        try test.delete("a")
        guard case .notFound = test.store.read("a") else {
            Issue.record("deleted fragment still readable")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: paths.primary))
        #expect(paths.redundancy != nil)
        #expect(throws: StoreError.self) { try test.delete("a") }
        guard case .notFound = test.store.read("never") else {
            Issue.record("unknown id readable")
            return
        }
        #expect(test.store.stats().fragments == 0)
    }

    @Test("a missing payload turns the fragment blank, durably and queued for repair")
    func missingPayload() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "one", links: ["b"], tags: ["t"])
        try FileManager.default.removeItem(atPath: test.payloadPaths("a").primary)
        guard case .blank(let blank) = test.store.read("a") else {
            Issue.record("expected a blank")
            return
        }
        #expect(blank.row.blankReason == .missing)
        #expect(blank.row.links == ["b"])
        #expect(blank.queuedAt != nil)
        try test.reopen(cacheBytes: 0)
        #expect(test.store.row("a")?.status == .blank)
        let events = try #require(try test.store.history("a")).map(\.kind)
        #expect(events == ["created", "lost", "queued"])
    }

    @Test("a flipped byte turns the fragment blank with reason checksum_mismatch")
    func corruptPayload() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "some content worth keeping")
        let path = test.payloadPaths("a").primary
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 5] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        guard case .blank(let blank) = test.store.read("a") else {
            Issue.record("corrupt payload was served")
            return
        }
        #expect(blank.row.blankReason == .checksumMismatch)
    }

    @Test("listing filters by status and tag and pages with a cursor")
    func listing() throws {
        let test = try TestStore(cacheBytes: 0)
        for index in 0..<25 {
            try test.put(String(format: "f%02d", index), "content \(index)", tags: index % 2 == 0 ? ["even"] : ["odd"])
        }
        try FileManager.default.removeItem(atPath: test.payloadPaths("f03").primary)
        _ = test.store.read("f03")
        var seen: [String] = []
        var after: String?
        repeat {
            let page = try test.store.list(status: nil, tag: "even", after: after, limit: 5)
            seen += page.rows.map(\.id)
            after = page.nextAfter
        } while after != nil
        #expect(seen == stride(from: 0, to: 25, by: 2).map { String(format: "f%02d", $0) })
        #expect(try test.store.list(status: .blank, tag: nil, after: nil, limit: 10).rows.map(\.id) == ["f03"])
    }

    @Test("the registry is rebuilt from the payload files when it is lost")
    func reindex() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha", links: ["b"], tags: ["x"])
        try test.put("b", "beta")
        try test.put("c", "gamma")
        let versionA = test.store.row("a")!.version
        try FileManager.default.removeItem(atPath: test.payloadPaths("c").primary)
        test.store.close()
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: "\(test.directory.path)/registry.sqlite3\(suffix)")
        }
        try test.reopen(cacheBytes: 0)
        #expect(test.store.row("a")?.version == versionA)
        #expect(test.store.row("a")?.links == ["b"])
        #expect(test.store.row("a")?.status == .ok)
        #expect(test.store.row("c")?.status == .blank)
        guard case .fragment(let fragment) = test.store.read("a") else {
            Issue.record("a not readable after reindex")
            return
        }
        #expect(try JSONParser.parse(fragment.body)["content"] == "alpha")
        // New versions continue above the rebuilt ones.
        #expect(try test.put("d", "delta").fragment.version > versionA)
    }

    @Test("many writers on the same ids: every write lands, versions only go up, the newest wins")
    func concurrentWriters() throws {
        let test = try TestStore()
        let store = test.store
        // Per id, the content of the highest version acknowledged: what a read must answer at the end.
        let newest = Mutex<[String: (version: UInt64, content: String)]>([:])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            var last: UInt64 = 0
            for round in 0..<50 {
                let id = "shared-\(round % 4)"
                let content = "w\(worker) r\(round)"
                let outcome = try! wait { done in store.put(id, FragmentInput(content: content), completion: done) }
                #expect(outcome.fragment.version > last)
                last = outcome.fragment.version
                newest.withLock { table in
                    if (table[id]?.version ?? 0) < outcome.fragment.version {
                        table[id] = (outcome.fragment.version, content)
                    }
                }
                if case .fragment(let fragment) = store.read(id) {
                    let json = try! JSONParser.parse(fragment.body)
                    #expect(json["content"]?.stringValue?.hasPrefix("w") == true)
                } else {
                    Issue.record("torn or missing read")
                }
            }
        }
        // Outcomes only: how the writes happened to be grouped into commits depends on the machine.
        let stats = store.stats()
        #expect(stats.fragments == 4)
        #expect(stats.committedOperations == 400)
        for (id, expected) in newest.withLock({ $0 }) {
            guard case .fragment(let fragment) = store.read(id) else {
                Issue.record("\(id) not readable")
                continue
            }
            #expect(fragment.version == expected.version)
            #expect(try JSONParser.parse(fragment.body)["content"]?.stringValue == expected.content)
        }
    }
}

@Suite("Redundancy segments")
struct RedundancySegmentTests {
    @Test("compaction rewrites live copies out of mostly-garbage segments and deletes them")
    func compaction() throws {
        let directory = TemporaryDirectory("segments")
        defer { directory.remove() }
        let configuration = StoreConfiguration(dataDirectory: directory.path, cacheBytes: 0, redundancySegmentBytes: 4096)
        let store = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
        defer { store.close() }
        for round in 0..<4 {
            for index in 0..<40 {
                _ = try wait { done in store.put("f\(index)", FragmentInput(content: "round \(round) fragment \(index) " + String(repeating: "z", count: 200)), completion: done) }
            }
        }
        let before = store.diskUsage().redundancy
        let segmentsBefore = RedundancyLog.segments(in: store.redundancy.root).count
        let (removed, moved) = store.compactRedundancy(threshold: 0.5, maxSegments: 1000)
        #expect(removed > 0)
        #expect(RedundancyLog.segments(in: store.redundancy.root).count < segmentsBefore)
        #expect(store.diskUsage().redundancy < before / 2)
        #expect(moved <= 40)
        for index in 0..<40 {
            let target = try #require(store.repairTarget("f\(index)"))
            #expect(store.exactRecordFromRedundancy(target) != nil, "f\(index) lost its copy")
        }
        // And the registry agrees after a restart.
        store.close()
        let reopened = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
        defer { reopened.close() }
        for index in 0..<40 {
            let target = try #require(reopened.repairTarget("f\(index)"))
            #expect(reopened.exactRecordFromRedundancy(target) != nil)
        }
    }

    @Test("when the redundancy directory vanishes, new copies go to a new segment")
    func directoryRemoved() throws {
        let test = try TestStore()
        try test.put("a", "before")
        try FileManager.default.removeItem(atPath: test.store.redundancy.root)
        try test.put("b", "after")
        let target = try #require(test.store.repairTarget("b"))
        #expect(test.store.exactRecordFromRedundancy(target) != nil)
        #expect(test.store.exactRecordFromRedundancy(try #require(test.store.repairTarget("a"))) == nil)
    }
}
