
/// What a compaction pass did.
public struct CompactionSummary: Sendable, Equatable {
    public var segments = 0
    public var recordsCopied = 0
    public var tombstonesKept = 0
    public var tombstonesDropped = 0
    public var bytesReclaimed: Int64 = 0
    /// Expired fragments deleted (a tombstone each) before the segments were compacted.
    public var expired = 0

    public init() {}

    package mutating func add(_ other: CompactionSummary) {
        self.expired += other.expired
        self.segments += other.segments
        self.recordsCopied += other.recordsCopied
        self.tombstonesKept += other.tombstonesKept
        self.tombstonesDropped += other.tombstonesDropped
        self.bytesReclaimed += other.bytesReclaimed
    }
}
