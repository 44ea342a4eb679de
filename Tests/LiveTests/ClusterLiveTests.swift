import CarmaClient
import CarmaJSON
import CarmaTesting
import CarmaText
import Foundation
import Synchronization
import Testing

/// Cluster mode: several carmad nodes on one real PostgreSQL, with faults caused for real (rows
/// damaged with SQL, a node killed with SIGKILL, the database stopped).
///
/// Serialized: every test runs its own PostgreSQL and two or three nodes, and the outage test
/// relies on the database timeout, which a machine busy with another cluster would blur.
@Suite("Cluster mode (live)", .serialized)
struct ClusterLiveTests {
    @Test("namespaces across nodes: a token made on one node works on another, on its namespace only; revoking and deleting take effect everywhere at once", .timeLimit(.minutes(10)))
    func namespacesAcrossNodes() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        let secrets = TemporaryDirectory("admin-token")
        defer { secrets.remove() }
        let admin = "an-admin-token-for-the-cluster-test"
        try Data((admin + "\n").utf8).write(to: URL(fileURLWithPath: secrets.path + "/token"))
        let cluster = try ClusterNodes(count: 2, database: database, extraArguments: manualDreamOnly + ["--auth-token-file", secrets.path + "/token"])
        defer { cluster.shutDown() }
        let alice = try CarmaNamespace("alice"), bob = try CarmaNamespace("bob"), nobody = try CarmaNamespace("nobody")
        let adminOn = { (node: Int, namespace: CarmaNamespace) in CarmaAPI(port: cluster[node].port, token: admin, namespace: namespace) }
        #expect(try adminOn(0, alice).put("n1", ["content": "Alice waters the ferns on Sundays."]).status == 201)
        #expect(try adminOn(0, bob).put("n1", ["content": "Bob feeds the cat at seven."]).status == 201)
        let issued = try adminOn(0, .default).request("POST", "/namespaces/alice/tokens", json: ["scope": "write"])
        #expect(issued.status == 201)
        let token = try #require(try issued.json()["token"]?.stringValue)
        let tokenID = try #require(try issued.json()["id"]?.stringValue)

        // On the other node: alice's token reads and writes alice, and bob answers as nobody does.
        let tenant = CarmaAPI(port: cluster[1].port, token: token, namespace: alice)
        #expect(try tenant.get("n1").json()["content"]?.stringValue == "Alice waters the ferns on Sundays.")
        let batch = try tenant.request("POST", tenant.scoped("/fragments"), json: ["fragments": [["content": "Alice's fern is a maidenhair."], ["id": "n1", "content": "Alice waters the ferns on Sundays."]]])
        #expect(try batch.json()["created"] == 1 && batch.json()["unchanged"] == 1)
        let onBob = try CarmaAPI(port: cluster[1].port, token: token, namespace: bob).get("n1")
        let onNobody = try CarmaAPI(port: cluster[1].port, token: token, namespace: nobody).get("n1")
        #expect(onBob.status == 404 && onBob.body == onNobody.body)
        let query = try tenant.request("POST", tenant.scoped("/query"), json: ["text": "feeds the cat at seven"])
        let hits = try query.json()["results"]?.arrayValue ?? []
        #expect(hits.allSatisfy { !($0["content"]?.stringValue ?? "").contains("cat") }, "\(query.text.prefix(600))")

        // Revoked on node 1: refused on node 2 at the next request.
        #expect(try adminOn(0, .default).request("DELETE", "/namespaces/alice/tokens/\(tokenID)").status == 204)
        #expect(try tenant.get("n1").status == 401)
        // Deleted on node 2: gone on node 1.
        let deleted = try adminOn(1, .default).request("DELETE", "/namespaces/alice")
        #expect(try deleted.json()["deleted"] == 2)
        #expect(try adminOn(0, alice).get("n1").status == 404)
        #expect(try adminOn(0, bob).get("n1").json()["content"]?.stringValue == "Bob feeds the cat at seven.")
    }

    @Test("three nodes started at once share one store: each write is read exactly, at its version, through every node", .timeLimit(.minutes(10)))
    func readYourWritesAcrossNodes() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        let cluster = try ClusterNodes(count: 3, database: database, extraArguments: manualDreamOnly)
        defer { cluster.shutDown() }
        let apis = cluster.apis()
        #expect(try database.psql("SELECT count(*) FROM pg_tables WHERE tablename IN ('carma_fragments', 'carma_payloads', 'carma_redundancy', 'carma_repairs')") == "4")

        let first = "Erste Fassung — ünïcødé ✓ 日本語 🧠, \"quotes\" \\ and\ttabs\nnew lines"
        let created = try apis[0].put("shared", ["content": .string(first), "links": ["other"], "tags": ["cluster"], "metadata": ["n": 1.5]])
        #expect(created.status == 201)
        let firstTag = try #require(created.header("ETag"))
        let firstVersion = try created.json()["version"]
        for index in [1, 2] {
            let read = try apis[index].get("shared")
            #expect(read.status == 200, "node\(index + 1): \(read.text.prefix(300))")
            #expect(read.header("X-Fragment-Status") == "ok")
            #expect(read.header("ETag") == firstTag, "node\(index + 1)")
            let json = try read.json()
            #expect(json["content"]?.stringValue == first, "node\(index + 1) not byte-exact")
            #expect(json["version"] == firstVersion)
            #expect(json["links"] == ["other"])
            #expect(json["tags"] == ["cluster"])
            #expect(json["metadata"] == ["n": 1.5])
        }
        // Node 1 now holds the first version in its cache.
        #expect(try apis[0].get("shared").json()["content"]?.stringValue == first)

        let second = "Zweite Fassung, written through node 2 — ✓✓"
        let replaced = try apis[1].put("shared", ["content": .string(second), "tags": ["cluster", "v2"]])
        #expect(replaced.status == 200)
        let secondTag = try #require(replaced.header("ETag"))
        #expect(secondTag != firstTag)
        let secondVersion = try replaced.json()["version"]

        // Nodes 1 and 3 read at once: both see the new version, node 1 not its cached old body.
        let ports = [cluster[0].port, cluster[2].port]
        let reads = Mutex<[Int: Result<ClientResponse, ClientError>]>([:])
        DispatchQueue.concurrentPerform(iterations: ports.count) { index in
            let result = Result { () throws(ClientError) -> ClientResponse in try CarmaAPI(port: ports[index]).get("shared") }
            reads.withLock { $0[index] = result }
        }
        for (index, node) in ["node1", "node3"].enumerated() {
            let read = try #require(try reads.withLock { $0[index] }?.get())
            #expect(read.status == 200, "\(node): \(read.text.prefix(300))")
            #expect(read.header("ETag") == secondTag, "\(node) served a stale version")
            let json = try read.json()
            #expect(json["content"]?.stringValue == second, "\(node) served a stale body")
            #expect(json["version"] == secondVersion)
            #expect(json["tags"] == ["cluster", "v2"])
        }
        // A writer holding the old version loses on another node too.
        let stale = try apis[2].put("shared", ["content": "a lost update"], headers: [("If-Match", firstTag)])
        #expect(stale.status == 412)
        #expect(try apis[0].get("shared").json()["content"]?.stringValue == second)

        let deleted = try apis[2].delete("shared")
        #expect(deleted.status == 204)
        for index in [0, 1] {
            let read = try apis[index].get("shared")
            #expect(read.status == 404, "node\(index + 1) still serves a deleted fragment: \(read.text.prefix(300))")
            #expect(try apis[index].json("/fragments")["items"] == [])
        }
    }

    @Test("payload rows flipped or deleted in PostgreSQL: blank on every node, then one cycle on one node brings each back exactly from carma_redundancy", .timeLimit(.minutes(10)))
    func damagedRowsRepairedFromRedundancy() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        // No payload cache, so that every read goes to the database and sees the damage.
        let cluster = try ClusterNodes(count: 3, database: database, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        defer { cluster.shutDown() }
        let apis = cluster.apis()
        let contents = try apis[0].seed(20)
        let ids = contents.keys.sorted()
        var tags: [String: String] = [:]
        for id in ids {
            tags[id] = try apis[1].get(id).header("ETag")
        }
        let flipped: Set = ["f3", "f7", "f11", "f15"]
        let removed: Set = ["f0", "f5", "f9", "f13", "f18"]
        for id in flipped.sorted() {
            try Self.flipContentByte(of: id, content: try #require(contents[id]), in: database)
        }
        try database.psql("DELETE FROM carma_payloads WHERE id IN (\(Self.sqlList(removed)))")
        #expect(try database.psql("SELECT count(*) FROM carma_payloads WHERE id IN (\(Self.sqlList(removed)))") == "0")
        #expect(try database.psql("SELECT count(*) FROM carma_redundancy WHERE id IN (\(Self.sqlList(flipped.union(removed))))") == "9")

        for (index, api) in apis.enumerated() {
            for id in ids {
                let response = try api.get(id)
                #expect(response.status == 200, "node\(index + 1) \(id): \(response.status) \(response.text.prefix(300))")
                let json = try response.json()
                if flipped.contains(id) || removed.contains(id) {
                    #expect(response.header("X-Fragment-Status") == "blank", "node\(index + 1) \(id): \(response.text.prefix(300))")
                    #expect(response.header("Retry-After").flatMap(Int.init) != nil)
                    #expect(json["status"] == "blank")
                    #expect(json["rebuild_needed"] == true)
                    #expect(json["content"] == nil, "node\(index + 1) served damaged content for \(id)")
                    #expect(json["reason"] == (flipped.contains(id) ? "checksum_mismatch" : "missing"), "node\(index + 1) \(id): \(json)")
                } else {
                    #expect(response.header("X-Fragment-Status") == "ok")
                    #expect(json["content"]?.stringValue == contents[id])
                }
            }
            #expect(try Self.listed(api, status: "blank") == flipped.union(removed), "node\(index + 1)")
        }

        let report = try apis[1].dream()
        #expect(report["state"] == "finished", "\(report)")
        #expect(report["outcomes"]?["recovered"] == 9, "\(report)")
        #expect(report["outcomes"]?["failed"] == nil)
        #expect(report["repairs"]?["redundancy"]?["recovered"] == 9, "\(report)")

        for (index, api) in apis.enumerated() {
            for id in ids {
                let response = try api.get(id)
                #expect(response.status == 200)
                #expect(response.header("X-Fragment-Status") == "ok", "node\(index + 1) \(id): \(response.text.prefix(300))")
                #expect(response.header("ETag") == tags[id], "node\(index + 1) \(id): an exact repair keeps the version")
                #expect(try response.json()["content"]?.stringValue == contents[id], "node\(index + 1) \(id) not byte-exact")
            }
            #expect(try Self.listed(api, status: "blank").isEmpty, "node\(index + 1)")
        }
        let history = try apis[2].json("/fragments/f3/history")["events"]?.arrayValue ?? []
        #expect(history.last?["kind"] == "recovered", "\(history)")
        #expect(history.last?["tier"] == "redundancy")
        // Both copies exist again, and nothing is left queued.
        #expect(try database.psql("SELECT count(*) FROM carma_payloads") == "20")
        #expect(try database.psql("SELECT count(*) FROM carma_repairs") == "0")
    }

    @Test("kill -9 of the node running a cycle: another node takes its leased repairs over and every fragment comes back exactly", .timeLimit(.minutes(10)))
    func crashMidCycle() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        // Short leases, so that node 1's repairs are free again soon after it dies; node 1 works
        // slowly (1% duty cycle), so that it dies in the middle of its cycle.
        let cluster = try ClusterNodes(
            count: 3, database: database, extraArguments: ["--cache-bytes", "0", "--repair-lease", "2"] + manualDreamOnly,
            perNode: [0: ["--dream-duty-cycle", "0.01"]])
        defer { cluster.shutDown() }
        let apis = cluster.apis()
        let contents = try apis[1].seed(250)
        let ids = contents.keys.sorted()
        let damaged = Set(ids.prefix(200))
        try database.psql("DELETE FROM carma_payloads WHERE id IN (\(Self.sqlList(damaged)))")
        #expect(try database.psql("SELECT count(*) FROM carma_payloads") == "50")
        for id in damaged.sorted() {
            #expect(try apis[0].get(id).header("X-Fragment-Status") == "blank", "\(id)")
        }

        let started = try apis[0].request("POST", "/dream")
        #expect(started.status == 202, "\(started.text)")
        let cycle = try #require(try started.json()["id"]?.intValue)
        for _ in 0..<400 {
            let recovered = try apis[0].json("/dream/\(cycle)")["outcomes"]?["recovered"]?.intValue ?? 0
            if recovered > 0 { break }
            usleep(20_000)
        }
        let before = try apis[0].json("/dream/\(cycle)")
        #expect(before["state"] == "running", "the cycle should still run when node 1 is killed: \(before)")
        cluster[0].crash()
        // It died holding leases, which the other nodes must wait out and then take over.
        let held = try database.psql("SELECT count(*) FROM carma_repairs WHERE lease_owner = 'node1'")
        #expect((Int(held) ?? 0) > 0, "node 1 held no repair when it died")

        // Node 2 dreams until nothing is blank or queued; the repairs node 1 held wait for their
        // lease to run out.
        let deadline = Date().addingTimeInterval(300)
        var reports: [JSONValue] = []
        while Date() < deadline {
            let report = try apis[1].dream()
            reports.append(report)
            #expect(report["outcomes"]?["failed"] == nil, "\(report)")
            if try Self.listed(apis[1], status: "blank").isEmpty, try database.psql("SELECT count(*) FROM carma_repairs") == "0" { break }
            usleep(500_000)
        }
        let recovered = reports.compactMap { $0["outcomes"]?["recovered"]?.intValue }.reduce(0, +)
        #expect(recovered > 0, "node 2 repaired nothing itself: \(reports)")
        #expect(try Self.listed(apis[1], status: "blank").isEmpty, "\(reports.count) cycles on node 2:\n\(cluster.logs.suffix(4000))")
        for id in ids {
            for index in [1, 2] {
                let response = try apis[index].get(id)
                #expect(response.header("X-Fragment-Status") == "ok", "node\(index + 1) \(id): \(response.text.prefix(200))")
                #expect(try response.json()["content"]?.stringValue == contents[id], "node\(index + 1) \(id) not byte-exact")
            }
        }
        #expect(try database.psql("SELECT count(*) FROM carma_repairs") == "0",
                "left in carma_repairs: \((try? database.psql("SELECT id, lease_owner, lease_until FROM carma_repairs LIMIT 10")) ?? "?")")
    }

    @Test("bad database flags and an unreachable database stop carmad at start with a clear message; a newer schema is refused", .timeLimit(.minutes(10)))
    func refusedAtStart() throws {
        let directory = TemporaryDirectory("node")
        defer { directory.remove() }
        let base = ["--data-dir", directory.path, "--port", "0"]
        let scheme = try ServerProcess.run(base + ["--database-url", "mysql://db/carma"])
        #expect(scheme.status == 2)
        #expect(scheme.output.contains("postgresql://"))
        #expect(try ServerProcess.run(base + ["--database-url", "postgresql://x/y", "--database-pool", "0"]).status == 2)
        #expect(try ServerProcess.run(base + ["--database-url", "postgresql://x/y", "--database-timeout", "nan"]).status == 2)

        // Nothing listens on this port: refused at once, not a hang.
        let closed = try ServerProcess.run(base + ["--database-url", "postgresql://postgres@127.0.0.1:1/carma", "--database-timeout", "1"])
        #expect(closed.status == 1)
        #expect(closed.output.contains("cannot open the store"), "\(closed.output.suffix(2000))")

        let database = try PostgresServer()
        defer { database.destroy() }
        _ = try database.psql("CREATE TABLE carma_schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO carma_schema_migrations (version, description) VALUES (999, 'from the future')")
        let newer = try ServerProcess.run(base + ["--database-url", database.url])
        #expect(newer.status == 1)
        #expect(newer.output.contains("newer than this carmad understands"), "\(newer.output.suffix(2000))")
        #expect(try database.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'carma_fragments'") == "0")
    }

    @Test(
        "with the model: two nodes share the embedding work, and a question in other words finds its answer through either node",
        .enabled(if: testEmbeddingModel != nil), .timeLimit(.minutes(10)))
    func sharedMeanings() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        let cluster = try ClusterNodes(count: 2, database: database, extraArguments: manualDreamOnly + ["--embedding-model", testEmbeddingModel!])
        defer { cluster.shutDown() }
        let apis = cluster.apis()
        let notes = [
            "kitten": "The kitten sleeps on the warm windowsill all afternoon.",
            "oil": "Change the engine oil every ten thousand kilometres.",
            "storm": "Waves crash against the rocky shore during the storm.",
            "bread": "Knead the dough, let it rise overnight, then bake it until golden.",
        ]
        for (index, (id, content)) in notes.sorted(by: { $0.key < $1.key }).enumerated() {
            #expect(try apis[index % 2].put(id, ["content": .string(content)]).status == 201)
        }
        #expect(Self.eventually(within: 120) { try database.psql("SELECT count(*) FROM carma_meanings") == "4" }, "meanings stored")
        #expect(try database.psql("SELECT count(DISTINCT model) FROM carma_meanings WHERE length(vector) = 384") == "1")
        for (index, api) in apis.enumerated() {
            #expect(Self.eventually(within: 60) { try api.json("/readyz")["retrieval"]?["embedded"] == 4 }, "node\(index + 1) index has every meaning")
            let answer = try api.request("POST", "/query", json: ["text": "a young cat resting in the sunshine", "mode": "vector", "k": 1]).json()
            #expect(answer["signals"] == ["meaning"])
            #expect(answer["results"]?.arrayValue?.first?["id"] == "kitten", "node\(index + 1): \(answer)")
            let car = try api.request("POST", "/query", json: ["text": "looking after a car", "k": 1]).json()
            #expect(car["results"]?.arrayValue?.first?["id"] == "oil", "node\(index + 1): \(car)")
        }
        // A new version is embedded again; a deleted fragment's meaning goes with it.
        #expect(try apis[1].put("oil", ["content": "Sourdough needs a starter fed with flour and water."]).status == 200)
        #expect(try apis[0].delete("storm").status == 204)
        #expect(Self.eventually(within: 120) {
            try database.psql("SELECT count(*) FROM carma_meanings m JOIN carma_fragments f ON f.id = m.id AND f.version = m.version") == "3"
        })
        #expect(try database.psql("SELECT count(*) FROM carma_meanings WHERE id = 'storm'") == "0")
        #expect(try database.psql("SELECT count(*) FROM carma_embed_claims") == "0")
    }

    @Test("PostgreSQL down for 10 s under reads and writes: reads answer the cached body or a flagged stub, writes 503 with Retry-After, readiness follows, and every acknowledged write is there after", .timeLimit(.minutes(10)))
    func databaseOutage() throws {
        let database = try PostgresServer()
        defer { database.destroy() }
        let cluster = try ClusterNodes(count: 2, database: database, extraArguments: ["--database-timeout", "1"] + manualDreamOnly)
        defer { cluster.shutDown() }
        let apis = cluster.apis(timeoutSeconds: 30)
        let seeded = try apis[0].seed(50)
        let seededIDs = seeded.keys.sorted()
        for id in seededIDs {
            #expect(try apis[0].get(id).json()["content"]?.stringValue == seeded[id])
        }
        for api in apis {
            #expect(try api.request("GET", "/readyz").status == 200)
            #expect(try Self.databaseUp(api) == 1)
        }

        let outage = Outage()
        let ports = cluster.nodes.map(\.port)
        let group = DispatchGroup()
        for reader in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                let node = reader % 2
                let api = CarmaAPI(port: ports[node], timeoutSeconds: 30)
                var generator = SplitMix64(seed: UInt64(reader + 1))
                var n = 0
                while !outage.stopped {
                    n += 1
                    // Every other read is of a write acknowledged meanwhile, through either node.
                    let pick = n % 2 == 0 ? outage.randomAcknowledged(using: &generator) : nil
                    let id = pick?.id ?? seededIDs.randomElement(using: &generator)!
                    let expected = pick?.content ?? seeded[id]!
                    let phase = outage.phase
                    do {
                        let response = try api.get(id)
                        if let failure = Self.unexpectedRead(response, expected: expected) {
                            outage.fail("GET \(id) via node\(node + 1) (\(phase)): \(failure)")
                        } else {
                            outage.countRead(phase, stub: response.header("X-Fragment-Status") == "blank")
                        }
                    } catch {
                        outage.fail("GET \(id) via node\(node + 1) (\(phase)): no answer: \(error)")
                    }
                    usleep(5_000)
                }
            }.start()
        }
        for writer in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                let node = writer % 2
                let api = CarmaAPI(port: ports[node], timeoutSeconds: 30)
                var n = 0
                while !outage.stopped {
                    n += 1
                    let id = "w\(writer)-\(n)"
                    let content = "writer \(writer) write \(n) — ✓ " + String(repeating: "x", count: n % 200)
                    outage.attempt(id, content)
                    let phase = outage.phase
                    do {
                        let response = try api.put(id, ["content": .string(content)])
                        switch response.status {
                        case 200..<300:
                            outage.acknowledge(id, content, phase)
                        case 503 where response.header("Retry-After").flatMap(Int.init) != nil:
                            outage.reject(phase)
                        default:
                            outage.fail("PUT \(id) via node\(node + 1) (\(phase)): \(response.status) Retry-After \(response.header("Retry-After") ?? "none") \(response.text.prefix(300))")
                        }
                    } catch {
                        outage.fail("PUT \(id) via node\(node + 1) (\(phase)): no answer: \(error)")
                    }
                    usleep(20_000)
                }
            }.start()
        }
        defer {
            outage.stop()
            group.wait()
        }

        usleep(2_000_000)
        outage.enter(.down)
        let down = Date()
        try database.stop()
        for (index, api) in apis.enumerated() {
            #expect(Self.eventually(within: 60) { try api.request("GET", "/readyz").status == 503 }, "node\(index + 1) stayed ready without its database")
            #expect(Self.eventually(within: 60) { try Self.databaseUp(api) == 0 }, "node\(index + 1): carma_database_up never 0")
        }
        let remaining = 10 - Date().timeIntervalSince(down)
        if remaining > 0 { usleep(UInt32(remaining * 1_000_000)) }
        for (index, api) in apis.enumerated() {
            let readiness = try api.request("GET", "/readyz")
            #expect(readiness.status == 503, "node\(index + 1) ready while the database is down")
            #expect(readiness.header("Retry-After") != nil)
        }
        outage.enter(.after)
        try database.start()
        for (index, api) in apis.enumerated() {
            #expect(Self.eventually(within: 120) { try api.request("GET", "/readyz").status == 200 }, "node\(index + 1) never ready again:\n\(cluster[index].log.suffix(3000))")
            #expect(Self.eventually(within: 60) { try Self.databaseUp(api) == 1 }, "node\(index + 1): carma_database_up never 1 again")
        }
        // Writers get through again by themselves, through both nodes.
        #expect(Self.eventually(within: 120) { outage.acknowledgedAfter >= 20 }, "writes acknowledged after the outage: \(outage.acknowledgedAfter)")
        outage.stop()
        group.wait()

        print("database outage: \(outage.summary)")
        let failures = outage.failures
        #expect(failures.isEmpty, "\(failures.count) unexpected answers, first: \(failures.prefix(8).joined(separator: "\n"))\n\(cluster.logs.suffix(4000))")
        #expect(outage.rejectedDuring > 0, "no write was refused while the database was down")
        #expect(outage.readsDuring > 0, "no read was answered while the database was down")
        let acknowledged = outage.acknowledged
        #expect(acknowledged.count >= 20)
        for (index, api) in apis.enumerated() {
            for (id, content) in acknowledged.sorted(by: { $0.key < $1.key }) {
                let response = try api.get(id)
                #expect(response.status == 200, "node\(index + 1): acknowledged \(id) lost: \(response.status) \(response.text.prefix(200))")
                #expect(response.header("X-Fragment-Status") == "ok", "node\(index + 1) \(id): \(response.text.prefix(200))")
                #expect(try response.json()["content"]?.stringValue == content, "node\(index + 1) \(id) not byte-exact")
            }
            for id in seededIDs {
                let response = try api.get(id)
                #expect(response.header("X-Fragment-Status") == "ok", "node\(index + 1) \(id): \(response.text.prefix(200))")
                #expect(try response.json()["content"]?.stringValue == seeded[id])
            }
        }
        // A refused write may or may not have been stored, but never half.
        for (id, content) in outage.attempted where acknowledged[id] == nil {
            let response = try apis[1].get(id)
            #expect(response.status == 404 || (try? response.json()["content"]?.stringValue) == content, "\(id): \(response.status) \(response.text.prefix(200))")
        }
    }
}

extension ClusterLiveTests {
    /// Flips one byte of the fragment's content inside its `carma_payloads` record (all its bits),
    /// and checks that the stored byte really changed.
    static func flipContentByte(of id: String, content: String, in database: PostgresServer) throws {
        let marker = String(content.prefix(24)).replacingOccurrences(of: "'", with: "''")
        let found = try database.psql("SELECT position(convert_to('\(marker)', 'UTF8') in record), length(record) FROM carma_payloads WHERE id = '\(id)'")
        let numbers = found.split(separator: "|").compactMap { Int($0) }
        guard numbers.count == 2, numbers[1] > 0 else { throw ClientError("no payload row for \(id): \(found)") }
        // Inside the content when it is stored as text; the middle of the record otherwise.
        let index = numbers[0] > 0 ? numbers[0] - 1 + 16 : numbers[1] / 2
        let byte = "get_byte(record, \(index))"
        let before = try database.psql("SELECT \(byte) FROM carma_payloads WHERE id = '\(id)'")
        try database.psql("UPDATE carma_payloads SET record = set_byte(record, \(index), \(byte) # 255) WHERE id = '\(id)'")
        let after = try database.psql("SELECT \(byte) FROM carma_payloads WHERE id = '\(id)'")
        guard before != after, Int(after) != nil else { throw ClientError("byte \(index) of \(id)'s record did not change: \(before) → \(after)") }
    }

    /// `'a', 'b'` for an `IN (…)` (test ids need no escaping beyond quotes).
    static func sqlList(_ ids: Set<String>) -> String {
        ids.sorted().map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: ", ")
    }

    /// Every id the node lists with `status`, following cursors.
    static func listed(_ api: CarmaAPI, status: String) throws -> Set<String> {
        var ids: Set<String> = []
        var cursor: String?
        repeat {
            let page = try api.json("/fragments?status=\(status)&limit=1000" + (cursor.map { "&cursor=\($0)" } ?? ""))
            for item in page["items"]?.arrayValue ?? [] {
                if let id = item["id"]?.stringValue { ids.insert(id) }
            }
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil
        return ids
    }

    /// The value of `carma_database_up` in the node's `/metrics`, if it has one.
    @Test("a cycle left running by a node that died is marked interrupted by another node once its lease has passed, not an hour later", .timeLimit(.minutes(5)))
    func abandonedCycleInterrupted() throws {
        let node = try TestNode(.postgres, arguments: manualDreamOnly)  // lease: --dream-max-seconds 300 + --repair-lease 60
        defer { node.remove() }
        let database = try #require(node.database)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // What a node killed mid-cycle leaves (its name carries its pid: it never comes back as itself).
        func ghost(_ id: Int, startedMinutesAgo minutes: Int64) throws {
            let started = now - minutes * 60_000
            let report = #"{"id":\#(id),"state":"running","trigger":"manual","node":"ghost-4242"}"#
            try database.psql("INSERT INTO carma_cycles (id, node, trigger, state, started_at, report) VALUES (\(id), 'ghost-4242', 'manual', 'running', \(started), '\(report)')")
        }
        try ghost(900_001, startedMinutesAgo: 10)  // past its lease (6 min), well within the old hour
        try ghost(900_002, startedMinutesAgo: 1)  // may still be running
        let api = node.api()
        _ = try api.dream()
        let abandoned = try api.json("/dream/900001")
        #expect(abandoned["state"] == "interrupted", "before the fix it stayed running for an hour: \(abandoned)")
        #expect(abandoned["stop_reason"]?.stringValue?.contains("ghost-4242") == true)
        #expect(try database.psql("SELECT node FROM carma_cycles WHERE id = 900001") == "ghost-4242")
        #expect(try api.json("/dream/900002")["state"] == "running")
    }

    /// The pids of a test PostgreSQL's postmaster and its backends (to stop them all, as a stalled
    /// machine would; only this server's processes).
    static func postgresProcesses(_ database: PostgresServer) throws -> [pid_t] {
        let pidFile = try String(contentsOfFile: "\(database.directory)/data/postmaster.pid", encoding: .utf8)
        guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }) else { return [] }
        var pids = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == postmaster { pids.append(pid) }
        }
        return pids
    }

    @Test(
        "PostgreSQL stalled (SIGSTOP) under light load with --database-timeout 1: cached GETs, PUTs' 503s and /metrics all answer within the deadline plus a margin, metrics say the database is down",
        .timeLimit(.minutes(5)))
    func stalledDatabaseKeepsDeadlines() throws {
        let node = try TestNode(.postgres, arguments: ["--database-timeout", "1"] + manualDreamOnly)
        defer { node.remove() }
        let database = try #require(node.database)
        let api = node.server.api()
        api.callTimeout = .seconds(30)
        for index in 0..<8 { #expect(try api.put("held-\(index)", ["content": .string("cached \(index)")]).status == 201) }
        for index in 0..<8 { #expect(try api.get("held-\(index)").status == 200) }  // now in the node's cache

        let pids = try Self.postgresProcesses(database)
        #expect(pids.count > 1)
        for pid in pids { kill(pid, SIGSTOP) }
        defer { for pid in pids { kill(pid, SIGCONT) } }
        // Light load meanwhile: two clients writing, one reading.
        let outage = Outage()
        let port = node.server.port
        let group = DispatchGroup()
        for client in 0..<3 {
            group.enter()
            Thread {
                defer { group.leave() }
                let load = CarmaAPI(port: port, timeoutSeconds: 30)
                var n = 0
                while !outage.stopped {
                    n += 1
                    if client < 2 {
                        _ = try? load.put("load-\(client)-\(n % 5)", ["content": "x"])
                    } else {
                        _ = try? load.get("held-\(n % 8)")
                    }
                }
            }.start()
        }
        defer {
            outage.stop()
            group.wait()
        }
        let margin: Duration = .milliseconds(2500)  // the deadline is 1 s
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
            let start = ContinuousClock.now
            let value = try body()
            return (value, ContinuousClock.now - start)
        }
        for round in 0..<4 {
            let (read, readTime) = try timed { try api.get("held-\(round)") }
            #expect(try read.status == 200 && read.json()["content"]?.stringValue == "cached \(round)")
            #expect(readTime < margin, "cached GET took \(readTime) (before the fix: 3.8 and 5.7 s at a 2 s timeout)")
            let (write, writeTime) = try timed { try api.put("new-\(round)", ["content": "y"]) }
            #expect(write.status == 503 && write.header("Retry-After") != nil)
            #expect(writeTime < margin, "PUT's 503 took \(writeTime) (before the fix: 4.0 to 4.3 s at a 2 s timeout)")
            let (up, metricsTime) = try timed { try Self.databaseUp(api) }
            #expect(up == 0, "carma_database_up during the stall")
            #expect(metricsTime < margin, "/metrics took \(metricsTime) (before the fix: 5.7 to 6.0 s)")
        }
        outage.stop()
        for pid in pids { kill(pid, SIGCONT) }
        // Back by itself.
        var resumed = false
        let until = ContinuousClock.now + .seconds(30)
        while !resumed, ContinuousClock.now < until {
            resumed = (try? api.put("after", ["content": "z"]).status) == 201
            if !resumed { usleep(200_000) }
        }
        #expect(resumed)
        #expect(try Self.databaseUp(api) == 1)
    }

    static func databaseUp(_ api: CarmaAPI) throws -> Double? {
        let response = try api.request("GET", "/metrics")
        for line in response.text.split(separator: "\n") where line.hasPrefix("carma_database_up") {
            let rest = line.dropFirst("carma_database_up".count)
            guard rest.first == " " || rest.first == "{", let value = line.split(separator: " ").last else { continue }
            return Double(value)
        }
        return nil
    }

    /// Asks until `condition` holds (an error counts as not yet) or `seconds` pass.
    static func eventually(within seconds: Double, _ condition: () throws -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if (try? condition()) == true { return true }
            usleep(100_000)
        } while Date() < deadline
        return false
    }

    /// Why a read's answer breaks the outage promise, or nil: the exact fragment, or a blank stub
    /// saying the backend is unavailable, with `Retry-After`.
    static func unexpectedRead(_ response: ClientResponse, expected: String) -> String? {
        let json = try? response.json()
        switch (response.status, response.header("X-Fragment-Status")) {
        case (200, "ok"?):
            return json?["content"]?.stringValue == expected ? nil : "200 ok with another body: \(response.text.prefix(200))"
        case (200, "blank"?):
            guard json?["status"] == "blank", json?["reason"] == "backend_unavailable" else {
                return "blank stub without reason backend_unavailable: \(response.text.prefix(300))"
            }
            return response.header("Retry-After").flatMap(Int.init) == nil ? "blank stub without Retry-After" : nil
        default:
            return "\(response.status) X-Fragment-Status \(response.header("X-Fragment-Status") ?? "none") \(response.text.prefix(300))"
        }
    }
}

/// What the outage test's readers and writers saw, shared between their threads.
final class Outage: Sendable {
    enum Phase: String, Sendable {
        case before, down, after
    }

    private struct State {
        var phase = Phase.before
        var stopped = false
        var failures: [String] = []
        var attempted: [String: String] = [:]
        var acknowledged: [String: String] = [:]
        var acknowledgedList: [(id: String, content: String)] = []
        var acknowledgedAfter = 0
        var rejectedDuring = 0
        var readsDuring = 0
        var stubs = 0
    }

    private let state = Mutex(State())

    var phase: Phase { self.state.withLock { $0.phase } }
    var stopped: Bool { self.state.withLock { $0.stopped } }
    var failures: [String] { self.state.withLock { $0.failures } }
    var attempted: [String: String] { self.state.withLock { $0.attempted } }
    var acknowledged: [String: String] { self.state.withLock { $0.acknowledged } }
    var acknowledgedAfter: Int { self.state.withLock { $0.acknowledgedAfter } }
    var rejectedDuring: Int { self.state.withLock { $0.rejectedDuring } }
    var readsDuring: Int { self.state.withLock { $0.readsDuring } }
    var summary: String {
        self.state.withLock {
            "\($0.acknowledged.count) writes acknowledged (\($0.acknowledgedAfter) after the outage), \($0.rejectedDuring) refused during it; "
                + "\($0.readsDuring) reads answered during it, \($0.stubs) blank stubs in all"
        }
    }

    func enter(_ phase: Phase) { self.state.withLock { $0.phase = phase } }
    func stop() { self.state.withLock { $0.stopped = true } }
    func fail(_ message: String) { self.state.withLock { $0.failures.append(message) } }
    func attempt(_ id: String, _ content: String) { self.state.withLock { $0.attempted[id] = content } }

    func acknowledge(_ id: String, _ content: String, _ phase: Phase) {
        self.state.withLock { state in
            state.acknowledged[id] = content
            state.acknowledgedList.append((id, content))
            // Counted only when sent after the database came back.
            if phase == .after { state.acknowledgedAfter += 1 }
        }
    }

    func reject(_ phase: Phase) {
        self.state.withLock { state in
            if phase == .down { state.rejectedDuring += 1 }
        }
    }

    func countRead(_ phase: Phase, stub: Bool) {
        self.state.withLock { state in
            if phase == .down { state.readsDuring += 1 }
            if stub { state.stubs += 1 }
        }
    }

    func randomAcknowledged(using generator: inout SplitMix64) -> (id: String, content: String)? {
        self.state.withLock { state in
            state.acknowledgedList.isEmpty ? nil : state.acknowledgedList.randomElement(using: &generator)
        }
    }
}
