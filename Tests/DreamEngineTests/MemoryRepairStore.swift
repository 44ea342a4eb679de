import FragmentCore
import CarmaJSON
import CarmaText
import Synchronization

@testable import DreamEngine
@testable import FragmentStore

/// The engine's view of a store, in memory: what each tier holds is set by the test, and every
/// outcome is recorded, so engine logic is tested without files, threads or SQLite.
final class MemoryRepairStore: DreamStore {
    struct State {
        var rows: [String: FragmentRow] = [:]
        /// Exact bytes each tier can give, by id.
        var tiers: [RepairTier: [String: [UInt8]]] = [:]
        var queue: [String: RepairTicket] = [:]
        var reports: [Int64: JSONValue] = [:]
        var restored: [(id: String, tier: RepairTier)] = []
        var reconstructed: [String: RebuiltFragment] = [:]
    }

    let state = Mutex(State())

    /// A fragment the store knows, blank and queued, with its exact bytes in the given tiers.
    func addBlank(_ id: String, exactIn tiers: [RepairTier], links: [String] = []) {
        let record = Array("{\"id\":\"\(id)\"}".utf8)
        let row = FragmentRow(
            id: id, version: 1, status: .blank, checksum: CRC32C.checksum(record), recordLength: record.count, size: 0, links: links,
            tags: [], createdAt: .now, updatedAt: .now, blankReason: .missing)
        self.state.withLock { state in
            state.rows[id] = row
            for tier in tiers { state.tiers[tier, default: [:]][id] = record }
            state.queue[id] = RepairTicket(id: id, priority: .servedBlank, enqueuedAt: .now, attempts: 0, notBefore: .now, reason: "missing")
        }
    }

    func readyRepairs(limit: Int, now: Timestamp) throws(StoreError) -> [RepairTicket] {
        self.state.withLock { state in
            Array(state.queue.values.filter { $0.notBefore <= now }.sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }.prefix(limit))
        }
    }

    func repairQueueDepth(now: Timestamp) -> (total: Int, ready: Int) {
        self.state.withLock { state in (state.queue.count, state.queue.values.filter { $0.notBefore <= now }.count) }
    }

    func dropRepair(_ id: String) {
        self.state.withLock { _ = $0.queue.removeValue(forKey: id) }
    }

    func postponeRepair(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recordEvent: Bool) throws(StoreError) {
        self.state.withLock { state in
            state.queue[target.id]?.attempts += 1
            state.queue[target.id]?.notBefore = retryAt
            state.queue[target.id]?.lastError = reason
        }
    }

    func repairTarget(_ id: String) -> RepairTarget? {
        self.state.withLock { $0.rows[id].map(RepairTarget.init(row:)) }
    }

    func exactRecord(_ target: RepairTarget, from tier: RepairTier) -> [UInt8]? {
        self.state.withLock { $0.tiers[tier]?[target.id] }
    }

    func sourceDescription(_ tier: RepairTier) -> String { "memory \(tier.rawValue)" }

    func restore(_ items: [Restoration]) throws(StoreError) -> [Bool] {
        self.state.withLock { state in
            items.map { item in
                guard state.rows[item.target.id]?.version == item.target.version else { return false }
                state.rows[item.target.id]?.status = .ok
                state.queue[item.target.id] = nil
                state.restored.append((item.target.id, item.tier))
                return true
            }
        }
    }

    func saveReconstruction(_ target: RepairTarget, _ rebuilt: RebuiltFragment, attempt: Int, cycle: Int64?, retryAt: Timestamp) throws(StoreError) -> Bool {
        self.state.withLock { state in
            state.rows[target.id]?.status = .reconstructed
            state.reconstructed[target.id] = rebuilt
            state.queue[target.id]?.priority = .background
            state.queue[target.id]?.notBefore = retryAt
            return true
        }
    }

    func scrub(limit: Int) -> ScrubSlice { ScrubSlice(scrubbed: 0, findings: [], passCompleted: true) }
    func compact(threshold: Double, maxSegments: Int) -> CompactionSummary { CompactionSummary() }
    func flush() {}

    var fragmentCount: Int { self.state.withLock { $0.rows.count } }
    var blankCount: Int { self.state.withLock { $0.rows.values.filter { $0.status == .blank }.count } }

    func saveCycleReport(id: Int64, trigger: String, state: String, startedAt: Timestamp, finishedAt: Timestamp?, report: JSONValue, wait: Bool) {
        self.state.withLock { $0.reports[id] = report }
    }

    func cycleReport(_ id: Int64) -> JSONValue? { self.state.withLock { $0.reports[id] } }
    func recentCycleReports(limit: Int) -> [JSONValue] { [] }
    func lastCycleID() -> Int64 { 0 }

    // Reconstruction reads nothing here: the tests use a reconstructor that needs no context.
    func sketch(of id: String) -> Sketch? { nil }
    func idf(_ hash: UInt32, in namespace: String) -> Double { 1 }
    func content(_ id: String) -> (content: String, status: FragmentStatus)? { nil }
    func backlinks(_ id: String) -> [String] { [] }
    func rows(_ ids: [String]) -> [FragmentRow?] { self.state.withLock { state in ids.map { state.rows[$0] } } }
    func similar(to vector: [Int8], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] { [] }
    func related(to sketch: Sketch, k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] { [] }
}
