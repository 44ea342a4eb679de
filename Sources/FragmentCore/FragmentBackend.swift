import CarmaJSON
import CarmaEmbedding
import CarmaText

/// Everything the HTTP service asks of a store: writes acknowledged once durable, reads that turn
/// lost payloads into blanks, listings, histories, queries, export and import, and what the dream
/// engine repairs through. `FragmentStore` is the embedded backend (segment logs and SQLite on one
/// machine); `ClusterStore` keeps the same promises on PostgreSQL for several nodes.
public protocol FragmentBackend: RepairStore, ContextSource {
    // MARK: Writes (completion runs once the write is durable, or with why nothing changed)
    func put(_ id: String, _ input: FragmentInput, precondition: WritePrecondition, completion: @escaping @Sendable (Result<PutOutcome, StoreError>) -> Void)
    func delete(_ id: String, precondition: WritePrecondition, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)
    func importFragments(_ fragments: [ImportedFragment], completion: @escaping @Sendable (Result<[ImportOutcome], StoreError>) -> Void)

    // MARK: Reads
    func read(_ id: String) -> ReadResult
    func row(_ id: String) -> FragmentRow?
    func list(status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentPage
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
    /// Which backend this is.
    var kind: BackendKind { get }
    /// The backend's background workers (for metrics).
    var workers: [Worker] { get }
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

/// The backends a store can run on.
public enum BackendKind: String, Sendable {
    /// Segment logs and SQLite on one machine.
    case embedded
    /// PostgreSQL, shared by several nodes.
    case cluster
}

extension FragmentBackend {
    /// A backend without graphs (cluster mode, docs/decisions.md): every vector query scans.
    public var vectorIndexStatus: [NeighbourStatus] { [] }
}
