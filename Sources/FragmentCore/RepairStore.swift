import CarmaJSON
import CarmaText

/// The narrow interface through which the dream engine repairs a store: the repair queue, verified
/// sources of exact bytes by tier, outcomes that are durable when they return, the scrub and
/// compaction, and cycle reports. `FragmentStore` is the embedded implementation; tests can use an
/// in-memory one, and a PostgreSQL backend fits beside it.
public protocol RepairStore: AnyObject, Sendable {
    // MARK: Queue
    /// Due tickets, most urgent first.
    func readyRepairs(limit: Int, now: Timestamp) throws(StoreError) -> [RepairTicket]
    /// Tickets queued in total, and those due now.
    func repairQueueDepth(now: Timestamp) -> (total: Int, ready: Int)
    /// Drops a ticket whose fragment needs nothing any more.
    func dropRepair(_ id: String)
    /// Keeps a ticket for a later attempt.
    func postponeRepair(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recordEvent: Bool) throws(StoreError)

    // MARK: Sources and outcomes
    /// What a repair of `id` must recover; nil when the id is unknown (deleted since it was queued).
    func repairTarget(_ id: String) -> RepairTarget?
    /// The exact record from one tier (`primary`, `cache`, `redundancy` or `sketch`), verified against the
    /// checksum the store keeps; nil if that tier has no intact copy.
    func exactRecord(_ target: RepairTarget, from tier: RepairTier) -> [UInt8]?
    /// Where a tier's bytes come from, for reports ("redundancy log in /mnt/b/segments").
    func sourceDescription(_ tier: RepairTier) -> String
    /// Puts exact records back; per item, whether it applied (false when the fragment changed).
    func restore(_ items: [Restoration]) throws(StoreError) -> [Bool]
    /// Stores an approximate rebuild of a blank fragment, flagged `reconstructed`; `attempt` is the
    /// repair attempt that made it (the ticket's attempts so far, plus one).
    func saveReconstruction(_ target: RepairTarget, _ rebuilt: RebuiltFragment, attempt: Int, cycle: Int64?, retryAt: Timestamp) throws(StoreError) -> Bool

    // MARK: Background work
    /// Verifies up to `limit` records where the walk left off.
    func scrub(limit: Int) -> ScrubSlice
    /// Reclaims space held by superseded records.
    func compact(threshold: Double, maxSegments: Int) -> CompactionSummary
    /// Waits until everything submitted so far is applied to the registry.
    func flush()

    // MARK: Counts and reports
    var fragmentCount: Int { get }
    var blankCount: Int { get }
    func saveCycleReport(id: Int64, trigger: String, state: String, startedAt: Timestamp, finishedAt: Timestamp?, report: JSONValue, wait: Bool)
    func cycleReport(_ id: Int64) -> JSONValue?
    func recentCycleReports(limit: Int) -> [JSONValue]
    func lastCycleID() -> Int64

    // MARK: Several engines on one store (cluster mode; one engine needs none of these)
    /// The id of a new cycle, given the one this engine would use next.
    func newCycleID(local: Int64) -> Int64
    /// Whether this engine's cycle should scrub now: a scheduled cycle scrubs only if no engine
    /// scrubbed in the current interval; a manual one always does.
    func claimScrub(scheduled: Bool) -> Bool
    /// Reports of cycles this engine left running when its process stopped.
    func unfinishedCycleReports() -> [JSONValue]
}

/// Where the repair of a blank fragment stands, so that its stub can say so truthfully.
public struct RepairProgress: Sendable, Equatable {
    /// Attempts made and failed so far.
    public var attempts: Int
    /// Why the last attempt failed.
    public var lastError: String?
    /// The next attempt is not made before this time (backoff); nil when it is due now.
    public var notBefore: Timestamp?

    public init(attempts: Int = 0, lastError: String? = nil, notBefore: Timestamp? = nil) {
        self.attempts = attempts
        self.lastError = lastError
        self.notBefore = notBefore
    }
}

/// What reconstruction reads of the surviving fragments: sketches, term weights, contents, links
/// and similarity.
/// What context and reconstruction read of a store. Ids are keys (`FragmentKey`); every search
/// stays inside the namespace it is given, so nothing of another namespace can be found or quoted.
public protocol ContextSource: AnyObject, Sendable {
    func sketch(of id: String) -> Sketch?
    /// BM25's inverse document frequency of a term hash in a namespace.
    func idf(_ hash: UInt32, in namespace: String) -> Double
    func content(_ id: String) -> (content: String, status: FragmentStatus)?
    func backlinks(_ id: String) -> [String]
    func rows(_ ids: [String]) -> [FragmentRow?]
    func similar(to vector: [Int8], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)]
    func related(to sketch: Sketch, k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)]
    /// The kept meaning (the model's embedding, unit length) of a fragment, also while it is lost;
    /// nil without a model or before it was embedded.
    func meaning(of id: String) -> [Float]?
    /// Fragments of a namespace whose meanings are closest to `vector`.
    func nearestByMeaning(to vector: [Float], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)]
    /// The model's embedding of a text (unit length); nil without a model.
    func embed(_ text: String) -> [Float]?
    /// The model's embeddings of texts, in order, in one call of the encoder (texts packed into
    /// shared matrix products); nil without a model.
    func embed(batch texts: [String]) -> [[Float]]?
}

extension ContextSource {
    public func meaning(of id: String) -> [Float]? { nil }
    public func nearestByMeaning(to vector: [Float], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] { [] }
    public func embed(_ text: String) -> [Float]? { nil }
    /// One text at a time, for sources without a batch path (test doubles).
    public func embed(batch texts: [String]) -> [[Float]]? {
        var vectors: [[Float]] = []
        for text in texts {
            guard let vector = self.embed(text) else { return nil }
            vectors.append(vector)
        }
        return vectors
    }
}

extension RepairStore {
    public func newCycleID(local: Int64) -> Int64 { local }
    public func claimScrub(scheduled: Bool) -> Bool { true }
    public func unfinishedCycleReports() -> [JSONValue] {
        self.recentCycleReports(limit: 20).filter { $0["state"] == "running" }
    }

    public func readyRepairs(limit: Int) throws(StoreError) -> [RepairTicket] {
        try self.readyRepairs(limit: limit, now: .now)
    }

    public func repairQueueDepth() -> (total: Int, ready: Int) {
        self.repairQueueDepth(now: .now)
    }

    /// Compacts segments under half live, four at most per log.
    public func compact() -> CompactionSummary {
        self.compact(threshold: 0.5, maxSegments: 4)
    }
}

extension ContextSource {
    /// The closest sketches in the namespace `default`.
    public func similar(to vector: [Int8], k: Int) -> [(id: String, score: Double)] {
        self.similar(to: vector, k: k, in: Namespace.default, excluding: [])
    }
}
