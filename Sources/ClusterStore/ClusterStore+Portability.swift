import CarmaJSON
import CarmaText
import FragmentCore
import Synchronization

// Export from one database snapshot, import at the exported versions.

extension ClusterStore {
    static let snapshotRows = PGStatement(
        "carma_snapshot_rows",
        "SELECT \(rowColumns) FROM carma_fragments f WHERE f.namespace = $2 AND (f.expires_at IS NULL OR f.expires_at > $1) ORDER BY f.id")
    static let snapshotRecord = PGStatement("carma_snapshot_record", "SELECT record FROM carma_payloads WHERE id = $1 AND version = $2")

    /// Every fragment as one REPEATABLE READ transaction sees it, on a connection of its own held
    /// until the snapshot is closed (a long export does not take one from the pool).
    public func snapshot(namespace: String) throws(StoreError) -> StoreSnapshot {
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        let connection: PGConnection
        let rows: [FragmentRow]
        let maxVersion: UInt64
        do {
            connection = try PGConnection(url: self.configuration.databaseURL, deadline: ContinuousClock.now.advanced(by: self.configuration.timeout))
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", deadline: deadline)
            rows = try connection.run(Self.snapshotRows, [.int(Timestamp.now.milliseconds), .text(namespace)], deadline: deadline).all.compactMap { Self.row($0) }
            maxVersion = UInt64(try connection.execute("SELECT last_value FROM carma_versions", deadline: deadline).first?.int(0) ?? 0)
        } catch {
            throw Self.storeError(error, doing: "take a snapshot for the export")
        }
        let shared = Mutex<PGConnection?>(connection)
        return StoreSnapshot(
            rows: rows, maxVersion: maxVersion,
            reader: { _, row in
                shared.withLock { connection -> StoreSnapshot.Entry in
                    guard let connection else { return .unavailable("the snapshot is closed") }
                    let record: [UInt8]?
                    do {
                        record = try connection.run(
                            Self.snapshotRecord, [.text(row.id), .uint(row.version)], deadline: ContinuousClock.now.advanced(by: .seconds(30))
                        ).first?.bytes(0)
                    } catch {
                        return .unavailable("\(error)")
                    }
                    guard let record, record.count == row.recordLength, CRC32C.checksum(record) == row.checksum else {
                        var blank = row
                        blank.status = .blank
                        blank.blankReason = record == nil ? .missing : .checksumMismatch
                        return .blank(blank)
                    }
                    return .fragment(ServedFragment.makeBody(record: record, status: row.status, checksum: row.checksum))
                }
            },
            closer: { shared.withLock { $0 = nil } })
    }

    static let importRow = PGStatement(
        "carma_import",
        """
        WITH f AS (
            INSERT INTO carma_fragments (id, version, status, checksum, record_length, size, links, tags, created_at, updated_at, expires_at,
                blank_reason, lost_at, detected_by, original_checksum, original_length, confidence, sketch)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, NULL, $15, $16)
            ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status, checksum = excluded.checksum,
                record_length = excluded.record_length, size = excluded.size, links = excluded.links, tags = excluded.tags,
                created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at,
                blank_reason = excluded.blank_reason, lost_at = excluded.lost_at, detected_by = excluded.detected_by,
                original_checksum = NULL, original_length = NULL, confidence = excluded.confidence, sketch = excluded.sketch),
        p AS (INSERT INTO carma_payloads (id, version, record) SELECT $1::text, $2::bigint, $17::bytea WHERE $17::bytea IS NOT NULL
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        pd AS (DELETE FROM carma_payloads WHERE id = $1::text AND $17::bytea IS NULL),
        r AS (INSERT INTO carma_redundancy (id, version, record) SELECT $1::text, $2::bigint, $17::bytea WHERE $18::boolean
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        rd AS (DELETE FROM carma_redundancy WHERE id = $1::text AND NOT $18::boolean),
        q AS (DELETE FROM carma_repairs WHERE id = $1::text AND $3::text <> 'blank'),
        qb AS (INSERT INTO carma_repairs (id, priority, enqueued_at, reason) SELECT $1::text, $19::integer, $10::bigint, 'imported blank' WHERE $3::text = 'blank'
               ON CONFLICT (id) DO NOTHING),
        e AS (INSERT INTO carma_events (id, at, kind, detail) VALUES ($1::text, $20::bigint, $21::text, $22::text)),
        c AS (INSERT INTO carma_changes (id, at) VALUES ($1::text, $20::bigint)),
        v AS (SELECT setval('carma_versions', greatest((SELECT last_value FROM carma_versions), $2::bigint)))
        SELECT 1 FROM v
        """)

    /// Writes each fragment at its own version where the database's is lower (equal: unchanged,
    /// higher: superseded; a deleted namespace's floor counts as a stored version), one transaction
    /// per fragment under its id lock; versions handed out afterwards are above every imported one.
    /// As on one machine, the namespaces must exist and the import must fit their quotas, checked
    /// before anything is written (an import racing other writes into a namespace at its quota may
    /// pass it by its size).
    public func importFragments(_ fragments: [ImportedFragment], completion: @escaping @Sendable (Result<[ImportOutcome], StoreError>) -> Void) {
        if let failure = ImportedFragment.check(fragments, limits: self.configuration.limits) {
            return completion(.failure(failure))
        }
        Self.writers.async {
            // Checked before anything is written: a stored version with other content is a conflict.
            var outcomes: [ImportOutcome]
            do throws(PGError) {
                let stored = try self.storedRows(fragments)
                if let conflict = Self.importConflict(fragments, stored: stored) {
                    return completion(.failure(conflict))
                }
                switch try self.importPlan(fragments, stored: stored) {
                case .success(let planned): outcomes = planned
                case .failure(let refused): return completion(.failure(refused))
                }
                if let mismatch = try self.importDimensionMismatch(fragments) {
                    return completion(.failure(mismatch))
                }
            } catch {
                return completion(.failure(Self.storeError(error, doing: "check the import")))
            }
            // What is stored at the same or a newer version is left alone (as it stays: versions only
            // go up); the others are written, each checked again under its lock.
            for (index, fragment) in fragments.enumerated() where outcomes[index] == .imported {
                do throws(PGError) {
                    switch try self.importOne(fragment) {
                    case .success(let outcome): outcomes[index] = outcome
                    case .failure(let refused):
                        self.follower.poke()
                        return completion(.failure(refused))
                    }
                } catch {
                    return completion(.failure(Self.storeError(error, doing: "import '\(fragment.id)'")))
                }
            }
            self.follower.poke()
            completion(.success(outcomes))
        }
    }

    static let storedRows = PGStatement("carma_import_stored", "SELECT \(rowColumns) FROM carma_fragments f WHERE f.id = ANY($1)")
    static let floors = PGStatement("carma_import_floors", "SELECT name, floor FROM carma_namespace_floors WHERE name = ANY($1::text[])")
    static let namespaceEntries = PGStatement(
        "carma_import_namespaces", "SELECT name, quota_fragments, quota_bytes FROM carma_namespaces WHERE name = ANY($1::text[])")

    /// The stored rows of an import's ids.
    private func storedRows(_ fragments: [ImportedFragment]) throws(PGError) -> [String: FragmentRow] {
        let ids = Array(Set(fragments.map(\.id)))
        let stored = try self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.storedRows, [.texts(ids)], deadline: deadline).all.compactMap { Self.row($0) }
        }
        return Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The first fragment whose version is stored with other content, as a conflict.
    private static func importConflict(_ fragments: [ImportedFragment], stored byID: [String: FragmentRow]) -> StoreError? {
        for (index, fragment) in fragments.enumerated() {
            guard let row = byID[fragment.id], row.version == fragment.version, let record = fragment.record else { continue }
            if row.status != .blank, row.checksum != CRC32C.checksum(record.encode()) {
                return .importConflict(fragment.id, version: fragment.version, index: index)
            }
        }
        return nil
    }

    /// What each fragment would do (a deleted namespace's floor counts as a stored version), or why
    /// those it would write cannot go into their namespaces: one does not exist, or the import takes
    /// one past its quota.
    private func importPlan(_ fragments: [ImportedFragment], stored: [String: FragmentRow]) throws(PGError) -> Result<[ImportOutcome], StoreError> {
        let names = Array(Set(fragments.map { FragmentKey.namespace(of: $0.id) })).sorted()
        let (floors, quotas) = try self.pool.with { connection, deadline throws(PGError) -> ([String: UInt64], [String: NamespaceQuota]) in
            var floors: [String: UInt64] = [:]
            for r in try connection.run(Self.floors, [.texts(names)], deadline: deadline).all {
                if let name = r.string(0), let floor = r.int(1) { floors[name] = UInt64(max(0, floor)) }
            }
            var quotas: [String: NamespaceQuota] = [:]
            for r in try connection.run(Self.namespaceEntries, [.texts(names)], deadline: deadline).all {
                if let name = r.string(0) { quotas[name] = NamespaceQuota(fragments: r.int(1).map { Int($0) }, bytes: r.int(2)) }
            }
            return (floors, quotas)
        }
        var seen: [String: UInt64] = [:]
        var growth: [String: NamespaceUsage] = [:]
        var outcomes: [ImportOutcome] = []
        for fragment in fragments {
            let namespace = FragmentKey.namespace(of: fragment.id)
            let previous = stored[fragment.id]
            let current = max(previous?.version ?? 0, seen[fragment.id] ?? 0, floors[namespace] ?? 0)
            seen[fragment.id] = max(current, fragment.version)
            outcomes.append(current == fragment.version ? .unchanged : current > fragment.version ? .superseded : .imported)
            guard current < fragment.version else { continue }
            let size = fragment.record?.size ?? 0
            growth[namespace, default: NamespaceUsage()] =
                growth[namespace, default: NamespaceUsage()] + NamespaceUsage(fragments: previous == nil ? 1 : 0, bytes: Int64(size - (previous?.size ?? 0)))
        }
        for (namespace, change) in growth.sorted(by: { $0.key < $1.key }) {
            guard let quota = quotas[namespace] else { return .failure(.namespaceNotFound(namespace)) }
            let refused = try Self.admit(change, to: namespace, quota: quota, planned: NamespaceUsage(), used: { () throws(PGError) in
                self.usage(of: namespace)
            })
            if let refused { return .failure(refused) }
        }
        return .success(outcomes)
    }

    /// The first client vector of the import whose dimension is not the store's, as a write would
    /// refuse it (the first vector the store keeps fixes the dimension, an imported one too).
    private func importDimensionMismatch(_ fragments: [ImportedFragment]) throws(PGError) -> StoreError? {
        guard let first = fragments.lazy.compactMap({ $0.input?.embedding?.count }).first else { return nil }
        let stored = try self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.embeddingDimension, [.text(String(first))], deadline: deadline)
        }.first?.string(0).flatMap { Int($0) }
        guard let stored else { return nil }
        self.embeddingDimension.withLock { $0 = stored }
        for fragment in fragments {
            if let dimension = fragment.input?.embedding?.count, dimension != stored {
                return .invalid(field: "embedding", "this store's embeddings have \(stored) dimensions, not \(dimension)")
            }
        }
        return nil
    }

    /// An import's look-up: the namespace's floor and the current row, holding the namespace's
    /// catalog row (KEY SHARE) until the commit; no row: no such namespace.
    static let importCurrent = PGStatement(
        "carma_import_current",
        """
        SELECT COALESCE((SELECT floor FROM carma_namespace_floors WHERE name = $2), 0), \(rowColumns)
        FROM carma_namespaces n LEFT JOIN carma_fragments f ON f.id = $1 WHERE n.name = $2 FOR KEY SHARE OF n
        """)

    private func importOne(_ fragment: ImportedFragment) throws(PGError) -> Result<ImportOutcome, StoreError> {
        let now = Timestamp.now
        let id = fragment.id
        var status = FragmentStatus.blank
        var record: [UInt8]?
        var size = 0
        var links: [String] = []
        var tags: [String] = []
        var expiresAt: Timestamp?
        var confidence: Double?
        var blankReason: BlankReason?
        var lostAt: Timestamp?
        var sketch: Sketch?
        if let encoded = fragment.record {
            record = encoded.encode()
            status = encoded.reconstruction == nil ? .ok : .reconstructed
            confidence = encoded.reconstruction?.confidence
            size = encoded.size
            (links, tags, expiresAt) = (encoded.links, encoded.tags, encoded.expiresAt)
            sketch = self.sketch(encoded.input, key: encoded.id)
        } else if case .blank(let blankLinks, let blankTags, let blankSize, let reason, let lost) = fragment.payload {
            (links, tags, size, blankReason, lostAt) = (blankLinks, blankTags, blankSize, reason, lost ?? now)
        }
        let checksum = record.map(CRC32C.checksum) ?? 0
        let detail = HistoryDetail.written(version: fragment.version, size: size, imported: true)
        return try self.pool.transaction { connection, deadline throws(PGError) in
            try connection.run(Self.lockID, [.text(id)], deadline: deadline)
            let namespace = FragmentKey.namespace(of: id)
            guard let found = try connection.run(Self.importCurrent, [.text(id), .text(namespace)], deadline: deadline).first else {
                return .failure(.namespaceNotFound(namespace))
            }
            let previous = found.isNull(1) ? nil : Self.row(found, from: 1)
            // A deleted namespace's versions stay deleted: as if a newer version were stored.
            let current = max(previous?.version ?? 0, UInt64(max(0, found.int(0) ?? 0)))
            if current == fragment.version { return .success(.unchanged) }
            if current > fragment.version { return .success(.superseded) }
            var parameters: [PGValue] = [.text(id), .uint(fragment.version), .text(status.rawValue), .uint(checksum), .int(record?.count ?? 0)]
            parameters += [.int(size), .texts(links), .texts(tags), .int(fragment.createdAt.milliseconds), .int(fragment.updatedAt.milliseconds)]
            parameters += [.optional(expiresAt?.milliseconds), .optional(blankReason?.rawValue), .optional(lostAt?.milliseconds)]
            parameters += [.optional(status == .blank ? "read" : nil), .optional(confidence)]
            parameters.append(sketch.map { PGValue.bytes($0.encode()) } ?? PGValue.null)
            parameters.append(record.map { PGValue.bytes($0) } ?? PGValue.null)
            parameters += [.bool(status == .ok), .int(RepairPriority.background.rawValue), .int(now.milliseconds)]
            parameters += [.text(previous == nil ? "created" : "updated"), .text(Self.json(detail))]
            try connection.run(Self.importRow, parameters, deadline: deadline)
            return .success(.imported)
        }
    }
}
