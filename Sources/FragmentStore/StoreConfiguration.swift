/// Where the store keeps its files and how much memory it may use.
public struct StoreConfiguration: Sendable {
    /// Holds the registry (`registry.sqlite3`) and the primary payloads (`payloads/`).
    public var dataDirectory: String
    /// Holds the second copy of every payload; meant to sit on another volume.
    public var redundancyDirectory: String
    /// Upper bound of the payload cache, in bytes.
    public var cacheBytes: Int
    public var limits: FragmentLimits
    /// Most operations one group commit takes.
    public var maxBatch: Int
    /// Size at which a redundancy segment is sealed and a new one started.
    public var redundancySegmentBytes: Int

    /// - Parameters:
    ///   - dataDirectory: Created if missing.
    ///   - redundancyDirectory: Default `<dataDirectory>/redundancy`.
    ///   - cacheBytes: Default 256 MiB.
    ///   - limits: Default `FragmentLimits()`.
    ///   - maxBatch: Default 512.
    ///   - redundancySegmentBytes: Default 64 MiB.
    public init(
        dataDirectory: String,
        redundancyDirectory: String? = nil,
        cacheBytes: Int = 256 << 20,
        limits: FragmentLimits = FragmentLimits(),
        maxBatch: Int = 512,
        redundancySegmentBytes: Int = 64 << 20
    ) {
        self.dataDirectory = dataDirectory
        self.redundancyDirectory = redundancyDirectory ?? "\(dataDirectory)/redundancy"
        self.cacheBytes = cacheBytes
        self.limits = limits
        self.maxBatch = maxBatch
        self.redundancySegmentBytes = redundancySegmentBytes
    }

    var registryPath: String { "\(self.dataDirectory)/registry.sqlite3" }
    var payloadDirectory: String { "\(self.dataDirectory)/payloads" }
}
