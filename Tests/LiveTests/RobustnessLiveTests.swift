import CarmaClient
import CarmaJSON
import CarmaFaults
import CarmaTesting
import CarmaText
import Foundation
import Synchronization
import Testing

/// Hostile clients and real faults against the real server.
@Suite("Robustness (live)")
struct RobustnessLiveTests {
    /// Sends raw bytes on a fresh connection and reads one response.
    static func raw(_ server: ServerProcess, _ bytes: [UInt8]) throws -> ClientResponse {
        let connection = try server.connection(timeoutSeconds: 10)
        try connection.send(bytes)
        return try connection.readResponse()
    }

    @Test("hostile requests get clear 4xx answers, nothing is created, and the server keeps serving")
    func hostileInput() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--max-body-bytes", "65536"] + manualDreamOnly)
        let api = server.api()
        #expect(try api.put("keep", ["content": "untouched"]).status == 201)
        let json = [("Content-Type", "application/json")]
        func put(_ target: String, _ body: [UInt8], headers: [(String, String)] = json) throws -> Int {
            try server.connection().request("PUT", target, headers: headers, body: body).status
        }
        // Ids with traversal, encoded slashes, NUL and non-ASCII.
        for target in ["/fragments/..", "/fragments/.", "/fragments/..%2F..%2Fetc%2Fpasswd", "/fragments/%2e%2e", "/fragments/a%00b",
                       "/fragments/%00", "/fragments/caf%C3%A9", "/fragments/%FF", "/fragments/a%2Fb", String(repeating: "/fragments/x", count: 1) + String(repeating: "y", count: 300)] {
            let status = try put(target, Array(#"{"content":"x"}"#.utf8))
            #expect(status == 400, "PUT \(target) answered \(status)")
            let read = try server.connection().request("GET", target).status
            #expect(read == 400, "GET \(target) answered \(read)")
        }
        // Paths that are not routes at all.
        for target in ["/fragments/../etc/passwd", "/../../etc/passwd", "/fragments/a/b/c", "//fragments"] {
            let response = try Self.raw(server, Array("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect((400..<500).contains(response.status), "GET \(target) answered \(response.status)")
        }
        // Bodies: invalid UTF-8, deep nesting, wrong types, wrong media types, too large.
        #expect(try put("/fragments/bad", [0x7B, 0x22, 0x63, 0x6F, 0x6E, 0x74, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D]) == 400)
        #expect(try put("/fragments/bad", Array((String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)).utf8)) == 400)
        let nestedMetadata = #"{"content":"x","metadata":"# + String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: "}", count: 41)
        #expect(try put("/fragments/bad", Array(nestedMetadata.utf8)) == 400)
        #expect(try put("/fragments/bad", Array(#"{"content":["x"]}"#.utf8)) == 400)
        #expect(try put("/fragments/bad", Array("content=x".utf8), headers: [("Content-Type", "application/x-www-form-urlencoded")]) == 415)
        #expect(try put("/fragments/bad", Array(#"{"content":"x"}"#.utf8), headers: []) == 415)
        #expect(try put("/fragments/bad", Array(#"{"content":"x"}"#.utf8), headers: [("Content-Type", "application/json; charset=utf-16")]) == 415)
        #expect(try put("/fragments/bad", [UInt8](repeating: 0x20, count: 70000)) == 413)
        // Heads: a huge header line and a huge request line.
        let bigHeader = try Self.raw(server, Array("GET /fragments/keep HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20000))\r\n\r\n".utf8))
        #expect(bigHeader.status == 431 || bigHeader.status == 414)
        let bigLine = try Self.raw(server, Array("GET /fragments/\(String(repeating: "a", count: 20000)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect([414, 431].contains(bigLine.status))
        // Garbage instead of HTTP.
        let garbage = try server.connection(timeoutSeconds: 5)
        try garbage.send([0x16, 0x03, 0x01, 0x00, 0xFF] + [UInt8](repeating: 0xAA, count: 200) + Array("\r\n\r\n".utf8))
        _ = try? garbage.readResponse()

        // Nothing but the one good fragment exists, and it is intact.
        let listed = try api.json("/fragments")["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        #expect(listed == ["keep"])
        #expect(try api.get("keep").json()["content"] == "untouched")
        #expect(server.process.isRunning)
    }

    @Test("past the connection limit new connections are refused, and service resumes once they close")
    func connectionFlood() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--max-connections", "50"] + manualDreamOnly)
        var held: [HTTPConnection] = []
        for _ in 0..<50 {
            let connection = try server.connection(timeoutSeconds: 5)
            try connection.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            _ = try connection.readResponse()
            held.append(connection)
        }
        // The 51st is accepted by the kernel but closed by the server without an answer.
        let extra = try server.connection(timeoutSeconds: 5)
        let refused = (try? extra.request("GET", "/healthz")) == nil
        #expect(refused, "a connection past the limit should not be served")
        for connection in held { connection.close() }
        usleep(300_000)
        #expect(try server.connection().request("GET", "/healthz").status == 200)
    }

    @Test("with 500 slow-drip connections open, a normal client is still served promptly", .timeLimit(.minutes(3)))
    func slowClients() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--connection-timeout", "60"] + manualDreamOnly)
        #expect(try server.api().put("hot", ["content": "still served"]).status == 201)
        var slow: [HTTPConnection] = []
        for _ in 0..<500 {
            let connection = try server.connection(timeoutSeconds: 5)
            try connection.send(Array("GET /fragments/hot HTTP/1.1\r\nHost: x\r\n".utf8))
            slow.append(connection)
        }
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        let clients = SlowClients(slow)
        let dripper = Thread {
            var round = 0
            defer { done.signal() }
            while !stop.load(ordering: .relaxed) {
                for connection in clients.connections { try? connection.send(Array("X-Drip-\(round): a\r\n".utf8)) }
                round += 1
                usleep(500_000)
            }
        }
        dripper.start()
        var latencies: [Double] = []
        let client = server.api()
        for _ in 0..<300 {
            let started = Date()
            let response = try client.get("hot")
            latencies.append(Date().timeIntervalSince(started) * 1000)
            #expect(response.status == 200)
        }
        stop.store(true, ordering: .relaxed)
        done.wait()
        latencies.sort()
        let p99 = latencies[Int(Double(latencies.count - 1) * 0.99)]
        print("normal client beside 500 slow-drip connections: p50 \(latencies[latencies.count / 2]) ms, p99 \(p99) ms")
        for connection in slow { connection.close() }
    }

    @Test("the redundancy directory removed while running: new copies go elsewhere, the scrub rewrites the old ones")
    func redundancyDirectoryRemoved() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let api = server.api()
        let contents = try api.seed(40)
        try FileManager.default.removeItem(atPath: directory.path + "/redundancy")
        #expect(try api.put("after", ["content": "written after the loss"]).status == 201)
        let report = try api.dream()
        #expect(report["detected"]?["redundancy_missing"] == 40, "every old copy found missing")
        // The rewritten copies work: lose payloads now and get them back exactly.
        try DiskDamage(dataDirectory: directory.path).zero(["f1", "f2", "after"], in: .primary)
        for id in ["f1", "f2", "after"] { #expect(try api.get(id).header("X-Fragment-Status") == "blank") }
        let repair = try api.dream()
        #expect(repair["repairs"]?["redundancy"]?["recovered"] == 3)
        #expect(try api.get("f1").json()["content"]?.stringValue == contents["f1"])
        #expect(try api.get("after").json()["content"] == "written after the loss")
    }

    @Test("the registry removed: the next start rebuilds it from the logs, contents intact")
    func registryRemoved() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        let contents = try server.api().seed(60)
        #expect(server.stop() == 0)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: directory.path + "/registry.sqlite3" + suffix) }
        server = try server.restarted()
        let api = server.api()
        #expect(server.log.contains("rebuilt it from the logs"))
        for (id, content) in contents {
            let response = try api.get(id)
            #expect(response.header("X-Fragment-Status") == "ok")
            #expect(try response.json()["content"]?.stringValue == content)
        }
        #expect(try api.json("/fragments/f3/history")["events"]?.arrayValue?.first?["kind"] == "reindexed")
        #expect(try api.put("f3", ["content": "writes go on"]).status == 200)
    }

    @Test("a data directory made read-only: reads keep working, writes fail clearly once a new segment is needed, and recover")
    func readOnlyDataDirectory() throws {
        let directory = TemporaryDirectory("readonly")
        defer { directory.remove() }
        // Small segments, so that the writes below need a new one (a segment already open for
        // writing stays writable under a read-only bind mount; a new file cannot be created).
        let server = try ServerProcess(
            dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0", "--segment-bytes", "65536"] + manualDreamOnly)
        let api = server.api()
        let contents = try api.seed(10)
        try TmpfsMount.makeReadOnly(directory.path)
        var mounted = true
        defer { if mounted { TmpfsMount.unmount(directory.path) } }
        for (id, content) in contents {
            #expect(try api.get(id).json()["content"]?.stringValue == content)
        }
        #expect(try api.json("/fragments?limit=5")["items"]?.arrayValue?.count == 5)
        var acknowledged: [String: String] = [:]
        var refused: ClientResponse?
        for index in 0..<200 {
            let content = "filler \(index) " + String(repeating: "x", count: 2000)
            let response = try api.put("new-\(index)", ["content": .string(content)])
            if response.status == 201 {
                acknowledged["new-\(index)"] = content
            } else {
                refused = response
                break
            }
        }
        let answer = try #require(refused, "every write went through a read-only directory")
        #expect(answer.status == 503)
        #expect(try answer.json()["type"] == "urn:carma:problem:read-only-storage")
        #expect(answer.header("Retry-After") != nil)
        #expect(try api.put("f1", ["content": .string("nor replaced " + String(repeating: "y", count: 2000))]).status == 503)
        #expect(try api.get("f1").json()["content"]?.stringValue == contents["f1"])
        for (id, content) in acknowledged {
            #expect(try api.get(id).json()["content"]?.stringValue == content, "\(id) acknowledged, then lost")
        }
        TmpfsMount.unmount(directory.path)
        mounted = false
        #expect(try api.put("later", ["content": "stored now"]).status == 201)
        #expect(try api.get("later").json()["content"] == "stored now")
        #expect(server.stop() == 0)
    }

    @Test("kill -9 during PUT load, 20 rounds: no acknowledged write lost, nothing corrupt served as ok", .timeLimit(.minutes(6)))
    func crashDuringWrites() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        var acknowledged: [String: String] = [:]
        for round in 0..<20 {
            let acked = Mutex<[String: String]>([:])
            let port = server.port
            let group = DispatchGroup()
            for writer in 0..<8 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    let api = CarmaAPI(port: port, timeoutSeconds: 10)
                    for n in 0..<100_000 {
                        // Rewrite a shared set of ids too, so that crashes hit replacements as well as creations.
                        let id = n % 3 == 0 ? "shared-\(writer)-\(n % 30)" : "r\(round)-w\(writer)-\(n)"
                        let content = "round \(round) writer \(writer) write \(n)"
                        guard let response = try? api.put(id, ["content": .string(content)]), response.status == 201 || response.status == 200 else { return }
                        acked.withLock { $0[id] = content }
                    }
                }.start()
            }
            usleep(UInt32(150_000 + (round % 5) * 60_000))
            server.crash()
            group.wait()
            // A replaced id keeps its last acknowledged content, or a newer one in flight at the crash.
            for (id, content) in acked.withLock({ $0 }) { acknowledged[id] = content }
            server = try server.restarted()
            let api = server.api()
            for (id, content) in acknowledged where !id.hasPrefix("shared-") {
                let response = try api.get(id)
                #expect(response.header("X-Fragment-Status") == "ok", "round \(round): \(id) lost")
                #expect(try response.json()["content"]?.stringValue == content)
            }
            // A rewritten id reads as its last acknowledged write or a later one (in flight at the crash),
            // never an older one: compare (round, write number).
            func order(_ content: String) -> (Int, Int) {
                let words = content.split(separator: " ")
                return words.count == 6 ? (Int(words[1]) ?? -1, Int(words[5]) ?? -1) : (-1, -1)
            }
            for (id, content) in acknowledged where id.hasPrefix("shared-") {
                let json = try api.get(id).json()
                let read = json["content"]?.stringValue ?? ""
                #expect(json["status"] == "ok")
                #expect(order(read) >= order(content), "\(id): read '\(read)', acknowledged '\(content)'")
            }
        }
        print("acknowledged writes checked after 20 crashes: \(acknowledged.count)")
        #expect(acknowledged.count > 1000)
    }

    @Test("kill -9 during dream cycles, 20 rounds: the queue survives, and in the end everything is back exactly", .timeLimit(.minutes(6)))
    func crashDuringCycles() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0", "--dream-duty-cycle", "0.05"] + manualDreamOnly)
        let contents = try server.api().seed(300)
        var generator = SplitMix64(seed: 9)
        for round in 0..<20 {
            let api = server.api()
            // Fresh damage each round, then a cycle interrupted by kill -9 part of the way through.
            try DiskDamage(dataDirectory: directory.path).zero(Set(contents.keys.sorted().shuffled(using: &generator).prefix(15)), in: .primary)
            for id in contents.keys.sorted() {
                let response = try api.get(id)
                if response.header("X-Fragment-Status") == "ok" {
                    #expect(try response.json()["content"]?.stringValue == contents[id], "round \(round): \(id) served as ok with wrong content")
                }
            }
            _ = try api.request("POST", "/dream")
            usleep(UInt32(100_000 + (round % 4) * 80_000))
            server.crash()
            server = try server.restarted()
        }
        // A normal duty cycle for the final cycle.
        server.stop()
        server = try server.restarted(extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let api = server.api()
        let report = try api.dream(budget: ["scrub_fragments": 1000])
        #expect(report["outcomes"]?["failed"] == nil)
        for (id, content) in contents {
            let response = try api.get(id)
            #expect(response.header("X-Fragment-Status") == "ok", "\(id) not back")
            #expect(try response.json()["content"]?.stringValue == content)
        }
    }

    @Test("with a token, writes without it answer 401 and change nothing; reads stay open")
    func authorization() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let tokenFile = directory.path + ".token"
        try "s3cret-token-0123456789abcdef\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--auth-token-file", tokenFile] + manualDreamOnly)
        let authorized = server.api(token: "s3cret-token-0123456789abcdef")
        let anonymous = server.api()
        #expect(try authorized.put("a", ["content": "original"]).status == 201)
        for token in [nil, "wrong", "s3cret-token-0123456789abcde", "s3cret-token-0123456789abcdef0"] {
            let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
            let put = try anonymous.put("a", ["content": "tampered"], headers: headers)
            #expect(put.status == 401)
            #expect(put.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(try anonymous.put("b", ["content": "new"], headers: headers).status == 401)
            #expect(try anonymous.delete("a", headers: headers).status == 401)
            #expect(try anonymous.request("POST", "/dream", headers: headers).status == 401)
        }
        #expect(try anonymous.get("a").json()["content"] == "original")
        #expect(try anonymous.get("b").status == 404)
        #expect(try anonymous.json("/dream")["recent_cycles"] == [])
        #expect(try anonymous.request("GET", "/metrics").status == 200)
        #expect(try authorized.delete("a").status == 204)
    }
}

/// The slow-drip connections, handed to the thread that drips on them.
///
/// `@unchecked Sendable`: only the dripping thread uses them until it has ended; the test closes them after.
final class SlowClients: @unchecked Sendable {
    let connections: [HTTPConnection]

    init(_ connections: [HTTPConnection]) {
        self.connections = connections
    }
}
