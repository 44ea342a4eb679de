import FragmentCore
import CarmaFaults
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

    @Test("a deleted fragment is gone, stays gone when the registry is rebuilt, and an unknown one is not found")
    func deletion() throws {
        let test = try TestStore()
        try test.put("a", "one")
        try test.put("b", "two")
        try test.delete("a")
        guard case .notFound = test.store.read("a") else {
            Issue.record("deleted fragment still readable")
            return
        }
        #expect(throws: StoreError.self) { try test.delete("a") }
        guard case .notFound = test.store.read("never") else {
            Issue.record("unknown id readable")
            return
        }
        #expect(test.store.stats().fragments == 1)
        // The tombstone in the logs keeps it deleted when the registry is lost.
        test.store.close()
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: "\(test.directory.path)/registry.sqlite3\(suffix)")
        }
        try test.reopen()
        #expect(test.store.row("a") == nil)
        #expect(test.store.row("b")?.status == .ok)
        #expect(test.store.startup.rebuilt?.deleted == 1)
    }

    @Test("a zeroed record turns the fragment blank, durably and queued for repair")
    func zeroedRecord() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "one", links: ["b"], tags: ["t"])
        try test.disk.zero(["a"], in: .primary)
        guard case .blank(let blank) = test.store.read("a") else {
            Issue.record("expected a blank")
            return
        }
        #expect(blank.row.blankReason == .checksumMismatch)
        #expect(blank.row.links == ["b"])
        #expect(blank.queuedAt != nil)
        try test.reopen(cacheBytes: 0)
        #expect(test.store.row("a")?.status == .blank)
        #expect(try test.history("a") == ["created", "lost", "queued"])
    }

    @Test("a flipped byte turns the fragment blank with reason checksum_mismatch")
    func corruptPayload() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "some content worth keeping")
        try test.disk.flip(["a"], in: .primary)
        guard case .blank(let blank) = test.store.read("a") else {
            Issue.record("corrupt payload was served")
            return
        }
        #expect(blank.row.blankReason == .checksumMismatch)
    }

    @Test("a blank fragment whose repair ticket was lost is queued again by the scrub")
    func scrubRequeuesBlank() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha")
        try test.disk.zero(["a"], in: .primary)
        guard case .blank = test.store.read("a") else {
            Issue.record("expected a blank")
            return
        }
        // The ticket goes missing, as when the registry change carrying it failed.
        try test.store.commitAndWait(RegistryChange(apply: { try $0.dequeueRepair("a") }))
        #expect(try test.store.readyRepairs(limit: 10).isEmpty)
        _ = test.store.scrub(limit: 10)
        test.store.flush()
        #expect(try test.store.readyRepairs(limit: 10).map(\.id) == ["a"])
    }

    @Test("a reader that found the old, damaged record cannot blank a fragment restored meanwhile")
    func staleReaderAfterRestore() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha")
        let damaged = try #require(test.store.storedRow("a"))
        try test.disk.zero(["a"], in: .primary)
        guard case .blank = test.store.read("a") else {
            Issue.record("expected a blank")
            return
        }
        let target = try #require(test.store.repairTarget("a"))
        let record = try #require(test.store.exactRecordFromRedundancy(target))
        #expect(try test.store.restore([Restoration(target: target, record: record, tier: .redundancy, source: "test", cycle: nil, durationMilliseconds: 0)]) == [true])
        // A read that started before the restore reports what it saw: the old location.
        #expect(test.store.markBlank("a", version: damaged.version, location: damaged.location, reason: .checksumMismatch, detectedBy: .read, priority: .servedBlank) == nil)
        guard case .fragment = test.store.read("a") else {
            Issue.record("the restored fragment was blanked by a stale read")
            return
        }
    }

    @Test("a deleted segment turns every fragment in it blank with reason missing")
    func missingSegment() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha")
        try test.put("b", "beta")
        test.store.close()
        try test.disk.dropSegment(1, in: .primary)
        try test.reopen(cacheBytes: 0)
        for id in ["a", "b"] {
            guard case .blank(let blank) = test.store.read(id) else {
                Issue.record("\(id) served from a deleted segment")
                continue
            }
            #expect(blank.row.blankReason == .missing)
        }
        // New writes go to a new segment, never to a reused number.
        try test.put("c", "gamma")
        #expect((test.store.storedRow("c")?.location?.segment ?? 0) > 1)
    }

    @Test("listing filters by status and tag and pages with a cursor")
    func listing() throws {
        let test = try TestStore(cacheBytes: 0)
        for index in 0..<25 {
            try test.put(String(format: "f%02d", index), "content \(index)", tags: index % 2 == 0 ? ["even"] : ["odd"])
        }
        try test.disk.zero(["f03"], in: .primary)
        _ = test.store.read("f03")
        test.store.flush()
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

    @Test("the registry is rebuilt from the logs when it is lost")
    func reindex() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha", links: ["b"], tags: ["x"])
        try test.put("b", "beta")
        try test.put("c", "gamma")
        let versionA = test.store.row("a")!.version
        try test.disk.zero(["c"], in: .primary)
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
        // The sketches are rebuilt from the records too, a short note's with its text verbatim, so
        // that the sketch tier can still recover it exactly.
        for _ in 0..<500 where !test.store.textIndexReady { usleep(10_000) }
        #expect(test.store.sketch(of: "a")?.verbatim?.content == "alpha")
        let target = try #require(test.store.repairTarget("c"))
        #expect(test.store.sketch(of: "c")?.verbatim?.content == "gamma")
        #expect(test.store.exactRecord(target, from: .sketch) != nil)
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

@Suite("Segment logs")
struct SegmentLogTests {
    @Test("compaction copies live records out of mostly-garbage segments of both logs and deletes them")
    func compaction() throws {
        let directory = TemporaryDirectory("segments")
        defer { directory.remove() }
        let configuration = StoreConfiguration(dataDirectory: directory.path, cacheBytes: 0, segmentBytes: 4096)
        let store = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
        defer { store.close() }
        for round in 0..<4 {
            for index in 0..<40 {
                _ = try wait { done in store.put("f\(index)", FragmentInput(content: "round \(round) fragment \(index) " + String(repeating: "z", count: 200)), completion: done) }
            }
        }
        for index in 30..<40 {
            try wait { done in store.delete("f\(index)", completion: done) }
        }
        let before = store.diskUsage()
        let segmentsBefore = store.primaryLog.segments.count
        let summary = store.compact(threshold: 0.5, maxSegments: 1000)
        #expect(summary.segments > 0)
        #expect(store.primaryLog.segments.count < segmentsBefore)
        #expect(store.diskUsage().primary < before.primary / 2)
        #expect(store.diskUsage().redundancy < before.redundancy / 2)
        for index in 0..<30 {
            let target = try #require(store.repairTarget("f\(index)"))
            #expect(store.exactRecordFromPrimary(target) != nil, "f\(index) lost its record")
            #expect(store.exactRecordFromRedundancy(target) != nil, "f\(index) lost its copy")
        }
        // The registry agrees after a restart, and after a rebuild deleted fragments stay deleted.
        store.close()
        for rebuild in [false, true] {
            if rebuild {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: "\(directory.path)/registry.sqlite3\(suffix)") }
            }
            let reopened = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
            defer { reopened.close() }
            for index in 0..<30 {
                guard case .fragment(let fragment) = reopened.read("f\(index)") else {
                    Issue.record("f\(index) not readable (rebuild: \(rebuild))")
                    continue
                }
                #expect(try JSONParser.parse(fragment.body)["content"]?.stringValue?.hasPrefix("round 3 fragment \(index) ") == true)
            }
            for index in 30..<40 {
                #expect(reopened.row("f\(index)") == nil, "f\(index) came back (rebuild: \(rebuild))")
            }
        }
    }

    @Test("when the redundancy directory vanishes, new copies go to a new segment")
    func directoryRemoved() throws {
        let test = try TestStore()
        try test.put("a", "before")
        try FileManager.default.removeItem(atPath: test.store.redundancyLog.root)
        try test.put("b", "after")
        let target = try #require(test.store.repairTarget("b"))
        #expect(test.store.exactRecordFromRedundancy(target) != nil)
        // The scrub finds a's copy gone with its segment and writes it again.
        let slice = test.store.scrub(limit: 10)
        #expect(slice.findings.contains { $0.id == "a" && $0.finding == .redundancyRepaired(.missing) })
        try test.reopen()
        for id in ["a", "b"] {
            #expect(test.store.exactRecordFromRedundancy(try #require(test.store.repairTarget(id))) != nil, "\(id) has no copy after a restart")
        }
    }

    @Test("a torn tail is cut at start-up; every acknowledged write reads back and new ones follow")
    func tornTail() throws {
        let test = try TestStore(cacheBytes: 0)
        for index in 0..<20 { try test.put("t\(index)", "torn tail test \(index)") }
        test.store.close()
        // Half a record: a valid header start followed by nothing, as a crash mid-write leaves it.
        let half = LogRecord.encode(kind: .put, id: "ghost", version: 999, sequence: 999, body: Array("{}".utf8), bodyChecksum: 0)
        for volume in DiskDamage.Volume.allCases { try test.disk.appendGarbage(Array(half.prefix(30)), in: volume) }
        let size = try #require(FileManager.default.attributesOfItem(atPath: test.disk.segments(.primary)[0].path)[.size] as? Int)
        try test.reopen(cacheBytes: 0)
        #expect(try FileManager.default.attributesOfItem(atPath: test.disk.segments(.primary)[0].path)[.size] as? Int == size - 30)
        for index in 0..<20 {
            guard case .fragment = test.store.read("t\(index)") else {
                Issue.record("t\(index) lost")
                continue
            }
        }
        try test.put("after", "written after the cut")
        try test.reopen(cacheBytes: 0)
        guard case .fragment = test.store.read("after") else {
            Issue.record("a write after the cut was lost")
            return
        }
    }

    @Test("damage inside the newest segment is not mistaken for a torn tail")
    func damageIsNotATail() throws {
        let test = try TestStore(cacheBytes: 0)
        for index in 0..<5 { try test.put("d\(index)", "damage test \(index)") }
        test.store.close()
        try test.disk.zero(["d1"], in: .primary)
        try test.reopen(cacheBytes: 0)
        for index in [0, 2, 3, 4] {
            guard case .fragment = test.store.read("d\(index)") else {
                Issue.record("d\(index) lost behind a damaged record")
                continue
            }
        }
        guard case .blank = test.store.read("d1") else {
            Issue.record("the zeroed record was served")
            return
        }
    }

    @Test("start-up replays the log records the registry had not applied, tombstones included")
    func replay() throws {
        let test = try TestStore(cacheBytes: 0)
        for index in 0..<30 { try test.put("r\(index)", "replay \(index)") }
        try test.put("r0", "replay 0, second version")
        try test.delete("r1")
        test.store.flush()
        test.store.close()
        // Wind the registry back to before any of it was applied.
        let registry = try Registry(path: "\(test.directory.path)/registry.sqlite3")
        try registry.writer.execute("DELETE FROM fragments; DELETE FROM meta")
        try registry.setPositions(
            LogPositions(primary: LogLocation(segment: 1, offset: 0), redundancy: LogLocation(segment: 1, offset: 0), sequence: 0, maxVersion: 0))
        try test.reopen(cacheBytes: 0)
        #expect(test.store.startup.replayed > 0)
        #expect(test.store.row("r1") == nil)
        guard case .fragment(let fragment) = test.store.read("r0") else {
            Issue.record("r0 not replayed")
            return
        }
        #expect(try JSONParser.parse(fragment.body)["content"] == "replay 0, second version")
        for index in 2..<30 {
            #expect(test.store.row("r\(index)")?.status == .ok)
        }
        // Versions continue above the replayed ones.
        #expect(try test.put("new", "x").fragment.version > 32)
        // The registry caught up behind the start: nothing is replayed the next time, and it agrees.
        test.store.flush()
        try test.reopen(cacheBytes: 0)
        #expect(test.store.startup.replayed == 0)
        let listed = try test.store.list(status: nil, tag: nil, after: nil, limit: 100).rows
        #expect(listed.count == 30)
        #expect(listed.first { $0.id == "r0" }?.version == 31)
    }

    @Test("history and cycle reports are kept to their limits, newest first")
    func retention() throws {
        let directory = TemporaryDirectory("retention")
        defer { directory.remove() }
        let configuration = StoreConfiguration(dataDirectory: directory.path, retention: Retention(eventsPerFragment: 3, cycleReports: 2))
        let store = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
        defer { store.close() }
        for round in 0..<10 {
            _ = try wait { done in store.put("busy", FragmentInput(content: "round \(round)"), completion: done) }
        }
        for cycle in 1...5 {
            store.saveCycleReport(id: Int64(cycle), trigger: "manual", state: "finished", startedAt: .now, finishedAt: .now, report: ["id": .number(Double(cycle))], wait: true)
        }
        store.flush()
        let events = try #require(try store.history("busy"))
        #expect(events.count == 3)
        #expect(events.last?.detail["version"] == 10)
        #expect(store.recentCycleReports(limit: 10).compactMap { $0["id"]?.intValue } == [5, 4])
    }

    @Test("a second store on the same directory is refused")
    func exclusiveLock() throws {
        let test = try TestStore()
        #expect(throws: StoreError.self) {
            _ = try FragmentStore(configuration: TestStore.configuration(test.directory.path), logger: Logger(label: "test"))
        }
    }

    @Test("files in the segment directory that are not segments (ffffffff.seg, other names) are left alone")
    func foreignSegmentNames() throws {
        let test = try TestStore(cacheBytes: 0)
        try test.put("a", "alpha")
        test.store.close()
        for name in ["ffffffff.seg", "notes.txt", "0000001.seg"] {
            _ = FileManager.default.createFile(atPath: "\(test.directory.path)/segments/\(name)", contents: Data("junk".utf8))
        }
        try test.reopen(cacheBytes: 0)
        try test.put("b", "beta")
        for id in ["a", "b"] {
            guard case .fragment = test.store.read(id) else {
                Issue.record("\(id) not readable")
                continue
            }
        }
        #expect(test.store.storedRow("b")?.location?.segment == 1)
    }

    @Test("registry rows that cannot be real (negative version or length) are skipped, not trusted")
    func tamperedRegistry() throws {
        let test = try TestStore()
        try test.put("good", "fine")
        test.store.flush()
        test.store.close()
        let registry = try Registry(path: "\(test.directory.path)/registry.sqlite3")
        try registry.writer.execute(
            """
            INSERT INTO fragments (id, version, status, checksum, record_length, size, links, tags, created_at, updated_at)
            VALUES ('evil', -1, 'ok', 0, -5, -1, '', '', 0, 0)
            """)
        try test.reopen()
        #expect(test.store.row("evil") == nil)
        #expect(test.store.row("good")?.status == .ok)
        // A highest version at the top of the range would wrap the counter: refused, clearly.
        test.store.close()
        try registry.setMeta("max_version", String(UInt64.max))
        do {
            try test.reopen()
            Issue.record("opened with max_version at UInt64.max")
        } catch let error as StoreError {
            #expect(error.message.contains("implausible"))
        }
    }

    @Test("a data directory of the previous layout is refused, then migrated with every fragment")
    func migration() throws {
        let directory = TemporaryDirectory("migrate")
        defer { directory.remove() }
        let archive = try #require(Bundle.module.path(forResource: "old-layout-v1", ofType: "tar.gz"))
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["xzf", archive, "-C", directory.path]
        try tar.run()
        tar.waitUntilExit()
        let configuration = StoreConfiguration(dataDirectory: "\(directory.path)/data", cacheBytes: 0)
        do {
            _ = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
            Issue.record("the previous layout was opened")
        } catch {
            #expect(error.code == .previousLayout)
            #expect(error.message.contains("carmad migrate"))
        }
        let summary = try FragmentStore.migratePreviousLayout(configuration: configuration, logger: Logger(label: "test"))
        // 12 written, one deleted; old-7's payload file was lost but its redundancy copy was intact.
        #expect(summary.fragments == 11)
        #expect(summary.exact == 11)
        let store = try FragmentStore(configuration: configuration, logger: Logger(label: "test"))
        defer { store.close() }
        #expect(store.row("old-5") == nil)
        for index in [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12] {
            guard case .fragment(let fragment) = store.read("old-\(index)") else {
                Issue.record("old-\(index) not readable after migration")
                continue
            }
            let content = try JSONParser.parse(fragment.body)["content"]?.stringValue ?? ""
            #expect(content.hasPrefix(index == 3 ? "Fragment three, second version." : "Fragment number \(index) "))
        }
        #expect(store.row("old-3")?.version == 13)
        #expect(try wait { done in store.put("new", FragmentInput(content: "after migration"), completion: done) }.fragment.version > 14)
    }
}
