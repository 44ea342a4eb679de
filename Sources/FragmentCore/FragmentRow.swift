import CarmaJSON

/// One fragment's row in the registry: what the store knows about it apart from its content.
public struct FragmentRow: Sendable, Equatable {
    public var id: String
    public var version: UInt64
    public var status: FragmentStatus
    /// CRC32C of the record currently served (the original, or the reconstruction).
    public var checksum: UInt32
    public var recordLength: Int
    /// UTF-8 bytes of the content.
    public var size: Int
    public var links: [String]
    public var tags: [String]
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var blankReason: BlankReason?
    public var lostAt: Timestamp?
    public var detectedBy: Detection?
    /// For a reconstructed fragment: the checksum and length of the lost original, so that a later
    /// exact recovery can be verified.
    public var originalChecksum: UInt32?
    public var originalLength: Int?
    public var confidence: Double?
    /// When the fragment expires (the client's `ttl` or `expires_at`); nil for never. From then on
    /// it is gone for every reader, and the next compaction deletes it with a tombstone.
    public var expiresAt: Timestamp?

    package init(
        id: String, version: UInt64, status: FragmentStatus, checksum: UInt32, recordLength: Int, size: Int, links: [String], tags: [String],
        createdAt: Timestamp, updatedAt: Timestamp, blankReason: BlankReason? = nil, lostAt: Timestamp? = nil, detectedBy: Detection? = nil,
        originalChecksum: UInt32? = nil, originalLength: Int? = nil, confidence: Double? = nil, expiresAt: Timestamp? = nil
    ) {
        self.id = id
        self.version = version
        self.status = status
        self.checksum = checksum
        self.recordLength = recordLength
        self.size = size
        self.links = links
        self.tags = tags
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.blankReason = blankReason
        self.lostAt = lostAt
        self.detectedBy = detectedBy
        self.originalChecksum = originalChecksum
        self.originalLength = originalLength
        self.confidence = confidence
        self.expiresAt = expiresAt
    }

    /// Whether the fragment has expired at `now`: reads answer 404 and listings leave it out.
    public func isExpired(at now: Timestamp) -> Bool {
        self.expiresAt.map { $0 <= now } ?? false
    }
}

/// Something that happened to a fragment, for its history.
public struct FragmentEvent: Sendable, Equatable {
    public var sequence: Int64
    public var id: String
    public var at: Timestamp
    public var kind: String
    public var detail: JSONObject

    package init(sequence: Int64, id: String, at: Timestamp, kind: String, detail: JSONObject) {
        self.sequence = sequence
        self.id = id
        self.at = at
        self.kind = kind
        self.detail = detail
    }
}

/// How much history the registry keeps.
public struct Retention: Sendable, Equatable {
    /// Newest events kept per fragment (at least 1).
    public var eventsPerFragment: Int
    /// Newest dream-cycle reports kept (at least 1).
    public var cycleReports: Int

    /// - Parameters:
    ///   - eventsPerFragment: Default 100.
    ///   - cycleReports: Default 1,000.
    public init(eventsPerFragment: Int = 100, cycleReports: Int = 1000) {
        self.eventsPerFragment = max(1, eventsPerFragment)
        self.cycleReports = max(1, cycleReports)
    }
}

/// The kinds of event a fragment's history holds.
public enum EventKind: String, Sendable, CaseIterable {
    case created
    case updated
    /// Its payload was found missing, corrupt or unreadable.
    case lost
    case queued
    /// Recovered exactly (from the cache, the primary log or the redundancy log).
    case recovered
    /// Rebuilt approximately from context.
    case reconstructed
    case repairFailed = "repair_failed"
    /// Its redundancy copy was damaged and written again from the primary.
    case redundancyRepaired = "redundancy_repaired"
    /// Converted from the previous storage layout by `carmad migrate`.
    case migrated
    /// Found in the logs when the registry was rebuilt (its earlier history was in the lost registry).
    case reindexed
}

/// A fragment waiting for repair.
public struct RepairTicket: Sendable, Equatable {
    public var id: String
    public var priority: RepairPriority
    public var enqueuedAt: Timestamp
    public var attempts: Int
    /// Not to be retried before this time (backoff after a failed attempt).
    public var notBefore: Timestamp
    public var reason: String
    public var lastError: String?

    package init(id: String, priority: RepairPriority, enqueuedAt: Timestamp, attempts: Int, notBefore: Timestamp, reason: String, lastError: String? = nil) {
        self.id = id
        self.priority = priority
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
        self.notBefore = notBefore
        self.reason = reason
        self.lastError = lastError
    }
}

/// Order of the repair queue: lower first.
public enum RepairPriority: Int, Sendable, Comparable, CaseIterable {
    /// A client was served a blank for it.
    case servedBlank = 0
    /// The scrub found it.
    case scrub = 1
    /// Anything else (a reconstruction waiting to become exact, a damaged redundancy copy).
    case background = 2

    public static func < (lhs: RepairPriority, rhs: RepairPriority) -> Bool { lhs.rawValue < rhs.rawValue }

    public var name: String {
        switch self {
        case .servedBlank: return "served_blank"
        case .scrub: return "scrub"
        case .background: return "background"
        }
    }
}
