import CarmaTesting
@testable import ClusterStore
import Dispatch
import FragmentCore
import Foundation
import Synchronization
import Testing

/// Namespaces across the nodes of one cluster (one database, several `ClusterStore`s in process):
/// the catalog seen by every node at once, quotas that two nodes cannot both pass, counters that
/// stay exact, deletions cut short, and the migration of a database from before namespaces.
@Suite("Namespaces across cluster nodes")
struct ClusterNamespaceTests {
    /// A node on `database`.
    static func node(_ database: TestDatabase, _ name: String, poolSize: Int = 4) throws -> ClusterStore {
        try ClusterStore(
            configuration: ClusterConfiguration(
                databaseURL: database.url, poolSize: poolSize, timeout: .seconds(10), nodeName: name, cacheBytes: 1 << 20, limits: Backend.limits),
            logger: Backend.logger)
    }

    /// Two nodes on a fresh database, closed and dropped after `body`.
    static func withTwoNodes(_ body: (ClusterStore, ClusterStore, TestDatabase) throws -> Void) throws {
        let database = try SharedPostgres.createDatabase()
        defer { database.drop() }
        let a = try Self.node(database, "node-a")
        defer { a.close() }
        let b = try Self.node(database, "node-b")
        defer { b.close() }
        try body(a, b, database)
    }

    static func wait<T: Sendable>(_ start: (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let box = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        start { value in
            box.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    static func put(_ store: ClusterStore, _ id: String, _ content: String) -> Result<PutOutcome, StoreError> {
        Self.wait { done in store.put(id, FragmentInput(content: content), precondition: .none, completion: done) }
    }

    static func eventually(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool) rethrows {
        let deadline = ContinuousClock.now + .seconds(30)
        while try !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("\(what): not within 30 s", sourceLocation: sourceLocation)
                return
            }
            usleep(10_000)
        }
    }

    @Test("a namespace created, a token revoked, a namespace deleted through one node: the other node sees it at once, and its index drops the namespace")
    func catalogAcrossNodes() throws {
        try Self.withTwoNodes { a, b, _ in
            #expect(b.namespaces.entry("alice") == nil)
            _ = try a.namespaces.create("alice", quota: nil)
            #expect(b.namespaces.entry("alice") != nil, "created through a, known to b")
            #expect(try Self.put(b, "alice/note", "written through b").get().created)
            let token = NamespaceToken(id: "tok1", namespace: "alice", scope: .read, hash: Array(repeating: 1, count: 32), createdAt: .now)
            try a.namespaces.addToken(token)
            #expect(b.namespaces.token("tok1") == token)
            #expect(try b.namespaces.revokeToken("tok1", of: "bob") == false, "a token is revoked in its own namespace only")
            #expect(try b.namespaces.revokeToken("tok1", of: "alice"))
            #expect(a.namespaces.token("tok1") == nil, "revoked through b, gone for a at once")
            let another = NamespaceToken(id: "tok2", namespace: "alice", scope: .write, hash: Array(repeating: 2, count: 32), createdAt: .now)
            try a.namespaces.addToken(another)
            #expect(throws: StoreError.self) { try a.namespaces.addToken(NamespaceToken(id: "tok3", namespace: "nobody", scope: .read, hash: [], createdAt: .now)) }

            _ = try a.namespaces.create("alice", quota: NamespaceQuota(fragments: 5))
            #expect(b.namespaces.entry("alice")?.quota == NamespaceQuota(fragments: 5))
            for index in 0..<3 { _ = try Self.put(a, "alice/f\(index)", "alice's tide pools \(index)").get() }
            Self.eventually("b's index holds alice's fragments") { b.text.namespace("alice").size.fragments == 4 }

            let deleted = Self.wait { done in a.deleteNamespace("alice", completion: done) }
            #expect(try deleted.get() == 4)
            #expect(b.namespaces.entry("alice") == nil, "deleted through a, gone for b at once")
            #expect(b.namespaces.token("tok2") == nil)
            #expect(Self.put(b, "alice/late", "too late").failure?.code == .namespaceNotFound)
            Self.eventually("b's index drops alice") { b.text.all.allSatisfy { $0.namespace != "alice" } }
            #expect(b.sketch(of: "alice/f0") == nil)
            #expect(b.usage(of: "alice") == NamespaceUsage())
        }
    }

    @Test("two nodes writing into a namespace at its quota at once: exactly the quota passes, of fragments and of bytes")
    func quotaRace() throws {
        try Self.withTwoNodes { a, b, _ in
            _ = try a.namespaces.create("alice", quota: NamespaceQuota(fragments: 15))
            _ = try a.namespaces.create("bob", quota: NamespaceQuota(bytes: 100))
            let passed = Atomic<Int>(0)
            let refused = Atomic<Int>(0)
            let bytesPassed = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: 40) { index in
                let node = index % 2 == 0 ? a : b
                switch Self.put(node, "alice/f\(index)", "fragment \(index)") {
                case .success: passed.add(1, ordering: .relaxed)
                case .failure(let error) where error.code == .quotaExceeded: refused.add(1, ordering: .relaxed)
                case .failure(let error): Issue.record("\(error)")
                }
                if case .success = Self.put(node, "bob/f\(index)", "0123456789") { bytesPassed.add(1, ordering: .relaxed) }
            }
            #expect(passed.load(ordering: .relaxed) == 15)
            #expect(refused.load(ordering: .relaxed) == 25)
            #expect(a.usage(of: "alice") == NamespaceUsage(fragments: 15, bytes: b.usage(of: "alice").bytes))
            #expect(try a.ids(namespace: "alice", after: nil, limit: 100).count == 15)
            #expect(bytesPassed.load(ordering: .relaxed) == 10)
            #expect(b.usage(of: "bob") == NamespaceUsage(fragments: 10, bytes: 100))

            // A batch through each node at once: the quota holds across them too.
            _ = try a.namespaces.create("carol", quota: NamespaceQuota(fragments: 10))
            let batches = (0..<2).map { node in (0..<8).map { BatchPut(id: "carol/n\(node)-\($0)", input: FragmentInput(content: "item \($0)")) } }
            let results = Mutex<[Result<PutOutcome, StoreError>]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { node in
                let answer = Self.wait { done in (node == 0 ? a : b).put(batch: batches[node], completion: done) }
                results.withLock { $0 += answer }
            }
            let all = results.withLock { $0 }
            #expect(all.filter { $0.success != nil }.count == 10)
            #expect(all.filter { $0.failure?.code == .quotaExceeded }.count == 6)
            #expect(a.usage(of: "carol").fragments == 10)
        }
    }

    @Test("the usage counters equal a count of the rows after writes, rewrites, deletes, imports, expiry and a namespace deletion on two nodes")
    func countersExact() throws {
        try Self.withTwoNodes { a, b, database in
            _ = try a.namespaces.create("alice", quota: nil)
            _ = try a.namespaces.create("bob", quota: nil)
            DispatchQueue.concurrentPerform(iterations: 60) { index in
                let node = index % 2 == 0 ? a : b
                let namespace = ["alice", "bob", "default"][index % 3]
                let id = FragmentKey.make(namespace, "f\(index % 20)")
                _ = Self.put(node, id, String(repeating: "w", count: index + 1))
                if index % 7 == 0 { _ = Self.wait { done in node.delete(id, precondition: .none, completion: done) } }
            }
            let t = Timestamp(milliseconds: 1_700_000_000_000)
            let expiring = FragmentInput(content: "expires soon", expiresAt: Timestamp.now.adding(milliseconds: 300))
            _ = Self.wait { done in a.put("alice/expiring", expiring, precondition: .none, completion: done) }
            _ = try Self.wait { done in
                b.importFragments([ImportedFragment(id: "bob/imported", version: 1_000_000, createdAt: t, updatedAt: t, payload: .exact(FragmentInput(content: "imported")))], completion: done)
            }.get()
            _ = Self.wait { done in a.put(batch: (0..<5).map { BatchPut(id: "alice/b\($0)", input: FragmentInput(content: "batch \($0)")) }, completion: done) }
            usleep(400_000)
            #expect(a.compact(threshold: 0.5, maxSegments: 4).expired == 1)

            func counted() throws -> [String: NamespaceUsage] {
                let text = try database.psql("SELECT namespace || ' ' || count(*) || ' ' || sum(size) FROM carma_fragments GROUP BY namespace")
                var usage: [String: NamespaceUsage] = [:]
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: " ")
                    guard parts.count == 3, let fragments = Int(parts[1]), let bytes = Int64(parts[2]) else { continue }
                    usage[String(parts[0])] = NamespaceUsage(fragments: fragments, bytes: bytes)
                }
                return usage
            }
            let rows = try counted()
            #expect(rows.count == 3, "\(rows)")
            #expect(a.usage() == rows)
            #expect(b.usage() == rows)
            _ = try Self.wait { done in b.deleteNamespace("bob", completion: done) }.get()
            #expect(a.usage()["bob"] == nil)
            #expect(a.usage() == (try counted()))
            #expect(try database.psql("SELECT count(*) FROM carma_namespace_usage WHERE namespace = 'bob'") == "0", "bob's counter rows are folded away")
        }
    }

    @Test("a namespace deletion cut short is finished by the next start; until then the name cannot be created again")
    func unfinishedDeletion() throws {
        let database = try SharedPostgres.createDatabase()
        defer { database.drop() }
        var node = try Self.node(database, "node-a")
        defer { node.close() }
        _ = try node.namespaces.create("alice", quota: nil)
        for index in 0..<5 { _ = try Self.put(node, "alice/f\(index)", "fragment \(index)").get() }
        // What a node stopped right after the catalog's transaction leaves behind.
        try database.psql(
            """
            DELETE FROM carma_namespaces WHERE name = 'alice';
            INSERT INTO carma_namespace_floors (name, floor, removed_at) SELECT 'alice', last_value, 0 FROM carma_versions
            """)
        #expect(node.namespaces.entry("alice") == nil)
        #expect(Self.put(node, "alice/f9", "no namespace").failure?.code == .namespaceNotFound)
        let again = storeError { _ = try node.namespaces.create("alice", quota: nil) }
        #expect(again?.code == .unavailable)
        node.close()
        node = try Self.node(database, "node-a")
        try Self.eventually("the deletion is finished") { try node.ids(namespace: "alice", after: nil, limit: 10).isEmpty }
        #expect(node.usage(of: "alice") == NamespaceUsage())
        #expect(try node.namespaces.create("alice", quota: nil).created)
    }

    @Test("a database from before namespaces is migrated: the namespace column, the catalog with every namespace found, the counters")
    func migration() throws {
        let database = try SharedPostgres.createDatabase()
        defer { database.drop() }
        var sql = "CREATE TABLE carma_schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());\n"
        for migration in ClusterSchema.migrations where migration.version <= 2 {
            sql += migration.sql(nil) + ";\nINSERT INTO carma_schema_migrations (version, description) VALUES (\(migration.version), 'old');\n"
        }
        for (id, size) in [("a", 3), ("b", 4), ("team/x", 10), ("team/y", 20)] {
            sql += """
                INSERT INTO carma_fragments (id, version, status, checksum, record_length, size, links, tags, created_at, updated_at)
                VALUES ('\(id)', 1, 'ok', 0, 0, \(size), '{}', '{}', 0, 0);

                """
        }
        try database.psql(sql)
        let node = try Self.node(database, "node-a")
        defer { node.close() }
        #expect(node.usage() == ["default": NamespaceUsage(fragments: 2, bytes: 7), "team": NamespaceUsage(fragments: 2, bytes: 30)])
        #expect(try node.namespaces.entries(after: nil, limit: 10).map(\.name) == ["default", "team"])
        #expect(try node.ids(namespace: "team", after: nil, limit: 10) == ["team/x", "team/y"])
        #expect(try node.ids(namespace: Namespace.default, after: nil, limit: 10) == ["a", "b"])
    }
}
