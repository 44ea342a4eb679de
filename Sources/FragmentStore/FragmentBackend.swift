import CarmaJSON
import CarmaEmbedding
import CarmaText

/// Everything the HTTP service asks of a store: writes acknowledged once durable, reads that turn
/// lost payloads into blanks, listings, histories, queries, export and import, and what the dream
/// engine repairs through. `FragmentStore` is the embedded backend (segment logs and SQLite on one
/// machine); `ClusterStore` keeps the same promises on PostgreSQL for several nodes.
public protocol FragmentBackend: RepairStore, ContextSource {
    // MARK: Writes (completion runs once the write is durable, or with why nothing changed)
    func put(_ id: String, _ input: FragmentInput, precondition: WritePrecondition, completion: @escaping @Sendable (Result<FragmentStore.PutOutcome, StoreError>) -> Void)
    func delete(_ id: String, precondition: WritePrecondition, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)
    func importFragments(_ fragments: [ImportedFragment], completion: @escaping @Sendable (Result<[ImportOutcome], StoreError>) -> Void)

    // MARK: Reads
    func read(_ id: String) -> FragmentStore.ReadResult
    func row(_ id: String) -> FragmentRow?
    func list(status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentStore.Page
    func history(_ id: String, limit: Int) throws(StoreError) -> [FragmentEvent]?
    func ids(after: String?, limit: Int) throws(StoreError) -> [String]
    /// Calls `body` once every write acknowledged so far is visible to listings and histories.
    func whenApplied(_ body: @escaping @Sendable () -> Void)
    func snapshot() throws(StoreError) -> StoreSnapshot

    // MARK: Retrieval
    func query(_ request: QueryRequest) throws(StoreError) -> QueryAnswer
    var textIndexReady: Bool { get }
    var textIndexSize: (fragments: Int, terms: Int, meanings: Int) { get }
    var encoder: SentenceEncoder? { get }
    var meaningStatus: MeaningStatus { get }
    /// What answers vector queries, per kind of vector (empty: always the exact scan).
    var vectorIndexStatus: [NeighbourStatus] { get }

    // MARK: State
    func stats() -> StoreStats
    /// Bytes held by the primary copies, the redundancy copies and the registry.
    func diskUsage() -> (primary: Int64, redundancy: Int64, registry: Int64)
    /// Whether the storage behind the store answers (always true on one machine).
    var backendAvailable: Bool { get }
    /// Calls that found that storage unavailable, since start.
    var backendFailures: Int { get }
    /// Where the data lives, for the start-up line ("/var/lib/carma", "postgresql://db/carma").
    var location: String { get }
    func close()
}

extension FragmentStore: FragmentBackend {
    public var backendAvailable: Bool { true }
    public var backendFailures: Int { 0 }
    public var location: String { self.configuration.dataDirectory }
}

// Initializers for other backends of the package (the structs' memberwise ones are internal).

extension FragmentRow {
    package init(
        id: String, version: UInt64, status: FragmentStatus, checksum: UInt32, recordLength: Int, size: Int, links: [String], tags: [String],
        createdAt: Timestamp, updatedAt: Timestamp, blankReason: BlankReason?, lostAt: Timestamp?, detectedBy: Detection?,
        originalChecksum: UInt32?, originalLength: Int?, confidence: Double?, expiresAt: Timestamp?
    ) {
        self.init(
            id: id, version: version, status: status, checksum: checksum, recordLength: recordLength, size: size, links: links, tags: tags,
            createdAt: createdAt, updatedAt: updatedAt, blankReason: blankReason, lostAt: lostAt, detectedBy: detectedBy,
            originalChecksum: originalChecksum, originalLength: originalLength, confidence: confidence, location: nil, redundancy: nil,
            expiresAt: expiresAt)
    }
}

extension ScrubSlice {
    package init(scrubbed verified: Int, findings: [(id: String, finding: ScrubFinding)], passCompleted: Bool) {
        self.init()
        self.verified = verified
        self.findings = findings
        self.passCompleted = passCompleted
    }
}

extension StoreStats {
    package init(
        fragments: Int, byStatus: [FragmentStatus: Int], recordBytes: Int64, cacheBytes: Int, cacheEntries: Int, cacheHits: Int, cacheMisses: Int,
        damageDetected: [BlankReason: Int]
    ) {
        self.init(
            fragments: fragments, byStatus: byStatus, recordBytes: recordBytes, cacheBytes: cacheBytes, cacheEntries: cacheEntries,
            cacheHits: cacheHits, cacheMisses: cacheMisses, damageDetected: damageDetected, redundancyDamageDetected: 0, commits: 0,
            committedOperations: 0, pendingOperations: 0)
    }
}
