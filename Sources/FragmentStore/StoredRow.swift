import FragmentCore

/// A fragment's row as the embedded backend keeps it: the row both backends share, and where its
/// records sit in the two logs. The log locations never leave this module; everything else reads
/// through to the shared row.
@dynamicMemberLookup
struct StoredRow: Sendable, Equatable {
    var base: FragmentRow
    /// Where the served record (the exact one, or the reconstruction) is in the primary log; nil when
    /// no record of this version survives there.
    var location: LogLocation?
    /// Where the copy of the exact record is in the redundancy log.
    var redundancy: LogLocation?

    init(_ base: FragmentRow, location: LogLocation? = nil, redundancy: LogLocation? = nil) {
        self.base = base
        self.location = location
        self.redundancy = redundancy
    }

    init(
        id: String, version: UInt64, status: FragmentStatus, checksum: UInt32, recordLength: Int, size: Int, links: [String], tags: [String],
        createdAt: Timestamp, updatedAt: Timestamp, blankReason: BlankReason? = nil, lostAt: Timestamp? = nil, detectedBy: Detection? = nil,
        originalChecksum: UInt32? = nil, originalLength: Int? = nil, confidence: Double? = nil, location: LogLocation? = nil,
        redundancy: LogLocation? = nil, expiresAt: Timestamp? = nil
    ) {
        self.init(
            FragmentRow(
                id: id, version: version, status: status, checksum: checksum, recordLength: recordLength, size: size, links: links, tags: tags,
                createdAt: createdAt, updatedAt: updatedAt, blankReason: blankReason, lostAt: lostAt, detectedBy: detectedBy,
                originalChecksum: originalChecksum, originalLength: originalLength, confidence: confidence, expiresAt: expiresAt),
            location: location, redundancy: redundancy)
    }

    subscript<Value>(dynamicMember field: WritableKeyPath<FragmentRow, Value>) -> Value {
        get { self.base[keyPath: field] }
        set { self.base[keyPath: field] = newValue }
    }

    subscript<Value>(dynamicMember field: KeyPath<FragmentRow, Value>) -> Value {
        self.base[keyPath: field]
    }

    func isExpired(at now: Timestamp) -> Bool {
        self.base.isExpired(at: now)
    }
}
