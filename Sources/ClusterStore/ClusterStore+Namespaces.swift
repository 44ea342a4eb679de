import CarmaJSON
import CarmaText
import FragmentCore

// Namespaces in cluster mode: the catalog (ClusterCatalog.swift), usage and quotas, batch writes in
// one transaction, and deleting a namespace.
//
// Locks, always taken in this order so that no two transactions wait on each other in a circle:
// the fragments' id locks (advisory, ids in sorted order), the namespace's catalog row (FOR KEY
// SHARE: every write into the namespace holds it, so a deletion waits for them and later writes
// find no namespace), the namespace's quota lock (advisory; only writes that grow a namespace with a
// quota take it, so they pass the quota one at a time), then the rows written.

extension ClusterStore {
    public var namespaces: any NamespaceCatalog { self.catalog }

    // MARK: Usage

    /// Live rows and content bytes per namespace, from the counters the database keeps in the same
    /// transactions as the writes (a row trigger on `carma_fragments`): up to
    /// `ClusterSchema.usageShards` small rows per namespace, whatever it holds. Fragments past their
    /// expiry count until compaction removes them, as on one machine.
    static let usageAll = PGStatement(
        "carma_usage_all",
        "SELECT namespace, sum(fragments), sum(bytes) FROM carma_namespace_usage GROUP BY namespace HAVING sum(fragments) <> 0 OR sum(bytes) <> 0")
    static let usageOne = PGStatement(
        "carma_usage_one", "SELECT COALESCE(sum(fragments), 0), COALESCE(sum(bytes), 0) FROM carma_namespace_usage WHERE namespace = $1")

    public func usage() -> [String: NamespaceUsage] {
        do {
            let rows = try self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.usageAll, [], deadline: deadline) }
            var usage: [String: NamespaceUsage] = [:]
            for r in rows.all {
                if let name = r.string(0), let fragments = r.int(1), let bytes = r.int(2) { usage[name] = NamespaceUsage(fragments: Int(fragments), bytes: bytes) }
            }
            self.lastUsage.withLock { $0 = usage }
            return usage
        } catch {
            // The last counts known while the database does not answer.
            return self.lastUsage.withLock { $0 }
        }
    }

    /// What one namespace holds now (one index range of the counters).
    public func usage(of namespace: String) -> NamespaceUsage {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.usageOne, [.text(namespace)], deadline: deadline)
        }
        guard let r = rows?.first, let fragments = r.int(0), let bytes = r.int(1) else {
            return self.lastUsage.withLock { $0[namespace] } ?? NamespaceUsage()
        }
        return NamespaceUsage(fragments: Int(fragments), bytes: bytes)
    }

    // MARK: Quotas

    /// The quota lock of a namespace: a seed of its own, so that it is not the lock of any id.
    static let lockQuota = PGStatement("carma_lock_quota", "SELECT pg_advisory_xact_lock(hashtextextended($1, 29299))")

    /// The namespace's usage under its quota lock: no other write that grows it passes meanwhile,
    /// and the counters read include every write that held the lock before (a new statement, so a
    /// new snapshot, after the lock is granted).
    func lockedUsage(_ namespace: String, _ connection: PGConnection, _ deadline: ContinuousClock.Instant) throws(PGError) -> NamespaceUsage {
        try connection.run(Self.lockQuota, [.text(namespace)], deadline: deadline)
        let r = try connection.run(Self.usageOne, [.text(namespace)], deadline: deadline).first
        return NamespaceUsage(fragments: Int(r?.int(0) ?? 0), bytes: r?.int(1) ?? 0)
    }

    /// Why a write changing `namespace`'s usage by `change` breaks its quota (`used`: the usage under
    /// the quota lock, fetched on first need; `planned`: what the same transaction adds before it);
    /// nil when it does not. As on one machine, only a write that grows a namespace is checked.
    static func admit(
        _ change: NamespaceUsage, to namespace: String, quota: NamespaceQuota, planned: NamespaceUsage, used: () throws(PGError) -> NamespaceUsage
    ) throws(PGError) -> StoreError? {
        guard quota != .none, change.fragments > 0 || change.bytes > 0 else { return nil }
        let after = try used() + planned + change
        return quota.allows(after) ? nil : .quotaExceeded(namespace, limit: quota, usage: after)
    }

    // MARK: Deleting a namespace

    static let deletionChunk = 1000
    /// Deletes up to a chunk of a deleted namespace's fragments (versions up to its floor), with all
    /// a DELETE of one removes, and announces each removal on the change feed.
    static let deleteNamespaceChunk = PGStatement(
        "carma_delete_namespace_chunk",
        """
        WITH x AS (DELETE FROM carma_fragments WHERE id IN (
                       SELECT id FROM carma_fragments WHERE namespace = $1 AND version <= $2 LIMIT \(deletionChunk) FOR UPDATE)
                   RETURNING id, expires_at),
        p AS (DELETE FROM carma_payloads WHERE id IN (SELECT id FROM x)),
        r AS (DELETE FROM carma_redundancy WHERE id IN (SELECT id FROM x)),
        q AS (DELETE FROM carma_repairs WHERE id IN (SELECT id FROM x)),
        e AS (DELETE FROM carma_events WHERE id IN (SELECT id FROM x)),
        m AS (DELETE FROM carma_meanings WHERE id IN (SELECT id FROM x)),
        k AS (DELETE FROM carma_embed_claims WHERE id IN (SELECT id FROM x)),
        c AS (INSERT INTO carma_changes (id, at) SELECT id, $3::bigint FROM x)
        SELECT count(*), count(*) FILTER (WHERE expires_at IS NULL OR expires_at > $3::bigint) FROM x
        """)
    /// Folds away a namespace's counter rows once they add up to nothing (only rows it holds locked,
    /// so a write counting into a row meanwhile is never lost).
    static let dropUsageRows = PGStatement(
        "carma_drop_usage_rows",
        """
        WITH locked AS (SELECT shard, fragments, bytes FROM carma_namespace_usage WHERE namespace = $1 FOR UPDATE)
        DELETE FROM carma_namespace_usage u WHERE u.namespace = $1 AND u.shard IN (SELECT shard FROM locked)
            AND (SELECT COALESCE(sum(fragments), 0) = 0 AND COALESCE(sum(bytes), 0) = 0 FROM locked)
        """)

    /// Removes the namespace from the catalog first (one transaction: it waits for the writes in
    /// flight, records the floor and revokes the tokens; no write lands in it afterwards), then
    /// deletes its fragments a chunk per transaction. A deletion cut short (the node stopped, the
    /// database went away) is finished by the next start of any node or the next compaction; until
    /// then the name cannot be created again, and an import can never bring back what it held.
    public func deleteNamespace(_ name: String, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void) {
        guard name != Namespace.default else {
            return completion(.failure(.invalid(field: "namespace", "the namespace default cannot be deleted")))
        }
        guard !self.closed.load(ordering: .relaxed) else { return completion(.failure(.closed)) }
        Self.writers.async {
            let floor: UInt64
            do throws(StoreError) {
                guard let recorded = try self.catalog.remove(name, floor: nil) else { return completion(.failure(.namespaceNotFound(name))) }
                floor = recorded
            } catch {
                return completion(.failure(error))
            }
            self.logger.info("namespace removed; deleting its fragments", metadata: ["namespace": "\(name)", "namespace.floor": "\(floor)"])
            completion(self.deleteFragments(of: name, floor: floor))
        }
    }

    /// Deletes every fragment of a removed namespace up to its floor; the count of those that were
    /// live (not expired).
    func deleteFragments(of name: String, floor: UInt64) -> Result<Int, StoreError> {
        var deleted = 0
        do {
            while true {
                let now = Timestamp.now
                let r = try self.pool.transaction { connection, deadline throws(PGError) in
                    try connection.run(Self.deleteNamespaceChunk, [.text(name), .uint(floor), .int(now.milliseconds)], deadline: deadline)
                }.first
                deleted += Int(r?.int(1) ?? 0)
                self.cache.withLock { $0.removeNamespace(name) }
                if (r?.int(0) ?? 0) < Self.deletionChunk { break }
            }
            _ = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.dropUsageRows, [.text(name)], deadline: deadline)
            }
        } catch {
            self.logger.warning(
                "a namespace's deletion was cut short; it is finished later", metadata: ["namespace": "\(name)", "error": "\(error)"])
            return .failure(Self.storeError(error, doing: "delete the fragments of namespace '\(name)'"))
        }
        // This node's index drops them (from the feed) before the deletion is answered.
        if let position = try? self.pool.with({ connection, deadline throws(PGError) in
            try connection.run(Self.feedPosition, [], deadline: deadline)
        }).first?.int(0) {
            self.follower.wait(until: position, timeout: 2)
        }
        return .success(deleted)
    }

    /// Deleted namespaces whose fragments are not all gone (a deletion cut short), with their floors:
    /// names out of the catalog that the usage counters say still hold something.
    static let unfinishedDeletions = PGStatement(
        "carma_unfinished_deletions",
        """
        SELECT u.namespace, fl.floor FROM carma_namespace_usage u JOIN carma_namespace_floors fl ON fl.name = u.namespace
        WHERE NOT EXISTS (SELECT 1 FROM carma_namespaces n WHERE n.name = u.namespace)
        GROUP BY u.namespace, fl.floor HAVING sum(u.fragments) > 0
        """)
    /// Namespaces that hold fragments but are neither in the catalog nor deleted (a database restored
    /// from before the catalog had them): taken back into the catalog.
    static let adoptNamespaces = PGStatement(
        "carma_adopt_namespaces",
        """
        INSERT INTO carma_namespaces (name, created_at)
        SELECT u.namespace, $1::bigint FROM carma_namespace_usage u
        WHERE NOT EXISTS (SELECT 1 FROM carma_namespaces n WHERE n.name = u.namespace)
          AND NOT EXISTS (SELECT 1 FROM carma_namespace_floors fl WHERE fl.name = u.namespace)
        GROUP BY u.namespace HAVING sum(u.fragments) > 0
        ON CONFLICT (name) DO NOTHING RETURNING name
        """)

    static let ensureDefault = PGStatement(
        "carma_ensure_default", "INSERT INTO carma_namespaces (name, created_at) VALUES ('default', 0) ON CONFLICT (name) DO NOTHING")

    /// At start and at each compaction: finishes the deletions cut short, and takes back into the
    /// catalog namespaces that hold fragments but were never removed. Several nodes may do it at
    /// once (each chunk deletes what is still there).
    func settleNamespaces() {
        do {
            _ = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.ensureDefault, [], deadline: deadline)
            }
            let adopted = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.adoptNamespaces, [.int(Timestamp.now.milliseconds)], deadline: deadline)
            }
            for r in adopted.all {
                self.logger.warning("a namespace holds fragments but was not in the catalog; added it back", metadata: ["namespace": "\(r.string(0) ?? "?")"])
            }
            let unfinished = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.unfinishedDeletions, [], deadline: deadline)
            }
            for r in unfinished.all {
                guard let name = r.string(0), let floor = r.int(1) else { continue }
                self.logger.notice("finishing the deletion of a namespace", metadata: ["namespace": "\(name)"])
                _ = self.deleteFragments(of: name, floor: UInt64(max(0, floor)))
            }
        } catch {
            self.logger.warning("could not check the namespaces' deletions", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Batch writes

    static let lockIDs = PGStatement("carma_lock_ids", "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) WITH ORDINALITY AS s(k, n) ORDER BY n")
    static let lockNamespaces = PGStatement(
        "carma_lock_namespaces",
        "SELECT name, quota_fragments, quota_bytes FROM carma_namespaces WHERE name = ANY($1::text[]) ORDER BY name FOR KEY SHARE")
    /// The rows of a batch's ids, each with its record when the item may be unchanged (`$2`: the
    /// item's content size, -1 when not asked).
    static let batchRows = PGStatement(
        "carma_batch_rows",
        """
        SELECT \(rowColumns), p.version, CASE WHEN f.status = 'ok' AND f.size = s.size::integer THEN p.record END
        FROM unnest($1::text[], $2::text[]) AS s(id, size) JOIN carma_fragments f ON f.id = s.id LEFT JOIN carma_payloads p ON p.id = f.id
        """)
    static let versions = PGStatement("carma_versions_batch", "SELECT nextval('carma_versions') FROM generate_series(1, $1::integer)")
    static let trimEventsOf = PGStatement(
        "carma_trim_events_batch",
        """
        DELETE FROM carma_events e USING (
            SELECT k.id, (SELECT sequence FROM carma_events WHERE id = k.id ORDER BY sequence DESC OFFSET $2 LIMIT 1) AS cut
            FROM unnest($1::text[]) AS k(id)) t
        WHERE e.id = t.id AND e.sequence <= t.cut
        """)

    /// One write of a batch, planned.
    private struct PlannedPut {
        var index: Int
        var id: String
        var input: FragmentInput
        var record: FragmentRecord
        var bytes: [UInt8]
        var checksum: UInt32
        var sketch: [UInt8]
        var created: Bool
        var previous: Bool
    }

    /// Several puts in one transaction (one commit), each with a result of its own: every check a put
    /// makes (precondition, unchanged input, namespace, quota, embedding dimension) is made before
    /// anything is written, so an item refused leaves the others to be written.
    public func put(batch: [BatchPut], completion: @escaping @Sendable ([Result<PutOutcome, StoreError>]) -> Void) {
        guard !batch.isEmpty else { return completion([]) }
        guard !self.closed.load(ordering: .relaxed) else { return completion(batch.map { _ in .failure(.closed) }) }
        let deadline = ContinuousClock.now.advanced(by: self.pool.timeout)
        Self.writers.async {
            completion(self.putBatchNow(batch, deadline: deadline))
        }
    }

    private func putBatchNow(_ batch: [BatchPut], deadline: ContinuousClock.Instant) -> [Result<PutOutcome, StoreError>] {
        var invalid = [StoreError?](repeating: nil, count: batch.count)
        var sketches: [[UInt8]?] = Array(repeating: nil, count: batch.count)
        for (index, item) in batch.enumerated() {
            if let failure = FragmentInput.check(item.id, item.input, limits: self.configuration.limits) {
                invalid[index] = failure
            } else {
                // CPU work, outside the transaction.
                sketches[index] = self.sketch(item.input, key: item.id).encode()
            }
        }
        let valid = batch.indices.filter { invalid[$0] == nil }
        guard !valid.isEmpty else { return invalid.map { .failure($0!) } }
        let results: [Result<PutOutcome, StoreError>?]
        do {
            results = try self.pool.transaction(deadline: deadline) { connection, deadline throws(PGError) in
                try self.writeBatch(batch, valid: valid, sketches: sketches, connection, deadline)
            }
        } catch {
            let failure = Self.storeError(error, doing: "store a batch of \(batch.count)")
            return batch.indices.map { .failure(invalid[$0] ?? failure) }
        }
        var written = false
        for result in results {
            if case .success(let outcome)? = result, !outcome.unchanged { written = true }
        }
        for (index, result) in results.enumerated() {
            guard case .success(let outcome)? = result, !outcome.unchanged else { continue }
            let id = batch[index].id
            self.cache.withLock {
                $0.set(id, NodeCache.Entry(version: outcome.fragment.version, status: .ok, checksum: outcome.fragment.checksum, body: outcome.fragment.body))
            }
        }
        if written {
            self.follower.poke()
            self.embedder.poke()
        }
        return batch.indices.map { index in invalid[index].map { .failure($0) } ?? results[index]! }
    }

    /// The batch's transaction: locks, checks in item order, then the writes.
    private func writeBatch(
        _ batch: [BatchPut], valid: [Int], sketches: [[UInt8]?], _ connection: PGConnection, _ deadline: ContinuousClock.Instant
    ) throws(PGError) -> [Result<PutOutcome, StoreError>?] {
        var results = [Result<PutOutcome, StoreError>?](repeating: nil, count: batch.count)
        let ids = Array(Set(valid.map { batch[$0].id })).sorted()
        try connection.run(Self.lockIDs, [.texts(ids)], deadline: deadline)
        let names = Array(Set(ids.map(FragmentKey.namespace(of:)))).sorted()
        var quotas: [String: NamespaceQuota] = [:]
        for r in try connection.run(Self.lockNamespaces, [.texts(names)], deadline: deadline).all {
            guard let name = r.string(0) else { continue }
            quotas[name] = NamespaceQuota(fragments: r.int(1).map { Int($0) }, bytes: r.int(2))
        }
        // The quota locks before any row is written (sorted, as every transaction takes them).
        var used: [String: NamespaceUsage] = [:]
        for name in names where (quotas[name] ?? .none) != .none {
            used[name] = try self.lockedUsage(name, connection, deadline)
        }
        // Current rows, and the records of items that may be unchanged.
        var sizes: [String: Int] = [:]
        // Only an id's first item can be unchanged (a later one follows a write of the batch).
        for index in valid where batch[index].unlessUnchanged && sizes[batch[index].id] == nil {
            sizes[batch[index].id] = batch[index].input.content.utf8.count
        }
        var stored: [String: (row: FragmentRow, record: [UInt8]?)] = [:]
        for r in try connection.run(Self.batchRows, [.texts(ids), .texts(ids.map { String(sizes[$0] ?? -1) })], deadline: deadline).all {
            guard let row = Self.row(r) else { continue }
            let payloadVersion = r.int(Self.rowColumnCount)
            stored[row.id] = (row, payloadVersion == Int64(row.version) ? r.bytes(Self.rowColumnCount + 1) : nil)
        }
        var versions = try connection.run(Self.versions, [.int(valid.count)], deadline: deadline).all.compactMap { $0.int(0) }.sorted()[...]
        guard versions.count == valid.count else { throw PGError(kind: .server, state: nil, message: "no versions from the database") }

        let now = Timestamp.now
        var pending: [String: FragmentRow] = [:]
        var planned: [String: NamespaceUsage] = [:]
        var dimension = self.embeddingDimension.withLock { $0 }
        var dimensionRead = false
        var writes: [PlannedPut] = []
        for index in valid {
            let item = batch[index]
            let namespace = FragmentKey.namespace(of: item.id)
            let version = versions.removeFirst()
            let previous = pending[item.id] ?? stored[item.id]?.row
            let replaced = previous.flatMap { $0.isExpired(at: now) ? nil : $0 }
            if let failure = item.precondition.check(replaced, id: item.id) {
                results[index] = .failure(failure)
                continue
            }
            if item.unlessUnchanged, pending[item.id] == nil, let replaced, let same = Self.holding(item.input, replaced, record: stored[item.id]?.record) {
                results[index] = .success(PutOutcome(created: false, unchanged: true, fragment: same))
                continue
            }
            guard let quota = quotas[namespace] else {
                results[index] = .failure(.namespaceNotFound(namespace))
                continue
            }
            let change = NamespaceUsage(
                fragments: previous == nil ? 1 : 0, bytes: Int64(item.input.content.utf8.count) - Int64(previous?.size ?? 0))
            let soFar = planned[namespace] ?? NamespaceUsage()
            if let failure = try Self.admit(change, to: namespace, quota: quota, planned: soFar, used: { used[namespace] ?? NamespaceUsage() }) {
                results[index] = .failure(failure)
                continue
            }
            if let wanted = item.input.embedding?.count {
                if !dimensionRead {
                    // The first vector the store keeps fixes the dimension (this one, if none is stored).
                    let stored = try connection.run(Self.embeddingDimension, [.text(String(wanted))], deadline: deadline).first?.string(0).flatMap { Int($0) }
                    if let stored { self.embeddingDimension.withLock { $0 = stored } }
                    dimension = stored
                    dimensionRead = true
                }
                if let dimension, dimension != wanted {
                    results[index] = .failure(.invalid(field: "embedding", "this store's embeddings have \(dimension) dimensions, not \(wanted)"))
                    continue
                }
            }
            planned[namespace] = soFar + change
            let record = FragmentRecord(id: item.id, version: UInt64(version), input: item.input, createdAt: replaced?.createdAt ?? now, updatedAt: now)
            let bytes = record.encode()
            let checksum = CRC32C.checksum(bytes)
            pending[item.id] = FragmentRow(
                id: item.id, version: UInt64(version), status: .ok, checksum: checksum, recordLength: bytes.count, size: record.size,
                links: item.input.links, tags: item.input.tags, createdAt: record.createdAt, updatedAt: now, expiresAt: item.input.expiresAt)
            writes.append(
                PlannedPut(
                    index: index, id: item.id, input: item.input, record: record, bytes: bytes, checksum: checksum, sketch: sketches[index]!,
                    created: replaced == nil, previous: previous != nil))
            let body = ServedFragment.makeBody(record: bytes, status: .ok, checksum: checksum)
            results[index] = .success(PutOutcome(created: replaced == nil, fragment: ServedFragment(body: body, version: UInt64(version), status: .ok, checksum: checksum)))
        }
        // Written a namespace at a time (in name order, an id's writes in item order): each
        // namespace's usage counter row is taken once, in the order every transaction takes them.
        let ordered = writes.enumerated().sorted { a, b in
            let (x, y) = (FragmentKey.namespace(of: a.element.id), FragmentKey.namespace(of: b.element.id))
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
        for write in ordered {
            let event = HistoryDetail.written(version: write.record.version, size: write.record.size)
            try connection.run(
                Self.upsert,
                [
                    .text(write.id), .uint(write.record.version), .uint(write.checksum), .int(write.bytes.count), .int(write.record.size),
                    .texts(write.input.links), .texts(write.input.tags), .int(write.record.createdAt.milliseconds), .int(now.milliseconds),
                    .optional(write.input.expiresAt?.milliseconds), .bytes(write.sketch), .bytes(write.bytes),
                    .text(write.created ? "created" : "updated"), .text(Self.json(event)),
                ], deadline: deadline)
        }
        let trimmed = Array(Set(writes.filter(\.previous).map(\.id)))
        if !trimmed.isEmpty {
            try connection.run(Self.trimEventsOf, [.texts(trimmed), .int(self.configuration.retention.eventsPerFragment)], deadline: deadline)
        }
        return results
    }

    /// The fragment as served when `row` (readable, exact) holds exactly `input` in its `record`;
    /// nil otherwise.
    static func holding(_ input: FragmentInput, _ row: FragmentRow, record: [UInt8]?) -> ServedFragment? {
        guard row.status == .ok, row.size == input.content.utf8.count, let record, record.count == row.recordLength,
            CRC32C.checksum(record) == row.checksum, let decoded = FragmentRecord.decode(record), decoded.input == input
        else { return nil }
        return ServedFragment(
            body: ServedFragment.makeBody(record: record, status: .ok, checksum: row.checksum), version: row.version, status: .ok, checksum: row.checksum)
    }
}
