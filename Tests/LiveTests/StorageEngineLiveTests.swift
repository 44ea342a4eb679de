import CarmaClient
import CarmaFaults
import CarmaJSON
import CarmaTesting
import Foundation
import Synchronization
import Testing

/// The promises of the segment-log storage engine, kept by a real carmad on real files: faults
/// caused on purpose (`carmad faults`, bytes damaged in place, segments deleted or made unreadable,
/// tails cut), crashes under load and during compaction, a lost registry, a second process, and
/// a data directory of the previous layout.
@Suite("Storage engine (live)", .serialized)
struct StorageEngineLiveTests {
    /// Content of about 1 KB, different for every id and round.
    static func content(_ id: String, round: Int = 0) -> String {
        "Fragment \(id), round \(round): " + String(repeating: "the quick brown fox \(id) \(round) ", count: 30)
    }

    @Test("every fault of the design, caused for real, is answered as specified and then repaired byte-exact", .timeLimit(.minutes(5)))
    func faultsOnPurpose() throws {
        let directory = TemporaryDirectory("faults")
        defer { directory.remove() }
        let flags = ["--cache-bytes", "0", "--segment-bytes", "65536", "--dream-duty-cycle", "1"] + manualDreamOnly
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: flags)
        var contents: [String: String] = [:]
        for index in 0..<240 {
            let id = "g\(index)"
            contents[id] = Self.content(id)
            #expect(try server.api().put(id, ["content": .string(contents[id]!), "links": [.string("g\((index + 1) % 240)")]]).status == 201)
        }
        #expect(server.stop() == 0)

        // Refused while a carmad holds the directory; done on the stopped store.
        let disk = DiskDamage(dataDirectory: directory.path)
        let records = disk.records(.primary)
        let segments = disk.segments(.primary).map(\.number)
        #expect(segments.count >= 4, "expected several segments, got \(segments)")
        let dropped = segments[1]
        let unreadable = segments[2]
        let inDropped = Set(records.filter { $0.value.last?.segment == dropped }.map(\.key))
        let inUnreadable = Set(records.filter { $0.value.last?.segment == unreadable }.map(\.key))
        let newest = segments.last!
        let lastRecord = records.values.compactMap(\.last).filter { $0.segment == newest }.max { $0.offset < $1.offset }!
        let zeroed = "g0"
        let flipped = "g1"
        for (arguments, expected) in [
            (["zero", zeroed], "zeroed 1 records"), (["flip", flipped], "flipped a bit in 1 records"),
            (["drop-segment", String(dropped)], "deleted segment"), (["cut-tail", "100"], "cut 100 bytes"),
        ] {
            let run = try ServerProcess.run(["faults", "--data-dir", directory.path] + arguments)
            #expect(run.status == 0 && run.output.contains(expected), "faults \(arguments): \(run.output)")
        }
        let unreadablePath = disk.segments(.primary).first { $0.number == unreadable }!.path
        try FileManager.default.removeItem(atPath: unreadablePath)
        try FileManager.default.createDirectory(atPath: unreadablePath, withIntermediateDirectories: false)

        server = try server.restarted()
        let api = server.api()
        var expectedReason: [String: String] = [zeroed: "checksum_mismatch", flipped: "checksum_mismatch", lastRecord.id: "checksum_mismatch"]
        for id in inDropped { expectedReason[id] = "missing" }
        for id in inUnreadable { expectedReason[id] = "unreadable" }
        for (id, content) in contents {
            let response = try api.get(id)
            #expect(response.status == 200, "\(id): \(response.status)")
            if let reason = expectedReason[id] {
                #expect(response.header("X-Fragment-Status") == "blank", "\(id) should be blank")
                #expect(try response.json()["reason"]?.stringValue == reason, "\(id): \(response.text.prefix(200))")
            } else {
                #expect(response.header("X-Fragment-Status") == "ok", "\(id) damaged by a fault aimed elsewhere")
                #expect(try response.json()["content"]?.stringValue == content)
            }
        }
        let report = try api.dream(budget: ["scrub_fragments": 1000])
        #expect(report["outcomes"]?["recovered"]?.intValue == expectedReason.count, "\(report["outcomes"] ?? .null)")
        for (id, content) in contents {
            let response = try api.get(id)
            #expect(response.header("X-Fragment-Status") == "ok", "\(id) not repaired")
            #expect(try response.json()["content"]?.stringValue == content, "\(id) not byte-exact")
        }
        // And the repairs are durable.
        #expect(server.stop() == 0)
        server = try server.restarted()
        for (id, content) in contents {
            #expect(try server.api().get(id).json()["content"]?.stringValue == content)
        }
        #expect(server.stop() == 0)
    }

    @Test("kill -9 during PUT and DELETE load: acknowledged writes read back exact, acknowledged deletes stay deleted", .timeLimit(.minutes(5)))
    func crashDuringWritesAndDeletes() throws {
        let directory = TemporaryDirectory("crash")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--segment-bytes", "262144"] + manualDreamOnly)
        // What every id must be after a restart: its content, nil for deleted; ids with an operation
        // in flight at the crash may be either of two states.
        var expected: [String: String?] = [:]
        var uncertain: [String: (String?, String?)] = [:]
        for round in 0..<4 {
            let acknowledged = Mutex<[String: String?]>([:])
            let inFlight = Mutex<[String: (String?, String?)]>([:])
            let port = server.port
            let group = DispatchGroup()
            for writer in 0..<8 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    let api = CarmaAPI(port: port, timeoutSeconds: 10)
                    var mine: [String] = []
                    for n in 0..<100_000 {
                        // Every third operation deletes one of this writer's earlier fragments.
                        if n % 3 == 2, let victim = mine.popLast() {
                            let before = acknowledged.withLock { $0[victim] ?? nil }
                            inFlight.withLock { $0[victim] = (before, nil) }
                            guard let response = try? api.delete(victim), response.status == 204 else { return }
                            acknowledged.withLock { $0[victim] = .some(nil) }
                            inFlight.withLock { $0[victim] = nil }
                            continue
                        }
                        let id = "c\(round)-w\(writer)-\(n)"
                        let content = "round \(round) writer \(writer) number \(n) " + String(repeating: "x", count: n % 700)
                        inFlight.withLock { $0[id] = (nil, content) }
                        guard let response = try? api.put(id, ["content": .string(content)]), response.status == 201 else { return }
                        acknowledged.withLock { $0[id] = content }
                        inFlight.withLock { $0[id] = nil }
                        mine.append(id)
                    }
                }.start()
            }
            usleep(UInt32(400_000 + round * 200_000))
            server.crash()
            group.wait()
            // updateValue: a nil state (deleted) must be stored, not remove the key.
            for (id, state) in acknowledged.withLock({ $0 }) { expected.updateValue(state, forKey: id) }
            for (id, states) in inFlight.withLock({ $0 }) {
                expected.removeValue(forKey: id)
                uncertain[id] = states
            }
            #expect(acknowledged.withLock { $0.values.filter { $0 == nil }.count } > 5, "round \(round): too few deletes acknowledged")
            server = try server.restarted()
            let api = server.api()
            for (id, state) in expected {
                let response = try api.get(id)
                if let content = state {
                    #expect(response.status == 200 && response.header("X-Fragment-Status") == "ok", "round \(round): acknowledged \(id) lost")
                    #expect(try response.json()["content"]?.stringValue == content, "round \(round): \(id) not exact")
                } else {
                    #expect(response.status == 404, "round \(round): deleted \(id) came back")
                }
            }
            for (id, states) in uncertain {
                let response = try api.get(id)
                let content = response.status == 200 ? try response.json()["content"]?.stringValue : nil
                #expect(content == states.0 || content == states.1, "round \(round): \(id) is neither before nor after its last operation")
            }
        }
        // Deleted fragments stay deleted when the registry is rebuilt from the logs.
        #expect(server.stop() == 0)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: directory.path + "/registry.sqlite3" + suffix) }
        server = try server.restarted()
        for (id, state) in expected {
            let response = try server.api().get(id)
            if let content = state {
                #expect(try response.json()["content"]?.stringValue == content, "after a rebuild: \(id)")
            } else {
                #expect(response.status == 404, "after a rebuild: deleted \(id) came back")
            }
        }
        #expect(server.stop() == 0)
    }

    @Test("kill -9 during compaction, several rounds: every fragment stays reachable and exact, and space is reclaimed", .timeLimit(.minutes(5)))
    func crashDuringCompaction() throws {
        let directory = TemporaryDirectory("compact")
        defer { directory.remove() }
        let flags = ["--segment-bytes", "65536", "--dream-duty-cycle", "1", "--cache-bytes", "0"] + manualDreamOnly
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: flags)
        var contents: [String: String] = [:]
        // Four versions of each fragment and a fifth of them deleted: most of every sealed segment is garbage.
        for round in 0..<4 {
            for index in 0..<150 {
                let id = "k\(index)"
                contents[id] = Self.content(id, round: round)
                _ = try server.api().put(id, ["content": .string(contents[id]!)])
            }
        }
        for index in stride(from: 0, to: 150, by: 5) {
            #expect(try server.api().delete("k\(index)").status == 204)
            contents["k\(index)"] = nil
        }
        let disk = DiskDamage(dataDirectory: directory.path)
        let segmentsBefore = disk.segments(.primary).count
        for round in 0..<6 {
            #expect(try server.api().request("POST", "/dream").status == 202)
            usleep(UInt32(20_000 + round * 60_000))
            server.crash()
            server = try server.restarted()
            for (id, content) in contents {
                let response = try server.api().get(id)
                #expect(response.header("X-Fragment-Status") == "ok", "round \(round): \(id) \(response.status)")
                #expect(try response.json()["content"]?.stringValue == content, "round \(round): \(id) not exact")
            }
            for index in stride(from: 0, to: 150, by: 5) {
                #expect(try server.api().get("k\(index)").status == 404, "round \(round): deleted k\(index) came back")
            }
        }
        // Left to finish, compaction reclaims the garbage.
        _ = try server.api().dream()
        let report = try server.api().dream()
        #expect(disk.segments(.primary).count < segmentsBefore, "segments \(segmentsBefore) -> \(disk.segments(.primary).count); \(report)")
        for (id, content) in contents {
            #expect(try server.api().get(id).json()["content"]?.stringValue == content)
        }
        #expect(server.stop() == 0)
    }

    @Test("out of file descriptors, a read answers 503 with Retry-After and records no loss; it works again once descriptors are free")
    func transientReadError() throws {
        let directory = TemporaryDirectory("emfile")
        defer { directory.remove() }
        let flags = ["--cache-bytes", "0", "--segment-bytes", "65536"] + manualDreamOnly
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: flags)
        for index in 0..<150 { _ = try server.api().put("e\(index)", ["content": .string(Self.content("e\(index)"))]) }
        #expect(server.stop() == 0)
        // After a restart only the newest segment is open; e0's (the first) is opened on first read.
        server = try server.restarted()
        let connection = try server.connection()
        #expect(try connection.request("GET", "/healthz").status == 200)
        let pid = server.process.processIdentifier
        // The limit bounds descriptor numbers: at the lowest free number, the next open fails (EMFILE).
        let used = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int($0) })
        let lowestFree = (0...).first { !used.contains($0) }!
        #expect(TmpfsMount.run("/usr/bin/prlimit", ["--pid", String(pid), "--nofile=\(lowestFree):"]) == 0)
        let refused = try connection.request("GET", "/fragments/e0")
        #expect(TmpfsMount.run("/usr/bin/prlimit", ["--pid", String(pid), "--nofile=4096:"]) == 0)
        #expect(refused.status == 503)
        #expect(try refused.json()["type"] == "urn:carma:problem:temporarily-unavailable")
        #expect(refused.header("Retry-After") == "1")
        let later = try server.api().get("e0")
        #expect(later.status == 200 && later.header("X-Fragment-Status") == "ok")
        #expect(try later.json()["content"]?.stringValue == Self.content("e0"))
        let history = try server.api().json("/fragments/e0/history")["events"]?.arrayValue?.compactMap { $0["kind"]?.stringValue }
        #expect(history == ["created"], "a passing error was recorded as a loss: \(history ?? [])")
        #expect(server.stop() == 0)
    }

    @Test("a second carmad on the same data directory refuses to start")
    func secondProcessRefused() throws {
        let directory = TemporaryDirectory("lock")
        defer { directory.remove() }
        let first = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        #expect(try first.api().put("a", ["content": "one"]).status == 201)
        #expect(throws: ClientError.self) { _ = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly) }
        let faults = try ServerProcess.run(["faults", "--data-dir", directory.path, "zero", "a"])
        #expect(faults.status != 0 && faults.output.contains("stop it first"))
        #expect(try first.api().get("a").json()["content"] == "one")
        #expect(first.stop() == 0)
    }

    @Test("a data directory of the previous layout is refused with the migrate command named; carmad migrate converts it")
    func migration() throws {
        let directory = TemporaryDirectory("migrate")
        defer { directory.remove() }
        let archive = Repository.root + "/Tests/Fixtures/old-layout-v1.tar.gz"
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["xzf", archive, "-C", directory.path]
        try tar.run()
        tar.waitUntilExit()
        let data = directory.path + "/data"
        do {
            _ = try ServerProcess(dataDirectory: data, extraArguments: manualDreamOnly)
            Issue.record("carmad started on the previous layout")
        } catch {
            #expect("\(error)".contains("carmad migrate --data-dir"))
        }
        let migrate = try ServerProcess.run(["migrate", "--data-dir", data])
        #expect(migrate.status == 0, "\(migrate.output)")
        #expect(migrate.output.contains("migrated 11 fragments: 11 exact"))
        let server = try ServerProcess(dataDirectory: data, extraArguments: manualDreamOnly)
        let api = server.api()
        #expect(try api.get("old-5").status == 404)
        #expect(try api.get("old-3").json()["content"] == "Fragment three, second version.")
        #expect(try api.get("old-7").header("X-Fragment-Status") == "ok")
        #expect(try api.json("/fragments?limit=100")["items"]?.arrayValue?.count == 11)
        #expect(try api.put("old-1", ["content": "rewritten after the migration"]).status == 200)
        #expect(server.stop() == 0)
    }
}
