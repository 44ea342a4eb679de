import FragmentCore
import CarmaJSON
import CarmaText
import Logging

/// Folds log records into fragment rows: used to replay what the registry has not applied yet
/// (starting from the registry's rows) and to rebuild a lost registry (starting from nothing).
///
/// The rules do not depend on the order in which records arrive, except that the primary log is
/// read before the redundancy log: per id the highest version wins; a tombstone removes every version
/// below it; for the same version an exact `put` beats a `reconstruction`, and a later copy of the
/// same record (a repair or a compaction copy) simply moves the location.
struct LogReplay {
    struct Candidate {
        var row: StoredRow
        /// Set when the version is new to the registry (its content columns must be written).
        var sketch: Sketch?
        var embedding: [Double]?
    }

    private(set) var candidates: [String: Candidate] = [:]
    private(set) var tombstones: [String: UInt64] = [:]
    private var damagedPrimary: [String: UInt64] = [:]
    private(set) var maxVersion: UInt64 = 0
    private(set) var maxSequence: UInt64 = 0
    private(set) var records = 0
    private(set) var damaged = 0
    let base: (String) -> StoredRow?
    let sketch: (FragmentInput, String) -> Sketch
    let now = Timestamp.now

    init(base: @escaping (String) -> StoredRow?, sketch: @escaping (FragmentInput, String) -> Sketch) {
        self.base = base
        self.sketch = sketch
    }

    private func current(_ id: String) -> Candidate? {
        self.candidates[id] ?? self.base(id).map { Candidate(row: $0) }
    }

    private mutating func note(_ header: LogRecord.Header) {
        self.records += 1
        self.maxVersion = max(self.maxVersion, header.version)
        self.maxSequence = max(self.maxSequence, header.sequence)
    }

    /// A new row from a record's body, or nil if the body is not a record of this id and version.
    private func fresh(_ header: LogRecord.Header, _ body: [UInt8]) -> Candidate? {
        guard let record = FragmentRecord.decode(body), record.id == header.id, record.version == header.version else { return nil }
        let row = StoredRow(
            id: header.id, version: header.version, status: .ok, checksum: header.bodyChecksum, recordLength: body.count,
            size: record.size, links: record.links, tags: record.tags, createdAt: record.createdAt, updatedAt: record.updatedAt,
            confidence: record.reconstruction?.confidence, expiresAt: record.expiresAt)
        return Candidate(row: row, sketch: self.sketch(record.input, record.id), embedding: record.embedding)
    }

    mutating func primary(_ header: LogRecord.Header, _ body: [UInt8]?, at location: LogLocation) {
        self.note(header)
        if header.kind == .delete {
            self.tombstones[header.id] = max(self.tombstones[header.id] ?? 0, header.version)
            return
        }
        guard let body else {
            self.damaged += 1
            self.damagedPrimary[header.id] = max(self.damagedPrimary[header.id] ?? 0, header.version)
            return
        }
        var candidate = self.current(header.id)
        if candidate == nil || candidate!.row.version < header.version {
            guard var made = self.fresh(header, body) else { return }
            made.row.location = location
            if header.kind == .reconstruction {
                made.row.status = .reconstructed
            } else {
                made.row.confidence = nil
            }
            candidate = made
        } else if candidate!.row.version == header.version {
            if header.kind == .put {
                candidate!.row.status = .ok
                candidate!.row.checksum = header.bodyChecksum
                candidate!.row.recordLength = body.count
                candidate!.row.location = location
                candidate!.row.blankReason = nil
                candidate!.row.lostAt = nil
                candidate!.row.detectedBy = nil
                candidate!.row.originalChecksum = nil
                candidate!.row.originalLength = nil
                candidate!.row.confidence = nil
            } else if candidate!.row.status != .ok {
                let exact = (candidate!.row.exactChecksum, candidate!.row.exactLength)
                candidate!.row.originalChecksum = exact.0
                candidate!.row.originalLength = exact.1
                candidate!.row.status = .reconstructed
                candidate!.row.checksum = header.bodyChecksum
                candidate!.row.recordLength = body.count
                candidate!.row.location = location
                candidate!.row.confidence = FragmentRecord.decode(body)?.reconstruction?.confidence
            } else {
                return
            }
        } else {
            return
        }
        self.candidates[header.id] = candidate
    }

    mutating func redundancy(_ header: LogRecord.Header, _ body: [UInt8]?, at location: LogLocation) {
        self.note(header)
        if header.kind == .delete {
            self.tombstones[header.id] = max(self.tombstones[header.id] ?? 0, header.version)
            return
        }
        guard header.kind == .put, let body else {
            if body == nil { self.damaged += 1 }
            return
        }
        var candidate = self.current(header.id)
        if candidate == nil || candidate!.row.version < header.version {
            // Only the copy survives: the fragment is known, blank, and repaired from this copy.
            guard var made = self.fresh(header, body) else { return }
            made.row.status = .blank
            made.row.blankReason = self.damagedPrimary[header.id] == header.version ? .checksumMismatch : .missing
            made.row.lostAt = self.now
            made.row.detectedBy = .reindex
            made.row.confidence = nil
            made.row.redundancy = location
            candidate = made
        } else if candidate!.row.version == header.version {
            candidate!.row.redundancy = location
            if candidate!.row.status == .reconstructed, candidate!.row.originalChecksum == nil {
                candidate!.row.originalChecksum = header.bodyChecksum
                candidate!.row.originalLength = body.count
            }
        } else {
            return
        }
        self.candidates[header.id] = candidate
    }

    /// What the records say, after tombstones: rows to write, and ids to remove.
    func result() -> (rows: [Candidate], deleted: [(id: String, version: UInt64)]) {
        var rows: [Candidate] = []
        var deleted: [(String, UInt64)] = []
        for (id, candidate) in self.candidates {
            if let tombstone = self.tombstones[id], tombstone > candidate.row.version {
                deleted.append((id, tombstone))
            } else {
                rows.append(candidate)
            }
        }
        for (id, tombstone) in self.tombstones where self.candidates[id] == nil {
            if let row = self.base(id), row.version < tombstone { deleted.append((id, tombstone)) }
        }
        return (rows, deleted)
    }
}

/// What a registry rebuild found.
public struct RebuildSummary: Sendable {
    public var records = 0
    public var damagedRecords = 0
    public var fragments = 0
    public var ok = 0
    public var blank = 0
    public var reconstructed = 0
    public var deleted = 0

    var metadata: Logger.Metadata {
        ["reindex.records": "\(records)", "reindex.damaged_records": "\(damagedRecords)", "reindex.fragments": "\(fragments)",
         "reindex.ok": "\(ok)", "reindex.blank": "\(blank)", "reindex.reconstructed": "\(reconstructed)", "reindex.deleted": "\(deleted)"]
    }
}
