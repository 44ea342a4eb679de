import CarmaJSON

// The narrow interface the dream engine repairs through: the queue, verified sources of exact bytes,
// and outcomes that are made durable (files synced, registry committed) before they return.

/// What the engine needs to know to repair one fragment.
public struct RepairTarget: Sendable {
    public var row: FragmentRow

    package init(row: FragmentRow) {
        self.row = row
    }

    public var id: String { self.row.id }
    /// The namespace every source of a reconstruction must come from.
    public var namespace: String { FragmentKey.namespace(of: self.row.id) }
    public var version: UInt64 { self.row.version }
    /// Checksum and length of the exact record to recover: the original's, also for a fragment that is
    /// currently served as a reconstruction.
    public var exactChecksum: UInt32 { self.row.exactChecksum }
    public var exactLength: Int { self.row.exactLength }
}

extension FragmentRow {
    /// Checksum and length of the exact record: the original's, also while a reconstruction is served.
    package var exactChecksum: UInt32 { self.originalChecksum ?? self.checksum }
    package var exactLength: Int { self.originalLength ?? self.recordLength }
}

/// The recovery tiers, cheapest first.
public enum RepairTier: String, Sendable, CaseIterable {
    /// The primary record verifies after all (a passing error, or put back by hand).
    case primary
    /// The payload cache still holds the exact bytes.
    case cache
    /// The copy in the redundancy log.
    case redundancy
    /// The registry's sketch holds the whole text of a short fragment: the record is rebuilt from it
    /// and the row, and used only if it matches the kept checksum.
    case sketch
    /// Rebuilt from context: approximate, flagged.
    case reconstruction
    /// Nothing usable: stays blank, retried later.
    case none
}

/// An exact record to put back, and where it came from.
public struct Restoration: Sendable {
    public var target: RepairTarget
    public var record: [UInt8]
    /// The recovery tier that found the bytes: `primary`, `cache` or `redundancy`.
    public var tier: RepairTier
    /// A human description of the source (e.g. the redundancy directory).
    public var source: String
    public var cycle: Int64?
    public var durationMilliseconds: Double

    public init(target: RepairTarget, record: [UInt8], tier: RepairTier, source: String, cycle: Int64?, durationMilliseconds: Double) {
        self.target = target
        self.record = record
        self.tier = tier
        self.source = source
        self.cycle = cycle
        self.durationMilliseconds = durationMilliseconds
    }
}

/// Text rebuilt from context for a fragment with no exact source left.
public struct RebuiltFragment: Sendable {
    public var content: String
    public var confidence: Double
    public var sources: [String]
    public var method: String

    public init(content: String, confidence: Double, sources: [String], method: String) {
        self.content = content
        self.confidence = confidence
        self.sources = sources
        self.method = method
    }

    /// How a rebuild of `target` is stored (either backend): its record, made at `now`, with the
    /// confidence rounded once (records, rows, listings and queries all say the same number), and the
    /// detail of its `reconstructed` history event.
    package func stored(for target: RepairTarget, at now: Timestamp, cycle: Int64?) -> StoredReconstruction {
        let confidence = (self.confidence * 1000).rounded() / 1000
        let reconstruction = Reconstruction(confidence: confidence, sources: self.sources, method: self.method, at: now)
        let record = FragmentRecord(
            id: target.id, version: target.version,
            input: FragmentInput(content: self.content, links: target.row.links, tags: target.row.tags, expiresAt: target.row.expiresAt),
            createdAt: target.row.createdAt, updatedAt: target.row.updatedAt, reconstruction: reconstruction
        ).encode()
        var detail: JSONObject = [
            "version": .exact(target.version), "confidence": .number(confidence), "sources": JSONValue(self.sources.map(FragmentKey.local)), "method": .string(self.method),
        ]
        if let cycle { detail["cycle"] = .number(Double(cycle)) }
        return StoredReconstruction(record: record, checksum: CRC32C.checksum(record), confidence: confidence, detail: detail)
    }
}

/// A rebuild as a backend stores it: the record, its checksum, the rounded confidence, and the
/// detail of its history event.
public struct StoredReconstruction: Sendable, Equatable {
    public var record: [UInt8]
    public var checksum: UInt32
    public var confidence: Double
    public var detail: JSONObject

    public init(record: [UInt8], checksum: UInt32, confidence: Double, detail: JSONObject) {
        self.record = record
        self.checksum = checksum
        self.confidence = confidence
        self.detail = detail
    }
}
