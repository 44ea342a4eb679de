import FragmentCore
import CarmaJSON
import CarmaText
import Synchronization

extension FragmentStore {
    /// Writes fragments at their own versions, each only where the store's version of it is lower
    /// (equal is a no-op, higher wins), so that running the same import again changes nothing. Exact
    /// fragments go to both logs as `put` records, reconstructions to the primary log as
    /// `reconstruction` records; a blank has no record and is kept in the index and registry only,
    /// queued for repair. The store's version counter moves past every imported version.
    /// `completion` runs once the records are durable and the registry holds the rows.
    public func importFragments(_ fragments: [ImportedFragment], completion: @escaping @Sendable (Result<[ImportOutcome], StoreError>) -> Void) {
        if let failure = ImportedFragment.check(fragments, limits: self.configuration.limits) {
            return completion(.failure(failure))
        }
        // What the store already has at the same or a newer version is left alone; checked again
        // on the log thread, where it counts.
        let outcomes: [ImportOutcome]
        switch self.importOutcomes(fragments) {
        case .success(let found): outcomes = found
        case .failure(let conflict): return completion(.failure(conflict))
        }
        let wanted = fragments.indices.filter { outcomes[$0] == .imported }
        guard !wanted.isEmpty else { return completion(.success(outcomes)) }
        // Namespaces must exist and stay within their quotas (checked before the append, not in log
        // order: an import racing other writes to a namespace at its quota may pass it by its size).
        var growth: [String: NamespaceUsage] = [:]
        for index in wanted {
            let fragment = fragments[index]
            let previous = self.indexedRow(fragment.id)
            let size = fragment.record?.size ?? 0
            growth[FragmentKey.namespace(of: fragment.id), default: NamespaceUsage()] =
                growth[FragmentKey.namespace(of: fragment.id), default: NamespaceUsage()]
                + NamespaceUsage(fragments: previous == nil ? 1 : 0, bytes: Int64(size - (previous?.size ?? 0)))
        }
        for (namespace, change) in growth {
            if let failure = self.admit(change, to: namespace, planned: NamespaceUsage()) { return completion(.failure(failure)) }
        }
        for index in wanted {
            if let dimension = fragments[index].input?.embedding?.count, let failure = self.acceptEmbeddingDimension(dimension) {
                return completion(.failure(failure))
            }
        }
        // Versions handed out from now on are above every imported one.
        self.lastVersion.max(fragments.map(\.version).max() ?? 0, ordering: .relaxed)

        var primary: [PendingRecord] = []
        var redundancy: [PendingRecord] = []
        var planned: [PlannedImport] = []
        for index in wanted {
            let fragment = fragments[index]
            var plan = PlannedImport(index: index, fragment: fragment, document: nil, record: [], checksum: 0, primary: nil, redundancy: nil)
            if let record = fragment.record {
                let bytes = record.encode()
                plan.record = bytes
                plan.checksum = CRC32C.checksum(bytes)
                plan.document = self.document(id: fragment.id, version: fragment.version, input: record.input)
                let kind: LogRecord.Kind = record.reconstruction == nil ? .put : .reconstruction
                plan.primary = primary.count
                primary.append(PendingRecord(kind: kind, id: fragment.id, version: fragment.version, body: bytes, checksum: plan.checksum))
                if kind == .put {
                    plan.redundancy = redundancy.count
                    redundancy.append(PendingRecord(kind: .put, id: fragment.id, version: fragment.version, body: bytes, checksum: plan.checksum))
                }
            }
            planned.append(plan)
        }
        let plans = planned
        let written = ImportTally(outcomes)
        let finish: @Sendable (Result<Void, StoreError>) -> Void = { result in
            completion(result.map { written.outcomes.withLock { $0 } })
        }
        let operation = AppendOperation(primary: primary, redundancy: redundancy) { result in
            switch result {
            case .failure(let error):
                finish(.failure(error))
                return nil
            case .success(let locations):
                var change = self.applyImport(plans, locations: locations, outcomes: written)
                change.completion = finish
                return change
            }
        }
        if !self.pipeline.submit(.append(operation)) {
            completion(.failure(.closed))
        }
    }

    /// One fragment of an import between planning and the append.
    private struct PlannedImport: Sendable {
        var index: Int
        var fragment: ImportedFragment
        /// Its text-index document; nil for a blank (no content to index).
        var document: TextIndex.Document?
        var record: [UInt8]
        var checksum: UInt32
        var primary: Int?
        var redundancy: Int?
    }

    /// What each fragment would do; a conflict when a stored version has other content (checked
    /// again where it counts, on the log thread, for a write racing the import).
    private func importOutcomes(_ fragments: [ImportedFragment]) -> Result<[ImportOutcome], StoreError> {
        let checksums = fragments.map { $0.record.map { CRC32C.checksum($0.encode()) } }
        return self.state.withLock { state in
            var seen: [String: UInt64] = [:]
            var outcomes: [ImportOutcome] = []
            for (index, fragment) in fragments.enumerated() {
                let stored = state[fragment.id]?.row
                // A deleted namespace's versions stay deleted: as if a newer version were stored.
                if fragment.version <= self.journal.versionFloor(FragmentKey.namespace(of: fragment.id)) {
                    outcomes.append(.superseded)
                    continue
                }
                let current = max(stored?.version ?? 0, seen[fragment.id] ?? 0)
                seen[fragment.id] = max(current, fragment.version)
                if let stored, stored.version == fragment.version, let checksum = checksums[index], Self.differs(stored, checksum) {
                    return .failure(.importConflict(fragment.id, version: fragment.version, index: index))
                }
                outcomes.append(current == fragment.version ? .unchanged : current > fragment.version ? .superseded : .imported)
            }
            return .success(outcomes)
        }
    }

    /// Whether a stored row's record differs from an imported record's checksum. A blank row has
    /// lost its record (no content to compare): not a conflict, the import leaves it as it is.
    static func differs(_ stored: StoredRow, _ checksum: UInt32) -> Bool {
        stored.status != .blank && stored.checksum != checksum
    }

    /// Log thread: makes the appended fragments visible (where nothing newer came meanwhile) and
    /// returns the registry work.
    private func applyImport(_ plans: [PlannedImport], locations: AppendedLocations, outcomes: ImportTally) -> RegistryChange {
        let now = Timestamp.now
        var applied: [(row: StoredRow, previous: StoredRow?, plan: PlannedImport)] = []
        self.state.withLock { state in
            for plan in plans {
                let fragment = plan.fragment
                let previous = state[fragment.id]?.row
                if let previous, previous.version >= fragment.version {
                    let outcome: ImportOutcome = previous.version == fragment.version ? .unchanged : .superseded
                    outcomes.outcomes.withLock { $0[plan.index] = outcome }
                    continue
                }
                var row = StoredRow(
                    id: fragment.id, version: fragment.version, status: .ok, checksum: plan.checksum, recordLength: plan.record.count,
                    size: 0, links: [], tags: [], createdAt: fragment.createdAt, updatedAt: fragment.updatedAt)
                var queuedAt: Timestamp?
                switch fragment.payload {
                case .exact(let input):
                    row.size = input.content.utf8.count
                    row.links = input.links
                    row.tags = input.tags
                    row.expiresAt = input.expiresAt
                case .reconstructed(let input, let reconstruction):
                    row.status = .reconstructed
                    row.size = input.content.utf8.count
                    row.links = input.links
                    row.tags = input.tags
                    row.expiresAt = input.expiresAt
                    row.confidence = reconstruction.confidence
                case .blank(let links, let tags, let size, let reason, let lostAt):
                    row.status = .blank
                    row.size = size
                    row.links = links
                    row.tags = tags
                    row.blankReason = reason
                    row.lostAt = lostAt ?? now
                    queuedAt = now
                }
                row.location = plan.primary.map { locations.primary[$0] }
                row.redundancy = plan.redundancy.map { locations.redundancy[$0] }
                if let previous { self.releaseRecords(of: previous) }
                self.retainRecords(of: row)
                state.set(fragment.id, IndexEntry(row: row, queuedAt: queuedAt))
                if row.status != .blank {
                    state.cache(fragment.id, version: row.version, body: ServedFragment.makeBody(record: plan.record, status: row.status, checksum: row.checksum), recordLength: plan.record.count)
                }
                applied.append((row, previous, plan))
            }
        }
        self.feed.submit(applied.map { _, _, plan in plan.document.map(IndexFeed.Change.upsert) ?? .remove(plan.fragment.id) })
        let rows = applied.map { (row: $0.row, previous: $0.previous, sketch: $0.plan.document?.sketch.encode() ?? [], embedding: $0.plan.fragment.input?.embedding) }
        return RegistryChange(apply: { registry in
            for (row, previous, sketch, embedding) in rows {
                guard try registry.upsert(row, previousTags: previous?.tags, sketch: sketch, embedding: embedding.map(Self.encodeEmbedding)) else { continue }
                if let transition = FragmentLifecycle.transition(from: previous?.base, on: .written(row.base, imported: true), at: now) {
                    try registry.record(transition, id: row.id, at: now)
                }
            }
        })
    }
}

/// The outcomes of one import, filled in on the log thread.
private final class ImportTally: Sendable {
    let outcomes: Mutex<[ImportOutcome]>

    init(_ outcomes: [ImportOutcome]) {
        self.outcomes = Mutex(outcomes)
    }
}
