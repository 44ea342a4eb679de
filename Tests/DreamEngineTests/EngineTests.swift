import FragmentCore
import CarmaJSON
import CarmaFaults
import CarmaText
import CarmaTesting
import Dispatch
import Foundation
import Logging
import Synchronization
import Testing

@testable import DreamEngine
@testable import FragmentStore

/// A foreground that is always idle (or busy, when told).
final class QuietForeground: ForegroundActivity {
    let busy = Atomic<Int>(0)
    var requestsInFlight: Int { self.busy.load(ordering: .relaxed) }
    var secondsIdle: Double { self.requestsInFlight > 0 ? 0 : 1000 }
}

/// A reconstructor that answers what it is told to.
struct FixedReconstructor: Reconstructor {
    let confidence: Double
    var method: String { "fixed-test" }

    func reconstruct(_ target: RepairTarget, from store: any ContextSource) -> RebuiltFragment? {
        RebuiltFragment(content: "rebuilt \(target.id)", confidence: self.confidence, sources: target.row.links, method: self.method)
    }
}

/// A store and an engine on a temporary directory.
final class EngineFixture {
    /// Cycles only when a test asks: no schedule, no idle starts; fast retries; no throttling.
    /// Cycles by hand only; a confidence floor of 0.35 (the default is 0) so that the floor's
    /// behaviour can be tested.
    static let manualOnly = DreamConfiguration(
        baseInterval: 1e6, maxInterval: 1e6, idleDelay: 1e9, dutyCycle: 1, foregroundBackoff: 0, retryBase: 0.2, confidenceFloor: 0.35)

    /// A text longer than the sketch's verbatim budget, so that only context can rebuild it.
    static func long(_ text: String) -> String {
        String(repeating: text + " ", count: Sketch.verbatimBudget / max(1, text.utf8.count) + 1)
    }

    let directory = TemporaryDirectory("engine")
    var store: FragmentStore
    var engine: DreamEngine
    let configuration: DreamConfiguration
    let reconstructor: (any Reconstructor)?

    init(cacheBytes: Int = 0, configuration: DreamConfiguration = EngineFixture.manualOnly, reconstructor: (any Reconstructor)? = nil) throws {
        self.configuration = configuration
        self.reconstructor = reconstructor
        self.store = try FragmentStore(configuration: StoreConfiguration(dataDirectory: self.directory.path, cacheBytes: cacheBytes), logger: Logger(label: "test"))
        self.engine = DreamEngine(store: self.store, configuration: configuration, reconstructor: reconstructor, foreground: QuietForeground(), logger: Logger(label: "test"))
        self.engine.start()
    }

    deinit {
        self.engine.stop()
        self.store.close()
        self.directory.remove()
    }

    func reopen(cacheBytes: Int = 0) throws {
        self.engine.stop()
        self.store.close()
        self.store = try FragmentStore(configuration: StoreConfiguration(dataDirectory: self.directory.path, cacheBytes: cacheBytes), logger: Logger(label: "test"))
        self.engine = DreamEngine(store: self.store, configuration: self.configuration, reconstructor: self.reconstructor, foreground: QuietForeground(), logger: Logger(label: "test"))
        self.engine.start()
    }

    func put(_ id: String, _ content: String, links: [String] = []) throws {
        let store = self.store
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<StoreError?>(nil)
        store.put(id, FragmentInput(content: content, links: links)) { result in
            if case .failure(let error) = result { failure.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Zeroes every primary record of `id` in place, as a bad sector would.
    func lose(_ id: String) throws {
        try DiskDamage(dataDirectory: self.directory.path).zero([id], in: .primary)
    }

    /// Ruins every redundancy copy of `id`; returns what is needed to put them back.
    @discardableResult
    func destroyCopies(_ id: String) throws -> DiskDamage.Saved {
        self.store.flush()
        return try DiskDamage(dataDirectory: self.directory.path).destroyRedundancy(of: [id])
    }

    /// Runs one cycle to the end and returns its report.
    func dream(budget: CycleBudget? = nil) throws -> JSONValue {
        let (cycle, _) = self.engine.requestCycle(budget: budget)
        let id = Int64(cycle["id"]!.intValue!)
        for _ in 0..<2000 {
            if let report = self.engine.report(id), report["state"] != "running" { return report }
            usleep(5000)
        }
        throw StoreError.invalid(field: "cycle", "cycle \(id) did not finish")
    }
}

@Suite("Dream engine")
struct EngineTests {
    @Test("the repair queue orders by priority then age, deduplicates, and survives a restart")
    func queue() throws {
        let fixture = try EngineFixture()
        fixture.engine.stop()
        for (id, priority) in [("c", RepairPriority.background), ("a", .scrub), ("b", .servedBlank), ("a", .servedBlank), ("d", .scrub)] {
            fixture.store.enqueueRepair(id, priority: priority, reason: "test")
            usleep(2000)
        }
        fixture.store.flush()
        #expect(try fixture.store.readyRepairs(limit: 10).map(\.id) == ["a", "b", "d", "c"])
        #expect(try fixture.store.readyRepairs(limit: 10).first?.priority == .servedBlank)
        try fixture.reopen()
        fixture.engine.stop()
        #expect(try fixture.store.readyRepairs(limit: 10).map(\.id) == ["a", "b", "d", "c"])
        #expect(fixture.store.repairQueueDepth().total == 4)
    }

    @Test("tiers are tried cheapest first: cache, then redundancy; every result matches the checksum")
    func tierChoice() throws {
        let fixture = try EngineFixture(cacheBytes: 1 << 20)
        try fixture.put("cached", "kept in the cache")
        try fixture.put("copied", "only in the redundancy copy")
        try fixture.lose("cached")
        try fixture.lose("copied")
        fixture.store.state.withLock { $0.uncache("copied") }
        // Reads: "copied" misses the cache and turns blank; "cached" is served from the cache.
        guard case .blank = fixture.store.read("copied"), case .fragment = fixture.store.read("cached") else {
            Issue.record("unexpected read results")
            return
        }
        let report = try fixture.dream()
        #expect(report["detected"]?["checksum_mismatch"] == 1, "the scrub finds the damage nobody read")
        #expect(report["repairs"]?["redundancy"]?["recovered"] == 1)
        #expect(report["repairs"]?["cache"]?["recovered"] == 1)
        for id in ["cached", "copied"] {
            #expect(fixture.store.row(id)?.status == .ok)
            #expect(fixture.store.exactRecordFromPrimary(try #require(fixture.store.repairTarget(id))) != nil)
            guard case .fragment(let fragment) = fixture.store.read(id) else {
                Issue.record("\(id) not readable")
                continue
            }
            #expect(try JSONParser.parse(fragment.body)["content"]?.stringValue?.isEmpty == false)
        }
        let kinds = try #require(try fixture.store.history("copied")).map(\.kind)
        #expect(kinds == ["created", "lost", "queued", "recovered"])
    }

    @Test("a damaged redundancy copy is rewritten from the good primary record by the scrub")
    func redundancyRewritten() throws {
        let fixture = try EngineFixture()
        try fixture.put("a", "primary is fine")
        try fixture.destroyCopies("a")
        let report = try fixture.dream()
        #expect(report["detected"]?["redundancy_corrupt"] == 1)
        let target = try #require(fixture.store.repairTarget("a"))
        #expect(fixture.store.exactRecordFromRedundancy(target) != nil, "the copy was rewritten")
        #expect(try #require(try fixture.store.history("a")).map(\.kind).last == "redundancy_repaired")
    }

    @Test("with both copies gone and no reconstruction, it stays blank with a reason and is retried later")
    func bothCopiesGone() throws {
        let fixture = try EngineFixture()
        try fixture.put("lost", EngineFixture.long("gone for good"))
        try fixture.lose("lost")
        try fixture.destroyCopies("lost")
        _ = fixture.store.read("lost")
        let first = try fixture.dream()
        #expect(first["outcomes"]?["failed"] == 1)
        #expect(fixture.store.row("lost")?.status == .blank)
        let ticket = try #require(fixture.store.readyRepairs(limit: 10, now: Timestamp.now.adding(milliseconds: 10_000)).first)
        #expect(ticket.attempts == 1)
        #expect(ticket.lastError?.contains("no exact source") == true)
        #expect(ticket.notBefore > .now)
        // Not due yet: a cycle right away does not touch it.
        let second = try fixture.dream()
        #expect(second["outcomes"] == [:])
        usleep(300_000)
        let third = try fixture.dream()
        #expect(third["outcomes"]?["failed"] == 1)
        #expect(try fixture.store.readyRepairs(limit: 10, now: Timestamp.now.adding(milliseconds: 10_000)).first?.attempts == 2)
        let kinds = try #require(try fixture.store.history("lost")).map(\.kind)
        #expect(kinds.filter { $0 == "repair_failed" }.count == 2)
    }

    @Test("a reconstruction is flagged; below the floor it stays blank; an exact source found later wins")
    func reconstructionTier() throws {
        let fixture = try EngineFixture(reconstructor: FixedReconstructor(confidence: 0.8))
        try fixture.put("n", "neighbour")
        try fixture.put("x", EngineFixture.long("the original text"), links: ["n"])
        try fixture.lose("x")
        let copy = try fixture.destroyCopies("x")
        _ = fixture.store.read("x")
        let report = try fixture.dream()
        #expect(report["outcomes"]?["reconstructed"] == 1)
        guard case .fragment(let rebuilt) = fixture.store.read("x") else {
            Issue.record("reconstruction not served")
            return
        }
        let json = try JSONParser.parse(rebuilt.body)
        #expect(json["status"] == "reconstructed")
        #expect(json["content"] == "rebuilt x")
        #expect(json["sources"] == ["n"])
        #expect(json["confidence"] == 0.8)
        // The redundancy copy comes back (a volume remounted): the next due cycle restores it exactly.
        try DiskDamage(dataDirectory: fixture.directory.path).restore(copy)
        usleep(300_000)
        let healed = try fixture.dream()
        #expect(healed["repairs"]?["redundancy"]?["recovered"] == 1)
        guard case .fragment(let exact) = fixture.store.read("x") else {
            Issue.record("not readable after healing")
            return
        }
        #expect(try JSONParser.parse(exact.body)["content"]?.stringValue == EngineFixture.long("the original text"))
        #expect(fixture.store.row("x")?.status == .ok)

        let low = try EngineFixture(reconstructor: FixedReconstructor(confidence: 0.1))
        try low.put("y", EngineFixture.long("text"))
        try low.lose("y")
        try low.destroyCopies("y")
        _ = low.store.read("y")
        let lowReport = try low.dream()
        #expect(lowReport["outcomes"]?["failed"] == 1)
        #expect(low.store.row("y")?.status == .blank)
        #expect(try low.store.readyRepairs(limit: 1, now: Timestamp.now.adding(milliseconds: 10_000)).first?.lastError?.contains("below the floor") == true)
    }

    @Test("a cycle stops at its repair budget and the rest waits in the queue")
    func budget() throws {
        let fixture = try EngineFixture()
        for index in 0..<10 {
            try fixture.put("f\(index)", "content \(index)")
            try fixture.lose("f\(index)")
            _ = fixture.store.read("f\(index)")
        }
        let report = try fixture.dream(budget: CycleBudget(maxRepairs: 4, maxSeconds: 60, scrubFragments: 0))
        #expect(report["outcomes"]?["recovered"] == 4)
        #expect(fixture.store.repairQueueDepth().total == 6)
        #expect(try fixture.dream()["outcomes"]?["recovered"] == 6)
        #expect(fixture.store.repairQueueDepth().total == 0)
    }

    @Test("a deleted fragment's ticket is dropped, never rebuilt")
    func deletedIsNotRebuilt() throws {
        let fixture = try EngineFixture()
        try fixture.put("d", "to delete")
        try fixture.lose("d")
        _ = fixture.store.read("d")
        let done = DispatchSemaphore(value: 0)
        fixture.store.delete("d") { _ in done.signal() }
        done.wait()
        fixture.store.enqueueRepair("d", priority: .servedBlank, reason: "stale")
        fixture.store.flush()
        let report = try fixture.dream()
        #expect(report["outcomes"]?["skipped"] == 1)
        guard case .notFound = fixture.store.read("d") else {
            Issue.record("deleted fragment came back")
            return
        }
    }
}

@Suite("Dream engine on an in-memory store")
struct EngineMemoryStoreTests {
    func dream(_ store: MemoryRepairStore, reconstructor: (any Reconstructor)?) throws -> JSONValue {
        let engine = DreamEngine(
            store: store, configuration: EngineFixture.manualOnly, reconstructor: reconstructor, foreground: QuietForeground(),
            logger: Logger(label: "test"))
        engine.start()
        defer { engine.stop() }
        let (cycle, _) = engine.requestCycle(budget: nil)
        let id = Int64(cycle["id"]!.intValue!)
        for _ in 0..<2000 {
            if let report = engine.report(id), report["state"] != "running" { return report }
            usleep(2000)
        }
        throw StoreError.invalid(field: "cycle", "cycle \(id) did not finish")
    }

    @Test("each ticket takes the cheapest tier that has the bytes; with none, a reconstruction above the floor; below it, a retry later")
    func tierOrder() throws {
        let store = MemoryRepairStore()
        store.addBlank("everywhere", exactIn: [.primary, .cache, .redundancy])
        store.addBlank("cached", exactIn: [.cache, .redundancy])
        store.addBlank("copied", exactIn: [.redundancy])
        store.addBlank("lost", exactIn: [], links: ["everywhere"])
        let report = try self.dream(store, reconstructor: FixedReconstructor(confidence: 0.9))
        let restored = Dictionary(uniqueKeysWithValues: store.state.withLock { $0.restored }.map { ($0.id, $0.tier) })
        #expect(restored == ["everywhere": .primary, "cached": .cache, "copied": .redundancy])
        #expect(store.state.withLock { $0.rows["lost"]?.status } == .reconstructed)
        #expect(report["outcomes"]?["recovered"] == 3)
        #expect(report["outcomes"]?["reconstructed"] == 1)
        // A reconstruction stays queued, at background priority, for an exact source later.
        #expect(store.state.withLock { $0.queue["lost"]?.priority } == .background)

        let weak = MemoryRepairStore()
        weak.addBlank("lost", exactIn: [])
        let failed = try self.dream(weak, reconstructor: FixedReconstructor(confidence: 0.1))
        #expect(failed["outcomes"]?["failed"] == 1)
        let ticket = try #require(weak.state.withLock { $0.queue["lost"] })
        #expect(ticket.attempts == 1)
        #expect(ticket.notBefore > .now)
        #expect(weak.state.withLock { $0.rows["lost"]?.status } == .blank)
    }

    @Test("a ticket for a fragment deleted since it was queued is dropped, never rebuilt")
    func deletedTicket() throws {
        let store = MemoryRepairStore()
        store.addBlank("gone", exactIn: [.redundancy])
        store.state.withLock { _ = $0.rows.removeValue(forKey: "gone") }
        let report = try self.dream(store, reconstructor: FixedReconstructor(confidence: 1))
        #expect(report["outcomes"]?["skipped"] == 1)
        #expect(store.state.withLock { $0.queue.isEmpty && $0.restored.isEmpty })
    }
}
