import FragmentCore
import CarmaEmbedding
import CarmaText

/// Where the store keeps its files and how much memory it may use.
public struct StoreConfiguration: Sendable {
    /// 256 MiB of served bodies.
    public static let defaultCacheBytes = 256 << 20
    /// Segments are sealed at 64 MiB.
    public static let defaultSegmentBytes = 64 << 20

    /// Holds the registry (`registry.sqlite3`) and the primary log (`segments/`).
    public var dataDirectory: String
    /// Holds the redundancy log (`segments/`), a second copy of every record; meant to sit on
    /// another volume.
    public var redundancyDirectory: String
    /// Upper bound of the payload cache, in bytes.
    public var cacheBytes: Int
    public var limits: FragmentLimits
    /// Most operations one group commit takes.
    public var maxBatch: Int
    /// Most log operations one registry transaction applies.
    public var maxApplyBatch: Int
    /// Size at which a segment (of either log) is sealed and a new one started.
    public var segmentBytes: Int
    /// Events kept per fragment and cycle reports kept.
    public var retention: Retention
    /// The built-in sentence encoder; nil: retrieval by words (and client vectors) only.
    public var encoder: SentenceEncoder?
    /// Approximate nearest-neighbour graphs for vector queries in a large store; nil: every vector
    /// query scans (docs/decisions.md, "Vector search at a million").
    public var neighbourSearch: NeighbourSearchConfiguration?

    /// - Parameters:
    ///   - dataDirectory: Created if missing.
    ///   - redundancyDirectory: Default `<dataDirectory>/redundancy`.
    ///   - cacheBytes: Default 256 MiB.
    ///   - limits: Default `FragmentLimits()`.
    ///   - maxBatch: Default 512.
    ///   - maxApplyBatch: Default 8192.
    ///   - segmentBytes: Default 64 MiB.
    ///   - retention: Default `Retention()`: 100 events per fragment, 1,000 cycle reports.
    ///   - neighbourSearch: Default `NeighbourSearchConfiguration()`: graphs from 20,000 vectors, kept in `<dataDirectory>/vectors`.
    public init(
        dataDirectory: String,
        redundancyDirectory: String? = nil,
        cacheBytes: Int = Self.defaultCacheBytes,
        limits: FragmentLimits = FragmentLimits(),
        maxBatch: Int = 512,
        maxApplyBatch: Int = 8192,
        segmentBytes: Int = Self.defaultSegmentBytes,
        retention: Retention = Retention(),
        encoder: SentenceEncoder? = nil,
        neighbourSearch: NeighbourSearchConfiguration? = NeighbourSearchConfiguration()
    ) {
        self.encoder = encoder
        self.neighbourSearch = neighbourSearch
        self.dataDirectory = dataDirectory
        self.redundancyDirectory = redundancyDirectory ?? "\(dataDirectory)/redundancy"
        self.cacheBytes = cacheBytes
        self.limits = limits
        self.maxBatch = max(1, maxBatch)
        self.maxApplyBatch = max(1, maxApplyBatch)
        self.segmentBytes = max(4096, segmentBytes)
        self.retention = retention
    }

    var registryPath: String { "\(self.dataDirectory)/registry.sqlite3" }
    var primaryLogDirectory: String { "\(self.dataDirectory)/segments" }
    var redundancyLogDirectory: String { "\(self.redundancyDirectory)/segments" }
    var lockPath: String { "\(self.dataDirectory)/LOCK" }
    /// The namespace catalog's journal, kept in both areas (`NamespaceJournal`).
    var namespaceJournalPaths: [String] { ["\(self.dataDirectory)/namespaces.journal", "\(self.redundancyDirectory)/namespaces.journal"] }
    /// Where the previous layout kept payload files, one per fragment.
    var previousLayoutPayloads: String { "\(self.dataDirectory)/payloads" }
}
