import CarmaFaults
import CarmaJSON
import CarmaTesting
import Dispatch
import DreamEngine
import Foundation
import FragmentCore
import FragmentStore
import Synchronization
import Testing

/// A store on one backend for one test, with synchronous wrappers around the callback API, the
/// backend's own way of damaging stored records behind its back, and dream cycles run in process.
/// Closed, and its files or database removed, when the test lets go of it.
final class BackendStore {
    let backend: Backend
    private(set) var store: any FragmentBackend
    private let directory: TemporaryDirectory
    private let database: TestDatabase?
    private let retention: Retention
    private var engine: DreamEngine?
    /// Redundancy records zeroed by `damage(_:.loseBoth)` on the embedded store, to put back.
    private var zeroedRedundancy: [String: DiskDamage.Saved] = [:]

    /// Cycles only when a test asks (no schedule, no idle starts), no pacing, retries 0.5 s after a
    /// first failure; otherwise carmad's defaults (the meaning reconstructor, no confidence floor).
    static let dreamConfiguration = DreamConfiguration(
        baseInterval: 1e6, maxInterval: 1e6, idleDelay: 1e9, dutyCycle: 1, foregroundBackoff: 0, retryBase: 0.5)

    init(_ backend: Backend, retention: Retention = Retention()) throws {
        self.backend = backend
        self.retention = retention
        self.directory = TemporaryDirectory("backend-\(backend)")
        do {
            self.database = backend == .cluster ? try SharedPostgres.createDatabase() : nil
            self.store = try backend.open(directory: self.directory, database: self.database, retention: retention)
        } catch {
            self.directory.remove()
            throw error
        }
    }

    deinit {
        self.engine?.stop()
        self.store.close()
        self.database?.drop()
        self.directory.remove()
    }

    /// Closes the store and opens it again on the same files or database, as a restart does.
    func reopen() throws {
        self.engine?.stop()
        self.engine = nil
        self.store.close()
        self.store = try self.backend.open(directory: self.directory, database: self.database, retention: self.retention)
    }

    // MARK: Writes

    @discardableResult
    func put(_ id: String, _ input: FragmentInput, _ precondition: WritePrecondition = .none) throws(StoreError) -> PutOutcome {
        try Self.wait { done in self.store.put(id, input, precondition: precondition, completion: done) }
    }

    @discardableResult
    func put(
        _ id: String, _ content: String, links: [String] = [], tags: [String] = [], metadata: JSONObject = [:], _ precondition: WritePrecondition = .none
    ) throws(StoreError) -> PutOutcome {
        try self.put(id, FragmentInput(content: content, links: links, tags: tags, metadata: metadata), precondition)
    }

    func delete(_ id: String, _ precondition: WritePrecondition = .none) throws(StoreError) {
        try Self.wait { done in self.store.delete(id, precondition: precondition, completion: done) }
    }

    func importFragments(_ fragments: [ImportedFragment]) throws(StoreError) -> [ImportOutcome] {
        try Self.wait { done in self.store.importFragments(fragments, completion: done) }
    }

    /// Calls a callback API and waits for its answer.
    private static func wait<T: Sendable>(_ start: (@escaping @Sendable (Result<T, StoreError>) -> Void) -> Void) throws(StoreError) -> T {
        let box = Mutex<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        start { result in
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try box.withLock { $0! }.get()
    }

    // MARK: Reads

    /// Returns once every write acknowledged so far is visible to listings and histories (the
    /// embedded registry applies writes after acknowledging them; cluster mode at once).
    func applied() {
        let done = DispatchSemaphore(value: 0)
        self.store.whenApplied { done.signal() }
        done.wait()
    }

    /// A served fragment and its body as JSON; nil (and an issue) when the read found no fragment.
    func served(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) -> (fragment: ServedFragment, json: JSONValue)? {
        let result = self.store.read(id)
        guard case .fragment(let fragment) = result else {
            Issue.record("\(id): \(result) instead of a fragment", sourceLocation: sourceLocation)
            return nil
        }
        guard let json = try? JSONParser.parse(fragment.body) else {
            Issue.record("\(id): the served body is not JSON", sourceLocation: sourceLocation)
            return nil
        }
        return (fragment, json)
    }

    /// The blank a read answers; nil (and an issue) when it answered anything else.
    func blank(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) -> BlankFragment? {
        let result = self.store.read(id)
        guard case .blank(let blank) = result else {
            Issue.record("\(id): \(result) instead of a blank", sourceLocation: sourceLocation)
            return nil
        }
        return blank
    }

    /// Whether a read finds nothing.
    func isGone(_ id: String) -> Bool {
        if case .notFound = self.store.read(id) { return true }
        return false
    }

    /// The history of a fragment once everything acknowledged is applied; nil for an unknown id.
    func history(_ id: String) throws -> [FragmentEvent]? {
        self.applied()
        return try self.store.history(id, limit: 500)
    }

    /// The kinds of a fragment's history lines, oldest first.
    func kinds(_ id: String) throws -> [String]? {
        try self.history(id)?.map(\.kind)
    }

    /// Every id a listing yields, page by page of `pageSize`, once everything acknowledged is applied.
    func listed(status: FragmentStatus? = nil, tag: String? = nil, pageSize: Int = 1000) throws -> [String] {
        self.applied()
        var ids: [String] = []
        var after: String?
        repeat {
            let page = try self.store.list(status: status, tag: tag, after: after, limit: pageSize)
            ids += page.rows.map(\.id)
            after = page.nextAfter
        } while after != nil
        return ids
    }

    /// The repair queue once everything acknowledged is applied (the embedded store records the
    /// blanks reads find in the background): tickets in total, and those due by `now`.
    func queue(dueBy now: Timestamp = .now) -> (total: Int, ready: Int) {
        self.applied()
        return self.store.repairQueueDepth(now: now)
    }

    /// The tickets due by `now` (an hour from now: every ticket, backoff or not), most urgent first.
    /// Cluster mode leases them to this node, which is the engine's node too.
    func tickets(dueBy now: Timestamp = Timestamp.now.adding(milliseconds: 3_600_000)) throws -> [RepairTicket] {
        self.applied()
        return try self.store.readyRepairs(limit: 100, now: now)
    }

    /// Polls `condition` until it holds or `timeout` passes (then records an issue and returns
    /// false): for what a backend makes visible in the background (cluster mode's text index follows
    /// the database's change feed). Never a measure of time.
    @discardableResult
    func eventually(
        _ what: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool
    ) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition() { return true }
            if ContinuousClock.now > deadline {
                Issue.record("\(what): not within \(timeout)", sourceLocation: sourceLocation)
                return false
            }
            usleep(10_000)
        }
    }

    /// Waits until the text index (queries, sketches, reconstruction) holds exactly `count` fragments.
    func indexed(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        self.eventually("the text index holds \(count) fragments", sourceLocation: sourceLocation) {
            self.store.textIndexReady && self.store.textIndexSize.fragments == count
        }
    }

    // MARK: Damage

    /// Damages the stored records of `ids` behind the store's back, as a failing disk or a lost
    /// table row would; the store finds it on its next read (there is no cache to hide it).
    func damage(_ ids: [String], _ kind: TestDamage) throws {
        switch self.backend {
        case .embedded:
            let disk = DiskDamage(dataDirectory: self.directory.path)
            switch kind {
            case .corrupt: try disk.flip(Set(ids), in: .primary)
            case .lose: try disk.zero(Set(ids), in: .primary)
            case .loseBoth:
                try disk.zero(Set(ids), in: .primary)
                let saved = try disk.zero(Set(ids), in: .redundancy)
                for id in ids { self.zeroedRedundancy[id] = saved.filter { $0.0.id == id } }
            }
        case .cluster:
            let list = Self.sqlList(ids)
            switch kind {
            case .corrupt:
                // The first byte of a record is '{': any other value breaks the checksum.
                try self.database!.psql("UPDATE carma_payloads SET record = overlay(record placing '\\x20'::bytea from 1 for 1) WHERE id IN (\(list))")
            case .lose:
                try self.database!.psql("DELETE FROM carma_payloads WHERE id IN (\(list))")
            case .loseBoth:
                try self.database!.psql(
                    """
                    CREATE TABLE IF NOT EXISTS test_lost_redundancy (LIKE carma_redundancy);
                    INSERT INTO test_lost_redundancy SELECT * FROM carma_redundancy WHERE id IN (\(list));
                    DELETE FROM carma_payloads WHERE id IN (\(list));
                    DELETE FROM carma_redundancy WHERE id IN (\(list))
                    """)
            }
        }
    }

    /// Flips a byte of the redundancy copies of `ids` only; the served records stay intact.
    func damageRedundancy(_ ids: [String]) throws {
        switch self.backend {
        case .embedded:
            try DiskDamage(dataDirectory: self.directory.path).flip(Set(ids), in: .redundancy)
        case .cluster:
            try self.database!.psql(
                "UPDATE carma_redundancy SET record = overlay(record placing '\\x20'::bytea from 1 for 1) WHERE id IN (\(Self.sqlList(ids)))")
        }
    }

    /// Puts back the redundancy copies `damage(_:.loseBoth)` destroyed (a volume that comes back).
    func restoreRedundancy(_ ids: [String]) throws {
        switch self.backend {
        case .embedded:
            let disk = DiskDamage(dataDirectory: self.directory.path)
            for id in ids { try disk.restore(self.zeroedRedundancy[id] ?? []) }
        case .cluster:
            try self.database!.psql("INSERT INTO carma_redundancy SELECT * FROM test_lost_redundancy WHERE id IN (\(Self.sqlList(ids)))")
        }
    }

    private static func sqlList(_ ids: [String]) -> String {
        ids.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: ",")
    }

    // MARK: Dream cycles

    /// Runs one dream cycle to its end, in process, and returns its report.
    @discardableResult
    func dream() throws -> JSONValue {
        let engine = self.engine ?? self.startEngine()
        let (cycle, created) = engine.requestCycle(budget: nil)
        #expect(created, "a cycle was already running")
        let id = try #require(cycle["id"]?.intValue)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let report = engine.report(Int64(id)), report["state"] != "running" { return report }
            usleep(5000)
        }
        throw StoreError.invalid(field: "cycle", "cycle \(id) did not finish within a minute")
    }

    /// When the engine would next try to repair a blank whose repair stands at `progress`.
    func secondsUntilNextAttempt(_ progress: RepairProgress) -> Int {
        (self.engine ?? self.startEngine()).secondsUntilNextAttempt(progress)
    }

    private func startEngine() -> DreamEngine {
        let engine = DreamEngine(
            store: self.store, configuration: Self.dreamConfiguration, reconstructor: Self.dreamConfiguration.reconstruction.reconstructor,
            foreground: Idle(), logger: Backend.logger)
        engine.start()
        self.engine = engine
        return engine
    }

    /// A service nobody is using.
    private struct Idle: ForegroundActivity {
        var requestsInFlight: Int { 0 }
        var secondsIdle: Double { 1000 }
    }
}

/// The error a throwing call gave, or nil (and an issue) when it did not throw a `StoreError`.
func storeError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> StoreError? {
    do {
        try body()
        Issue.record("no error", sourceLocation: sourceLocation)
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("not a StoreError: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
