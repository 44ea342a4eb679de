import CarmaClient
import CarmaJSON
import CarmaFaults
import CarmaTesting
import Foundation
import Synchronization
import Testing

/// The embedded store's promises, through the real server and the real files (the round trip of a
/// fragment, on both backends, is in BackendBehaviourTests).
@Suite("Fragment store (live)")
struct StoreLiveTests {
    @Test("a zeroed record answers a blank stub with its reason, a flipped bit too; neither is served as content")
    func blanks() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"])
        let api = server.api()
        #expect(try api.put("gone", ["content": "soon deleted", "links": ["rot"], "tags": ["t"]]).status == 201)
        #expect(try api.put("rot", ["content": "soon corrupted"]).status == 201)
        try DiskDamage(dataDirectory: directory.path).zero(["gone"], in: .primary)
        try DiskDamage(dataDirectory: directory.path).flip(["rot"], in: .primary)

        let gone = try api.get("gone")
        #expect(gone.status == 200)
        #expect(gone.header("X-Fragment-Status") == "blank")
        #expect(gone.header("Cache-Status") == "carma; fwd=miss; detail=blank")
        #expect(gone.header("Cache-Control") == "no-store")
        #expect(gone.header("Retry-After").flatMap(Int.init) != nil)
        let stub = try gone.json()
        #expect(stub["status"] == "blank")
        #expect(stub["rebuild_needed"] == true)
        #expect(stub["reason"] == "checksum_mismatch")
        #expect(stub["links"] == ["rot"])
        #expect(stub["tags"] == ["t"])
        #expect(stub["content"] == nil)
        #expect(stub["rebuild"]?["eta_seconds"]?.intValue != nil)

        let rot = try api.get("rot")
        #expect(rot.status == 200)
        #expect(try rot.json()["reason"] == "checksum_mismatch")

        let strict = try api.get("gone", headers: [("Prefer", "strict")])
        #expect(strict.status == 503)
        #expect(strict.header("Retry-After") != nil)
        #expect(try strict.json()["status"] == "blank")
        #expect(try api.request("GET", "/fragments/gone?strict=true").status == 503)

        let listed = try api.json("/fragments?status=blank")
        #expect(Set(listed["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == ["gone", "rot"])
    }

    @Test("an unknown id is 404 every time and creates nothing")
    func unknownIDs() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        let api = server.api()
        for _ in 0..<2 {
            let response = try api.get("typo")
            #expect(response.status == 404)
            #expect(try response.json()["type"] == "urn:carma:problem:fragment-not-found")
        }
        #expect(try api.request("GET", "/fragments/typo/history").status == 404)
        #expect(try api.delete("typo").status == 404)
        #expect(try api.json("/fragments")["items"] == [])
        #expect(DiskDamage(dataDirectory: directory.path).records(.primary).isEmpty)
        #expect(try api.get(".hidden").status == 400)
        #expect(try api.request("GET", "/fragments/a%2F..%2Fb").status == 400)
    }

    @Test("kill -9 while PUTs are acknowledged: every acknowledged PUT survives intact", .timeLimit(.minutes(5)))
    func crashDuringWrites() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path)
        for round in 0..<4 {
            let acknowledged = Mutex<[String: String]>([:])
            let attempted = Mutex<[String: String]>([:])
            let port = server.port
            let writers = 8
            let group = DispatchGroup()
            for writer in 0..<writers {
                group.enter()
                Thread {
                    defer { group.leave() }
                    let api = CarmaAPI(port: port, timeoutSeconds: 10)
                    for n in 0..<100_000 {
                        let id = "r\(round)-w\(writer)-\(n)"
                        let content = "round \(round) writer \(writer) number \(n) " + String(repeating: "x", count: n % 300)
                        attempted.withLock { $0[id] = content }
                        guard let response = try? api.put(id, ["content": .string(content)]), response.status == 201 else { return }
                        acknowledged.withLock { $0[id] = content }
                    }
                }.start()
            }
            usleep(UInt32(300_000 + round * 150_000))
            server.crash()
            group.wait()
            server = try server.restarted()
            let api = server.api()
            let acked = acknowledged.withLock { $0 }
            #expect(acked.count > 50, "round \(round): only \(acked.count) writes acknowledged before the crash")
            for (id, content) in acked {
                let response = try api.get(id)
                #expect(response.status == 200, "round \(round): acknowledged \(id) lost")
                #expect(response.header("X-Fragment-Status") == "ok")
                #expect(try response.json()["content"]?.stringValue == content)
            }
            // Writes in flight at the crash may or may not exist, but never half-written.
            for (id, content) in attempted.withLock({ $0 }) where acked[id] == nil {
                let response = try api.get(id)
                #expect(response.status == 404 || (response.status == 200 && (try? response.json()["content"]?.stringValue) == content))
            }
        }
        #expect(server.stop() == 0)
    }

    @Test("disk full answers 507 and keeps the previous version intact")
    func diskFull() throws {
        let mountPoint = TemporaryDirectory("full")
        defer { mountPoint.remove() }
        try TmpfsMount.mount(at: mountPoint.path, size: "2m")
        defer { TmpfsMount.unmount(mountPoint.path) }
        let data = mountPoint.path + "/data"
        let server = try ServerProcess(dataDirectory: data, extraArguments: ["--max-content-bytes", "200000", "--max-body-bytes", "300000"])
        let api = server.api()
        #expect(try api.put("keep", ["content": "the version that must survive"]).status == 201)
        var statuses: [Int] = []
        let big = String(repeating: "z", count: 150_000)
        for n in 0..<40 {
            let status = try api.put("filler-\(n)", ["content": .string(big)]).status
            statuses.append(status)
            if status == 507 { break }
        }
        #expect(statuses.last == 507, "statuses: \(statuses)")
        let replace = try api.put("keep", ["content": .string(big)])
        #expect(replace.status == 507)
        #expect(try replace.json()["type"] == "urn:carma:problem:insufficient-storage")
        // The failed write never became "the current version": a conditional write still sees the
        // stored one, and a failed delete leaves it too.
        let current = try #require(try api.get("keep").header("ETag"))
        #expect(try api.put("keep", ["content": .string(big)], headers: [("If-Match", current)]).status == 507)
        #expect(try api.get("keep").header("ETag") == current)
        let kept = try api.get("keep")
        #expect(kept.status == 200)
        #expect(try kept.json()["content"] == "the version that must survive")
        #expect(server.stop() == 0)
        // And after a restart too.
        let again = try server.restarted()
        #expect(try again.api().get("keep").json()["content"] == "the version that must survive")
        again.stop()
    }

    @Test("many clients PUT and GET the same ids at once: no torn reads, versions only go up")
    func concurrentClients() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        let port = server.port
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { client in
            let api = CarmaAPI(port: port)
            var lastSeen: [String: UInt64] = [:]
            for n in 0..<150 {
                let id = "hot-\(n % 5)"
                do {
                    if client % 2 == 0 {
                        let response = try api.put(id, ["content": .string("client \(client) write \(n) " + String(repeating: "y", count: n))])
                        guard response.status == 200 || response.status == 201 else { throw ClientError("PUT \(response.status)") }
                    }
                    let read = try api.get(id)
                    if read.status == 404 { continue }
                    let json = try read.json()
                    guard read.status == 200, let content = json["content"]?.stringValue, content.hasPrefix("client "),
                        let version = json["version"]?.intValue
                    else { throw ClientError("bad read \(read.status) \(read.text.prefix(100))") }
                    let parts = content.split(separator: " ")
                    guard parts.count >= 4, content.hasSuffix(String(repeating: "y", count: Int(parts[3])!)) || Int(parts[3])! == 0 else {
                        throw ClientError("torn content")
                    }
                    guard UInt64(version) >= lastSeen[id, default: 0] else { throw ClientError("version went down on \(id)") }
                    lastSeen[id] = UInt64(version)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")
    }
}
