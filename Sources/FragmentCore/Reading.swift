import CarmaJSON

// What reads answer: a fragment to serve, a blank, or why there is nothing just now.

/// What a read found.
public enum ReadResult: Sendable {
    /// The store never knew the id, or it was deleted.
    case notFound
    /// The fragment (`ok` or `reconstructed`), as the bytes to serve.
    case fragment(ServedFragment)
    /// Known, but its payload is lost: what the registry still knows.
    case blank(BlankFragment)
    /// The record could not be read for a passing reason (out of descriptors or memory): nothing
    /// is lost and nothing was recorded; the client should try again shortly.
    case unavailable(String)
    /// The storage behind the store (cluster mode: PostgreSQL) does not answer and no copy is at
    /// hand: nothing is known about the fragment just now.
    case backendUnavailable(String)
}

/// A readable fragment: the JSON body to send, plus the facts headers need.
public struct ServedFragment: Sendable {
    public var body: [UInt8]
    public var version: UInt64
    public var status: FragmentStatus
    public var checksum: UInt32

    package init(body: [UInt8], version: UInt64, status: FragmentStatus, checksum: UInt32) {
        self.body = body
        self.version = version
        self.status = status
        self.checksum = checksum
    }
}

/// A blank fragment: its registry row (links, tags, reason) and when its repair was queued.
public struct BlankFragment: Sendable {
    public var row: FragmentRow
    public var queuedAt: Timestamp?
    /// Where its repair stands: attempts made, the last one's error, the next one's earliest time.
    public var progress: RepairProgress

    package init(row: FragmentRow, queuedAt: Timestamp?, progress: RepairProgress = RepairProgress()) {
        self.row = row
        self.queuedAt = queuedAt
        self.progress = progress
    }
}

extension ServedFragment {
    /// The served JSON: the record with its closing brace replaced by `status` and `checksum`.
    package static func makeBody(record: [UInt8], status: FragmentStatus, checksum: UInt32) -> [UInt8] {
        var body = record
        if body.last == UInt8(ascii: "}") { body.removeLast() }
        body.append(contentsOf: ",\"status\":\"\(status.rawValue)\",\"checksum\":\"\(CRC32C.format(checksum))\"}".utf8)
        return body
    }

    /// The record a served body was built from.
    package static func record(fromServedBody body: [UInt8], recordLength: Int) -> [UInt8] {
        guard recordLength > 0, recordLength <= body.count else { return [] }
        var record = Array(body[0..<(recordLength - 1)])
        record.append(UInt8(ascii: "}"))
        return record
    }
}

/// A page of fragment rows in id order.
public struct FragmentPage: Sendable {
    public var rows: [FragmentRow]
    /// The last id of this page when more may follow.
    public var nextAfter: String?

    package init(rows: [FragmentRow], nextAfter: String?) {
        self.rows = rows
        self.nextAfter = nextAfter
    }
}

/// A snapshot of the store's size and activity.
public struct StoreStats: Sendable {
    public var fragments: Int
    public var byStatus: [FragmentStatus: Int]
    public var recordBytes: Int64
    public var cacheBytes: Int
    public var cacheEntries: Int
    public var cacheHits: Int
    public var cacheMisses: Int
    /// Damage found, by kind (`missing`, `checksum_mismatch`, `unreadable`).
    public var damageDetected: [BlankReason: Int]
    /// Damaged redundancy copies found by the scrub.
    public var redundancyDamageDetected: Int
    public var commits: Int
    public var committedOperations: Int
    public var pendingOperations: Int

    package init(
        fragments: Int, byStatus: [FragmentStatus: Int], recordBytes: Int64, cacheBytes: Int, cacheEntries: Int, cacheHits: Int, cacheMisses: Int,
        damageDetected: [BlankReason: Int], redundancyDamageDetected: Int = 0, commits: Int = 0, committedOperations: Int = 0, pendingOperations: Int = 0
    ) {
        self.fragments = fragments
        self.byStatus = byStatus
        self.recordBytes = recordBytes
        self.cacheBytes = cacheBytes
        self.cacheEntries = cacheEntries
        self.cacheHits = cacheHits
        self.cacheMisses = cacheMisses
        self.damageDetected = damageDetected
        self.redundancyDamageDetected = redundancyDamageDetected
        self.commits = commits
        self.committedOperations = committedOperations
        self.pendingOperations = pendingOperations
    }
}
