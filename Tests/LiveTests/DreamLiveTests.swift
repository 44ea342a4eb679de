import CarmaClient
import CarmaJSON
import CarmaFaults
import CarmaTesting
import CarmaText
import Foundation
import Synchronization
import Testing

/// Self-healing through the real server: damage real files, read, dream, check.
@Suite("Dream engine (live)")
struct DreamLiveTests {
    @Test("2,000 fragments, 10% deleted and 1% corrupted: all blanks, then all back byte-exact", .timeLimit(.minutes(5)))
    func recoversEverything() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let api = server.api()
        let contents = try api.seed(2000)
        var generator = SplitMix64(seed: 42)
        let shuffled = contents.keys.sorted().shuffled(using: &generator)
        let deleted = Set(shuffled.prefix(200))
        let corrupted = Set(shuffled.dropFirst(200).prefix(20))
        try DiskDamage(dataDirectory: directory.path).zero(deleted, in: .primary)
        try DiskDamage(dataDirectory: directory.path).flip(corrupted, in: .primary)

        var blanks: [String: String] = [:]
        for id in contents.keys.sorted() {
            let response = try api.get(id)
            #expect(response.status == 200, "\(id): \(response.status)")
            if response.header("X-Fragment-Status") == "blank" {
                blanks[id] = try response.json()["reason"]?.stringValue
            } else {
                #expect(try response.json()["content"]?.stringValue == contents[id])
            }
        }
        #expect(Set(blanks.keys) == deleted.union(corrupted))
        // Records damaged in place (a zeroed stretch or one flipped bit) read as checksum mismatches.
        #expect(blanks.filter { $0.value == "checksum_mismatch" }.count == 220)

        let report = try api.dream()
        #expect(report["state"] == "finished")
        #expect(report["queue_at_start"] == 220)
        #expect(report["outcomes"]?["recovered"] == 220)
        #expect(report["outcomes"]?["failed"] == nil)
        #expect(report["repairs"]?["redundancy"]?["recovered"] == 220)
        #expect(report["events"]?.arrayValue?.filter { $0["outcome"] == "recovered" }.count == 220)

        for id in contents.keys.sorted() {
            let response = try api.get(id)
            #expect(response.header("X-Fragment-Status") == "ok", "\(id)")
            #expect(try response.json()["content"]?.stringValue == contents[id], "\(id) not byte-exact")
        }
        let history = try api.json("/fragments/\(deleted.first!)/history")
        let kinds = history["events"]?.arrayValue?.compactMap { $0["kind"]?.stringValue } ?? []
        #expect(kinds == ["created", "lost", "queued", "recovered"])
        let recovered = history["events"]?.arrayValue?.last
        #expect(recovered?["tier"] == "redundancy")
        #expect(recovered?["cycle"]?.intValue == report["id"]?.intValue)
        #expect(recovered?["duration_ms"]?.doubleValue != nil)
        #expect(try api.json("/dream")["queue"]?["depth"] == 0)
    }

    @Test("record and redundancy copy both gone, no usable reconstruction: blank with a reason, no crash, retried later")
    func bothCopiesGone() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        // A confidence floor of 1 refuses every reconstruction, so the fragment has no way back.
        let server = try ServerProcess(
            dataDirectory: directory.path,
            extraArguments: ["--cache-bytes", "0", "--dream-retry-base", "1", "--reconstruction-floor", "1"] + manualDreamOnly)
        let api = server.api()
        // Longer than the sketch's verbatim budget, so that the sketch cannot give it back either.
        _ = try api.seed(5, size: 600)
        try DiskDamage(dataDirectory: directory.path).zero(["f2"], in: .primary)
        try DiskDamage(dataDirectory: directory.path).destroyRedundancy(of: ["f2"])
        #expect(try api.get("f2").header("X-Fragment-Status") == "blank")
        let first = try api.dream()
        #expect(first["outcomes"]?["failed"] == 1)
        let stub = try api.get("f2")
        #expect(stub.status == 200)
        #expect(try stub.json()["status"] == "blank")
        #expect(try stub.json()["rebuild"]?["state"] == "failed")
        #expect(try stub.json()["rebuild"]?["last_error"]?.stringValue?.contains("below the floor") == true)
        usleep(1_200_000)
        let second = try api.dream()
        #expect(second["outcomes"]?["failed"] == 1, "retried after its backoff")
        let failures = try api.json("/fragments/f2/history")["events"]?.arrayValue?.filter { $0["kind"] == "repair_failed" } ?? []
        #expect(failures.count == 2)
        #expect(failures.last?["attempt"] == 2)
        #expect(failures.last?["reason"]?.stringValue?.contains("no exact source") == true)
        #expect(try api.request("GET", "/healthz").status == 200)
        #expect(server.stop() == 0)
    }

    @Test("kill -9 in the middle of a cycle: the queue resumes after restart and nothing is lost", .timeLimit(.minutes(5)))
    func restartMidCycle() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        // A very low duty cycle makes the cycle slow enough to interrupt.
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0", "--dream-duty-cycle", "0.01"] + manualDreamOnly)
        var api = server.api()
        let contents = try api.seed(400)
        try DiskDamage(dataDirectory: directory.path).zero(Set(contents.keys.sorted().prefix(300)), in: .primary)
        for id in contents.keys.sorted() { _ = try api.get(id) }
        let started = try api.request("POST", "/dream")
        let cycle = try started.json()["id"]!.intValue!
        var recoveredBeforeCrash = 0
        for _ in 0..<400 {
            recoveredBeforeCrash = try api.json("/dream/\(cycle)")["outcomes"]?["recovered"]?.intValue ?? 0
            if recoveredBeforeCrash > 0 { break }
            usleep(20_000)
        }
        #expect(try api.json("/dream/\(cycle)")["state"] == "running")
        server.crash()
        server = try server.restarted(extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        api = server.api()
        let status = try api.json("/dream")
        let depth = status["queue"]?["depth"]?.intValue ?? -1
        #expect(depth > 0 && depth <= 300 && depth >= 300 - 128 - recoveredBeforeCrash, "queue depth after restart: \(depth)")
        #expect(try api.json("/dream/\(cycle)")["state"] == "interrupted")
        let report = try api.dream()
        #expect(report["outcomes"]?["failed"] == nil)
        for id in contents.keys.sorted() {
            let response = try api.get(id)
            #expect(response.header("X-Fragment-Status") == "ok", "\(id) \(response.text.prefix(120))")
            #expect(try response.json()["content"]?.stringValue == contents[id])
        }
    }

    @Test("a cycle running while clients read: zero errors, only fragments and blank stubs", .timeLimit(.minutes(5)))
    func cycleUnderLoad() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0", "--dream-duty-cycle", "0.2"] + manualDreamOnly)
        let api = server.api()
        let contents = try api.seed(1000)
        try DiskDamage(dataDirectory: directory.path).zero(Set(contents.keys.sorted().prefix(150)), in: .primary)
        let stop = Atomic<Bool>(false)
        let errors = Mutex<[String]>([])
        let served = Atomic<Int>(0)
        let blanks = Atomic<Int>(0)
        let group = DispatchGroup()
        let ids = contents.keys.sorted()
        let port = server.port
        for reader in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                let client = CarmaAPI(port: port)
                var index = reader * 97
                while !stop.load(ordering: .relaxed) {
                    let id = ids[index % ids.count]
                    index += 1
                    do {
                        let response = try client.get(id)
                        let json = try response.json()
                        served.add(1, ordering: .relaxed)
                        switch (response.status, response.header("X-Fragment-Status")) {
                        case (200, "ok"?):
                            if json["content"]?.stringValue != contents[id] { throw ClientError("wrong content for \(id)") }
                        case (200, "blank"?):
                            blanks.add(1, ordering: .relaxed)
                            if json["rebuild_needed"] != true { throw ClientError("bad stub for \(id)") }
                        default:
                            throw ClientError("\(id): \(response.status) \(response.text.prefix(100))")
                        }
                    } catch {
                        errors.withLock { $0.append("\(error)") }
                    }
                }
            }.start()
        }
        usleep(500_000)
        let report = try api.dream()
        usleep(300_000)
        stop.store(true, ordering: .relaxed)
        group.wait()
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { Array($0.prefix(5)) })")
        #expect(served.load(ordering: .relaxed) > 1000)
        #expect(blanks.load(ordering: .relaxed) > 0)
        #expect(report["outcomes"]?["recovered"] == 150)
        #expect(try api.json("/fragments?status=blank")["items"] == [])
    }
}
