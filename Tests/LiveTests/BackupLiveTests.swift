import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Synchronization
import Testing

/// `carmad backup` beside a running carmad: consistent while writers and compaction run,
/// incremental, verified by checksums, and restorable by starting carmad on it.
@Suite("Online backup (live)", .serialized)
struct BackupLiveTests {
    /// A write the server acknowledged, and when the acknowledgement arrived.
    struct Acknowledged: Sendable {
        let id: String
        let version: Int
        let content: String
        let at: Date
    }

    static let flags = ["--cache-bytes", "0", "--segment-bytes", "65536", "--dream-duty-cycle", "1"] + manualDreamOnly

    static func content(_ id: String, round: Int) -> String {
        "Fragment \(id), round \(round): " + String(repeating: "backup me \(id) \(round) ", count: 25)
    }

    /// Runs `carmad backup` with these arguments.
    static func backup(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ServerProcess.run(["backup"] + arguments)
    }

    /// Writers that keep writing until stopped: new ids, and overwrites of a few churned ids (which
    /// leave garbage behind for compaction). Every acknowledged write is recorded.
    final class Writers: @unchecked Sendable {
        // @unchecked: `acknowledged` and `failures` are behind their Mutex; `stop` is atomic.
        let acknowledged = Mutex<[Acknowledged]>([])
        let failures = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        private var threads: [Thread] = []
        private let done = DispatchSemaphore(value: 0)

        init(port: Int, count: Int, prefix: String) {
            for worker in 0..<count {
                let thread = Thread { [self] in
                    let api = CarmaAPI(port: port)
                    var round = 0
                    while !self.stop.load(ordering: .relaxed) {
                        round += 1
                        let id = round % 3 == 0 ? "churn\(worker)-\(round % 12)" : "\(prefix)\(worker)-\(round)"
                        let content = BackupLiveTests.content(id, round: round)
                        do {
                            let response = try api.put(id, ["content": .string(content)])
                            guard response.status == 200 || response.status == 201, let version = try response.json()["version"]?.intValue else {
                                self.failures.withLock { $0.append("PUT \(id): \(response.status)") }
                                continue
                            }
                            let ack = Acknowledged(id: id, version: version, content: content, at: Date())
                            self.acknowledged.withLock { $0.append(ack) }
                        } catch {
                            self.failures.withLock { $0.append("PUT \(id): \(error)") }
                        }
                    }
                    self.done.signal()
                }
                self.threads.append(thread)
                thread.start()
            }
        }

        func finish() {
            self.stop.store(true, ordering: .relaxed)
            for _ in self.threads { self.done.wait() }
        }

        /// Per id, the newest write acknowledged before `moment`.
        func newest(before moment: Date) -> [String: Acknowledged] {
            var newest: [String: Acknowledged] = [:]
            for ack in self.acknowledged.withLock({ $0 }) where ack.at < moment {
                if (newest[ack.id]?.version ?? 0) < ack.version { newest[ack.id] = ack }
            }
            return newest
        }

        /// Every acknowledged write of an id, by version.
        func contents(of id: String) -> [Int: String] {
            Dictionary(self.acknowledged.withLock { $0 }.filter { $0.id == id }.map { ($0.version, $0.content) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Checks that a carmad on the backup serves every write acknowledged before it began: the exact
    /// version for ids nobody wrote afterwards, and for churned ids that version or a later one the
    /// writers were acknowledged for, byte-exact either way.
    static func expectServed(_ api: CarmaAPI, _ expected: [String: Acknowledged], writers: Writers) throws {
        var checked = 0
        for (id, ack) in expected {
            let response = try api.get(id)
            #expect(response.status == 200 && response.header("X-Fragment-Status") == "ok", "\(id): \(response.status) \(response.text.prefix(200))")
            guard response.status == 200 else { continue }
            let json = try response.json()
            let version = json["version"]?.intValue ?? 0
            #expect(version >= ack.version, "\(id): version \(version), acknowledged \(ack.version) before the backup")
            let content = version == ack.version ? ack.content : writers.contents(of: id)[version]
            #expect(json["content"]?.stringValue == content, "\(id) not byte-exact at version \(version)")
            checked += 1
        }
        #expect(checked == expected.count)
    }

    @Test("a backup taken while writers and compaction run, then incremental ones: carmad started on each serves every write acknowledged before it began", .timeLimit(.minutes(5)))
    func backupWhileWriting() throws {
        let directory = TemporaryDirectory("backup-live")
        defer { directory.remove() }
        let data = "\(directory.path)/data"
        let target = "\(directory.path)/backup"
        let server = try ServerProcess(dataDirectory: data, extraArguments: Self.flags)
        defer { server.stop() }
        let seeded = try server.api().seed(150, prefix: "seed", size: 900)
        #expect(seeded.count == 150)

        let writers = Writers(port: server.port, count: 3, prefix: "w")
        // Cycles keep compacting the churned segments while the backups run.
        let dreaming = Atomic<Bool>(true)
        let dreamer = Thread {
            let api = CarmaAPI(port: server.port)
            while dreaming.load(ordering: .relaxed) { _ = try? api.dream(budget: ["scrub_fragments": 0], timeoutSeconds: 60) }
        }
        dreamer.start()
        defer { dreaming.store(false, ordering: .relaxed) }
        // Let the writers get going, so that segments fill, seal and turn to garbage.
        #expect(ExpiryLiveTests.eventually(within: 60) { writers.acknowledged.withLock { $0.count } >= 600 })

        let firstStart = Date()
        let first = try Self.backup(["--data-dir", data, "--to", target])
        #expect(first.status == 0, "\(first.output)")
        #expect(ExpiryLiveTests.eventually(within: 60) { writers.acknowledged.withLock { $0.count } >= 1200 })
        let secondStart = Date()
        let second = try Self.backup(["--data-dir", data, "--to", target])
        #expect(second.status == 0, "\(second.output)")
        writers.finish()
        dreaming.store(false, ordering: .relaxed)
        #expect(writers.failures.withLock { $0 }.isEmpty, "\(writers.failures.withLock { $0.prefix(5) })")

        // The second backup kept the sealed segments the first had copied (checksums verified).
        let kept = Self.number(in: second.output, before: " kept from the previous backup")
        let copied = Self.number(in: second.output, before: " segments copied")
        #expect((kept ?? 0) > 0 && (copied ?? 0) > 0, "\(second.output)")
        let verified = try Self.backup(["--verify", target])
        #expect(verified.status == 0 && verified.output.contains("is intact"), "\(verified.output)")

        var expected = writers.newest(before: secondStart)
        for (id, content) in seeded { expected[id] = Acknowledged(id: id, version: 0, content: content, at: firstStart) }
        // A copy restores the second backup; the first one's writes are a subset of it.
        #expect(writers.newest(before: firstStart).count < expected.count)
        let restore = "\(directory.path)/restore"
        try FileManager.default.copyItem(atPath: target, toPath: restore)
        let restored = try ServerProcess(dataDirectory: "\(restore)/data", extraArguments: ["--redundancy-dir", "\(restore)/redundancy", "--cache-bytes", "0"] + manualDreamOnly)
        defer { restored.stop() }
        for (id, content) in seeded {
            let response = try restored.api().get(id)
            #expect(response.status == 200 && (try? response.json()["content"]?.stringValue) == content, "\(id) not restored byte-exact")
        }
        try Self.expectServed(restored.api(), writers.newest(before: secondStart), writers: writers)
        // Nothing restored was lost on the way: no blanks.
        let ready = try restored.api().json("/readyz")
        #expect(ready["fragments"]?.intValue ?? 0 >= expected.count)
        let blanks = try restored.api().json("/fragments?status=blank")
        #expect(blanks["items"]?.arrayValue?.isEmpty == true, "\(blanks)")
        // The history lives in the registry snapshot: the seeded fragments still have theirs.
        let history = try restored.api().json("/fragments/seed0/history")
        #expect(history["events"]?.arrayValue?.first?["kind"]?.stringValue == "created")
    }

    @Test("the first backup of a store restores every acknowledged write with carmad started on the backup directory itself")
    func restoreInPlace() throws {
        let directory = TemporaryDirectory("backup-first")
        defer { directory.remove() }
        let data = "\(directory.path)/data"
        let target = "\(directory.path)/backup"
        let server = try ServerProcess(dataDirectory: data, extraArguments: Self.flags)
        let writers = Writers(port: server.port, count: 2, prefix: "x")
        #expect(ExpiryLiveTests.eventually(within: 60) { writers.acknowledged.withLock { $0.count } >= 400 })
        let start = Date()
        let run = try Self.backup(["--data-dir", data, "--to", target])
        writers.finish()
        #expect(run.status == 0, "\(run.output)")
        #expect(server.stop() == 0)
        let restored = try ServerProcess(dataDirectory: "\(target)/data", extraArguments: ["--redundancy-dir", "\(target)/redundancy"] + manualDreamOnly)
        defer { restored.stop() }
        let expected = writers.newest(before: start)
        #expect(expected.count >= 100)
        try Self.expectServed(restored.api(), expected, writers: writers)
    }

    @Test("the verifier finds a flipped byte, a missing file and a stray segment, names each file and exits 1")
    func verifierFindsDamage() throws {
        let directory = TemporaryDirectory("backup-verify")
        defer { directory.remove() }
        let data = "\(directory.path)/data"
        let target = "\(directory.path)/backup"
        let server = try ServerProcess(dataDirectory: data, extraArguments: Self.flags)
        _ = try server.api().seed(200, prefix: "v", size: 900)
        #expect(server.stop() == 0)
        // A stopped store backs up too.
        #expect(try Self.backup(["--data-dir", data, "--to", target]).status == 0)
        #expect(try Self.backup(["--verify", target]).status == 0)

        let segments = try FileManager.default.contentsOfDirectory(atPath: "\(target)/data/segments").filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count >= 2)
        let flipped = "\(target)/data/segments/\(segments[0])"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: flipped))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: flipped))
        var run = try Self.backup(["--verify", target])
        #expect(run.status == 1)
        #expect(run.output.contains(flipped) && run.output.contains("checksum"), "\(run.output)")

        let registry = "\(target)/data/registry.sqlite3"
        try FileManager.default.removeItem(atPath: registry)
        try FileManager.default.createFile(atPath: "\(target)/redundancy/segments/000000ff.seg", contents: Data([1, 2, 3]))
        run = try Self.backup(["--verify", target])
        #expect(run.status == 1)
        #expect(run.output.contains("\(registry): missing") && run.output.contains("000000ff.seg"), "\(run.output)")

        // A stray file that is not a segment is named too (issue 28: it verified as intact).
        try FileManager.default.removeItem(atPath: "\(target)/redundancy/segments/000000ff.seg")
        try FileManager.default.createFile(atPath: "\(target)/data/segments/notes.txt", contents: Data("left here".utf8))
        run = try Self.backup(["--verify", target])
        #expect(run.status == 1)
        #expect(run.output.contains("\(target)/data/segments/notes.txt"), "\(run.output)")

        // A damaged manifest is found before anything in it is trusted.
        let manifest = "\(target)/MANIFEST"
        var text = try String(contentsOfFile: manifest, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"records\":", with: "\"records\": ")
        try text.write(toFile: manifest, atomically: true, encoding: .utf8)
        run = try Self.backup(["--verify", target])
        #expect(run.status == 1 && run.output.contains("MANIFEST") && run.output.contains("damaged"), "\(run.output)")
    }

    @Test("backup refuses a directory inside the store, a missing store, and no target; the store is untouched")
    func refusals() throws {
        let directory = TemporaryDirectory("backup-refuse")
        defer { directory.remove() }
        let data = "\(directory.path)/data"
        let server = try ServerProcess(dataDirectory: data, extraArguments: Self.flags)
        defer { server.stop() }
        _ = try server.api().seed(10, prefix: "r")
        for (arguments, expectedStatus, fragment) in [
            (["--data-dir", data, "--to", "\(data)/inside"], Int32(1), "overlaps"),
            (["--data-dir", data, "--to", "\(data)/deep/er/inside"], Int32(1), "overlaps"),
            (["--data-dir", data, "--to", "\(directory.path)/elsewhere/../data/new"], Int32(1), "overlaps"),
            (["--data-dir", "\(directory.path)/nothing", "--to", "\(directory.path)/b"], 1, "not a carma data directory"),
            (["--data-dir", data], 2, "--to"),
            (["--to", "\(directory.path)/b", "--verify", "\(directory.path)/b"], 2, "do not go together"),
            (["--verify", "\(directory.path)/none"], 1, "cannot read the manifest"),
        ] {
            let run = try Self.backup(arguments)
            #expect(run.status == expectedStatus && run.output.contains(fragment), "\(arguments): \(run.status) \(run.output)")
        }
        #expect(try server.api().get("r3").status == 200)
        // Refused before anything was created (issue 28: the directories were made, then refused).
        for made in ["\(data)/inside", "\(data)/deep", "\(data)/new", "\(directory.path)/elsewhere"] {
            #expect(!FileManager.default.fileExists(atPath: made), "\(made) was created")
        }
    }

    static func number(in output: String, before marker: String) -> Int? {
        guard let range = output.range(of: marker) else { return nil }
        let digits = output[..<range.lowerBound].reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }
}
