import CarmaJSON
import CarmaEmbedding
import CarmaText

/// Everything the HTTP service asks of a store: writes acknowledged once durable, reads that turn
/// lost payloads into blanks, listings, histories, queries, export and import, and what the dream
/// engine repairs through. `FragmentStore` is the embedded backend (segment logs and SQLite on one
/// machine); `ClusterStore` keeps the same promises on PostgreSQL for several nodes.
///
/// Ids are keys (`FragmentKey`: the namespace joined to the id); listings, exports and queries take
/// the namespace they stay in.
public protocol FragmentBackend: RepairStore, ContextSource {
    // MARK: Writes (completion runs once the write is durable, or with why nothing changed)
    func put(_ id: String, _ input: FragmentInput, precondition: WritePrecondition, completion: @escaping @Sendable (Result<PutOutcome, StoreError>) -> Void)
    func delete(_ id: String, precondition: WritePrecondition, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)
    func importFragments(_ fragments: [ImportedFragment], completion: @escaping @Sendable (Result<[ImportOutcome], StoreError>) -> Void)
    /// Several puts in one group commit: one result per item, in order.
    func put(batch: [BatchPut], completion: @escaping @Sendable ([Result<PutOutcome, StoreError>]) -> Void)

    // MARK: Namespaces
    /// The namespaces, their quotas and tokens.
    var namespaces: any NamespaceCatalog { get }
    /// What each namespace holds now (namespaces holding nothing may be absent).
    func usage() -> [String: NamespaceUsage]
    /// What one namespace holds now.
    func usage(of namespace: String) -> NamespaceUsage
    /// Tombstones every fragment of a namespace and removes it from the catalog (first, so that no
    /// write lands in it meanwhile). - Returns: the fragments deleted.
    func deleteNamespace(_ name: String, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void)

    // MARK: Reads
    func read(_ id: String) -> ReadResult
    func row(_ id: String) -> FragmentRow?
    /// A namespace's fragments in key order after the key `after`.
    func list(namespace: String, status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentPage
    func history(_ id: String, limit: Int) throws(StoreError) -> [FragmentEvent]?
    /// Keys in order after `after`: of one namespace, or of all (nil).
    func ids(namespace: String?, after: String?, limit: Int) throws(StoreError) -> [String]
    /// Calls `body` once every write acknowledged so far is visible to listings and histories.
    func whenApplied(_ body: @escaping @Sendable () -> Void)
    /// Every fragment of a namespace at one instant.
    func snapshot(namespace: String) throws(StoreError) -> StoreSnapshot

    // MARK: Retrieval
    func query(_ request: QueryRequest) throws(StoreError) -> QueryAnswer
    var textIndexReady: Bool { get }
    var textIndexSize: (fragments: Int, terms: Int, meanings: Int) { get }
    /// One namespace's share of the text index.
    func textIndexSize(in namespace: String) -> (fragments: Int, terms: Int, meanings: Int)
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

/// One item of a batch write.
public struct BatchPut: Sendable {
    public var id: String
    public var input: FragmentInput
    public var precondition: WritePrecondition
    /// Leave the fragment as it is (and say so) when it already holds exactly this input, so that a
    /// retried batch writes no new versions.
    public var unlessUnchanged: Bool

    public init(id: String, input: FragmentInput, precondition: WritePrecondition = .none, unlessUnchanged: Bool = false) {
        self.id = id
        self.input = input
        self.precondition = precondition
        self.unlessUnchanged = unlessUnchanged
    }
}

extension FragmentBackend {
    /// The namespace `default`'s fragments in id order (its keys are its ids).
    public func list(status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentPage {
        try self.list(namespace: Namespace.default, status: status, tag: tag, after: after, limit: limit)
    }

    /// Every key in order after `after`.
    public func ids(after: String?, limit: Int) throws(StoreError) -> [String] {
        try self.ids(namespace: nil, after: after, limit: limit)
    }

    /// The namespace `default` at one instant.
    public func snapshot() throws(StoreError) -> StoreSnapshot {
        try self.snapshot(namespace: Namespace.default)
    }

    /// A backend without graphs (cluster mode, docs/decisions.md): every vector query scans.
    public var vectorIndexStatus: [NeighbourStatus] { [] }
}
