import CarmaJSON
import CarmaText
import Dispatch
import FragmentCore

// Writes, reads and the blanks reads find. Every write is one transaction under a per-id advisory
// lock (so preconditions hold across nodes, new ids included), acknowledged after COMMIT.

extension ClusterStore {
    static let lockID = PGStatement("carma_lock_id", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
    static let current = PGStatement(
        "carma_current", "SELECT nextval('carma_versions'), \(rowColumns) FROM (SELECT 1) one LEFT JOIN carma_fragments f ON f.id = $1")
    /// A put's look-up: a version, the namespace's quota and the current row, holding the
    /// namespace's catalog row (KEY SHARE) until the commit. No row at all: no such namespace.
    static let currentInNamespace = PGStatement(
        "carma_current_in_namespace",
        "SELECT nextval('carma_versions'), n.quota_fragments, n.quota_bytes, \(rowColumns) FROM carma_namespaces n LEFT JOIN carma_fragments f ON f.id = $1 WHERE n.name = $2 FOR KEY SHARE OF n")
    static let upsert = PGStatement(
        "carma_upsert",
        """
        WITH f AS (
            INSERT INTO carma_fragments (id, version, status, checksum, record_length, size, links, tags, created_at, updated_at, expires_at, sketch)
            VALUES ($1, $2, 'ok', $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = 'ok', checksum = excluded.checksum,
                record_length = excluded.record_length, size = excluded.size, links = excluded.links, tags = excluded.tags,
                created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at, sketch = excluded.sketch,
                blank_reason = NULL, lost_at = NULL, detected_by = NULL, original_checksum = NULL, original_length = NULL, confidence = NULL),
        p AS (INSERT INTO carma_payloads (id, version, record) VALUES ($1, $2, $12)
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        r AS (INSERT INTO carma_redundancy (id, version, record) VALUES ($1, $2, $12)
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        q AS (DELETE FROM carma_repairs WHERE id = $1),
        e AS (INSERT INTO carma_events (id, at, kind, detail) VALUES ($1, $9, $13, $14)),
        c AS (INSERT INTO carma_changes (id, at) VALUES ($1, $9))
        SELECT 1
        """)
    static let remove = PGStatement(
        "carma_remove",
        """
        WITH f AS (DELETE FROM carma_fragments WHERE id = $1),
        p AS (DELETE FROM carma_payloads WHERE id = $1),
        r AS (DELETE FROM carma_redundancy WHERE id = $1),
        q AS (DELETE FROM carma_repairs WHERE id = $1),
        e AS (DELETE FROM carma_events WHERE id = $1),
        m AS (DELETE FROM carma_meanings WHERE id = $1),
        k AS (DELETE FROM carma_embed_claims WHERE id = $1),
        c AS (INSERT INTO carma_changes (id, at) VALUES ($1, $2))
        SELECT 1
        """)
    static let embeddingDimension = PGStatement(
        "carma_embedding_dimension",
        """
        WITH i AS (INSERT INTO carma_settings (key, value) VALUES ('embedding_dimension', $1) ON CONFLICT (key) DO NOTHING RETURNING value)
        SELECT value FROM i UNION ALL SELECT value FROM carma_settings WHERE key = 'embedding_dimension'
        """)
    static let trimEvents = PGStatement(
        "carma_trim_events",
        "DELETE FROM carma_events WHERE id = $1 AND sequence <= (SELECT sequence FROM carma_events WHERE id = $1 ORDER BY sequence DESC OFFSET $2 LIMIT 1)")

    /// Writes run on this queue, not on the HTTP thread that asked (which the completion answers).
    static let writers = DispatchQueue(label: "carma-cluster-writes", attributes: .concurrent)

    public func put(
        _ id: String, _ input: FragmentInput, precondition: WritePrecondition, completion: @escaping @Sendable (Result<PutOutcome, StoreError>) -> Void
    ) {
        if let failure = FragmentInput.check(id, input, limits: self.configuration.limits) {
            return completion(.failure(failure))
        }
        guard !self.closed.load(ordering: .relaxed) else { return completion(.failure(.closed)) }
        // The deadline runs from the request, not from when a writer thread takes it up: with the
        // database stalled, writes queued behind others answered 503 after twice the timeout.
        let deadline = ContinuousClock.now.advanced(by: self.pool.timeout)
        Self.writers.async {
            completion(self.putNow(id, input, precondition: precondition, deadline: deadline))
        }
    }

    private func putNow(
        _ id: String, _ input: FragmentInput, precondition: WritePrecondition, deadline: ContinuousClock.Instant
    ) -> Result<PutOutcome, StoreError> {
        let sketch = self.sketch(input, key: id)
        do {
            let outcome: Result<PutOutcome, StoreError> = try self.pool.transaction(deadline: deadline) { connection, deadline throws(PGError) in
                try connection.run(Self.lockID, [.text(id)], deadline: deadline)
                let namespace = FragmentKey.namespace(of: id)
                let found = try connection.run(Self.currentInNamespace, [.text(id), .text(namespace)], deadline: deadline)
                guard let first = found.first else { return .failure(.namespaceNotFound(namespace)) }
                guard let version = first.int(0) else {
                    throw PGError(kind: .server, state: nil, message: "no version from the database")
                }
                let now = Timestamp.now
                let quota = NamespaceQuota(fragments: first.int(1).map { Int($0) }, bytes: first.int(2))
                let previous = first.isNull(3) ? nil : Self.row(first, from: 3)
                let replaced = previous.flatMap { $0.isExpired(at: now) ? nil : $0 }
                if let failure = precondition.check(replaced, id: id) {
                    return .failure(failure)
                }
                // Checked under the namespace's quota lock: two nodes cannot both pass the last slot.
                let change = NamespaceUsage(fragments: previous == nil ? 1 : 0, bytes: Int64(input.content.utf8.count) - Int64(previous?.size ?? 0))
                if let failure = try Self.admit(change, to: namespace, quota: quota, planned: NamespaceUsage(), used: { () throws(PGError) in
                    try self.lockedUsage(namespace, connection, deadline)
                }) {
                    return .failure(failure)
                }
                if let dimension = input.embedding?.count {
                    // The first fragment stored with a client embedding fixes the dimension for all.
                    let stored = try connection.run(Self.embeddingDimension, [.text(String(dimension))], deadline: deadline).first?.string(0).flatMap { Int($0) }
                    if let stored { self.embeddingDimension.withLock { $0 = stored } }
                    if let stored, stored != dimension {
                        return .failure(.invalid(field: "embedding", "this store's embeddings have \(stored) dimensions, not \(dimension)"))
                    }
                }
                let record = FragmentRecord(id: id, version: UInt64(version), input: input, createdAt: replaced?.createdAt ?? now, updatedAt: now)
                let bytes = record.encode()
                let checksum = CRC32C.checksum(bytes)
                let event = HistoryDetail.written(version: UInt64(version), size: record.size)
                try connection.run(
                    Self.upsert,
                    [
                        .text(id), .int(version), .uint(checksum), .int(bytes.count), .int(record.size), .texts(input.links), .texts(input.tags),
                        .int(record.createdAt.milliseconds), .int(now.milliseconds), .optional(input.expiresAt?.milliseconds),
                        .bytes(sketch.encode()), .bytes(bytes), .text(replaced == nil ? "created" : "updated"),
                        .text(String(decoding: JSONValue.object(event).bytes, as: UTF8.self)),
                    ], deadline: deadline)
                if previous != nil {
                    // A new fragment has one event; an old one may have reached the retention limit.
                    try connection.run(Self.trimEvents, [.text(id), .int(self.configuration.retention.eventsPerFragment)], deadline: deadline)
                }
                let body = ServedFragment.makeBody(record: bytes, status: .ok, checksum: checksum)
                return .success(
                    PutOutcome(
                        created: replaced == nil, fragment: ServedFragment(body: body, version: UInt64(version), status: .ok, checksum: checksum)))
            }
            if case .success(let outcome) = outcome {
                self.cache.withLock {
                    $0.set(id, NodeCache.Entry(version: outcome.fragment.version, status: .ok, checksum: outcome.fragment.checksum, body: outcome.fragment.body))
                }
                self.follower.poke()
                self.embedder.poke()
            }
            return outcome
        } catch {
            return .failure(Self.storeError(error, doing: "store '\(id)'"))
        }
    }

    public func delete(_ id: String, precondition: WritePrecondition, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        guard !self.closed.load(ordering: .relaxed) else { return completion(.failure(.closed)) }
        let deadline = ContinuousClock.now.advanced(by: self.pool.timeout)
        Self.writers.async {
            do throws(PGError) {
                let outcome: Result<Void, StoreError> = try self.pool.transaction(deadline: deadline) { connection, deadline throws(PGError) in
                    try connection.run(Self.lockID, [.text(id)], deadline: deadline)
                    let found = try connection.run(Self.current, [.text(id)], deadline: deadline)
                    let now = Timestamp.now
                    guard let first = found.first, !first.isNull(1), let previous = Self.row(first, from: 1), !previous.isExpired(at: now) else {
                        return .failure(.notFound(id))
                    }
                    if let failure = precondition.check(previous, id: id) {
                        return .failure(failure)
                    }
                    try connection.run(Self.remove, [.text(id), .int(now.milliseconds)], deadline: deadline)
                    return .success(())
                }
                if case .success = outcome {
                    self.cache.withLock { $0.remove(id) }
                    self.follower.poke()
                }
                completion(outcome)
            } catch {
                completion(.failure(Self.storeError(error, doing: "delete '\(id)'")))
            }
        }
    }

    // MARK: Reading

    static let readOne = PGStatement(
        "carma_read",
        """
        SELECT \(rowColumns), q.enqueued_at, p.version, CASE WHEN f.version = $2 THEN NULL ELSE p.record END,
               q.attempts, q.not_before, q.last_error
        FROM carma_fragments f LEFT JOIN carma_payloads p ON p.id = f.id LEFT JOIN carma_repairs q ON q.id = f.id
        WHERE f.id = $1
        """)

    /// Reads a fragment: its row and (unless this node's cache holds that version) its record in one
    /// round trip, the record verified against the row's checksum. A missing or damaged record turns
    /// the fragment blank for every node and queues its repair. While the database does not answer,
    /// the node's cached copy is served, else a stub saying so.
    public func read(_ id: String) -> ReadResult {
        self.read(id, attempt: 0)
    }

    private func read(_ id: String, attempt: Int) -> ReadResult {
        // Another node changing the fragment between the look-up and marking it blank makes the read
        // look again; a fragment rewritten that often is answered as busy.
        guard attempt < 4 else { return .unavailable("'\(id)' changed during every attempt to read it") }
        let cached = self.cache.withLock { $0.use(id) }
        let found: PGRows
        do {
            found = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.readOne, [.text(id), .int(cached.map { Int64($0.version) } ?? -1)], deadline: deadline)
            }
        } catch {
            if error.kind == .unavailable, let cached {
                self.counters.cacheHits.add(1, ordering: .relaxed)
                return .fragment(ServedFragment(body: cached.body, version: cached.version, status: cached.status, checksum: cached.checksum))
            }
            return error.kind == .unavailable ? .backendUnavailable(error.message) : .unavailable("\(error)")
        }
        let now = Timestamp.now
        guard let r = found.first, let row = Self.row(r), !row.isExpired(at: now) else {
            if cached != nil { self.cache.withLock { $0.remove(id) } }
            return .notFound
        }
        let queuedAt = r.int(Self.rowColumnCount).map(Timestamp.init(milliseconds:))
        if row.status == .blank {
            let notBefore = r.int(Self.rowColumnCount + 4) ?? 0
            let progress = RepairProgress(
                attempts: Int(clamping: r.int(Self.rowColumnCount + 3) ?? 0), lastError: r.string(Self.rowColumnCount + 5),
                notBefore: notBefore > 0 ? Timestamp(milliseconds: notBefore) : nil)
            return .blank(BlankFragment(row: row, queuedAt: queuedAt, progress: progress))
        }
        if let cached, cached.version == row.version, cached.status == row.status, cached.checksum == row.checksum {
            self.counters.cacheHits.add(1, ordering: .relaxed)
            return .fragment(ServedFragment(body: cached.body, version: row.version, status: row.status, checksum: row.checksum))
        }
        self.counters.cacheMisses.add(1, ordering: .relaxed)
        let payloadVersion = r.int(Self.rowColumnCount + 1)
        let record = r.bytes(Self.rowColumnCount + 2)
        let damage: BlankReason
        if payloadVersion == nil || payloadVersion != Int64(row.version) {
            damage = .missing
        } else if let record, record.count == row.recordLength, CRC32C.checksum(record) == row.checksum {
            let body = ServedFragment.makeBody(record: record, status: row.status, checksum: row.checksum)
            self.cache.withLock { $0.set(id, NodeCache.Entry(version: row.version, status: row.status, checksum: row.checksum, body: body)) }
            return .fragment(ServedFragment(body: body, version: row.version, status: row.status, checksum: row.checksum))
        } else if record == nil, cached?.version == row.version {
            // The cached version matches but its status or checksum changed (a repair): read again.
            self.cache.withLock { $0.remove(id) }
            return self.read(id, attempt: attempt + 1)
        } else {
            damage = .checksumMismatch
        }
        switch self.markBlank(row, reason: damage, detectedBy: .read, priority: .servedBlank) {
        case .some(let blank): return .blank(blank)
        case .none: return self.read(id, attempt: attempt + 1)
        }
    }

    static let markLost = PGStatement(
        "carma_mark_lost",
        """
        WITH \(ClusterStore.stateUpdate(from: 6)),
        q AS (INSERT INTO carma_repairs (id, priority, enqueued_at, reason) SELECT id, $4::integer, $3::bigint, $5::text FROM u
              ON CONFLICT (id) DO UPDATE SET priority = LEAST(carma_repairs.priority, excluded.priority)),
        \(ClusterStore.historyInsert(kinds: 16, details: 17, at: 3))
        SELECT count(*) FROM u
        """)

    /// Turns a version blank for every node and queues its repair, in one statement. Returns the
    /// blank, or nil when the fragment changed meanwhile (the caller reads again). While the database
    /// does not answer, the blank is answered without being recorded (the next read finds it again).
    func markBlank(_ row: FragmentRow, reason: BlankReason, detectedBy: Detection, priority: RepairPriority) -> BlankFragment? {
        let now = Timestamp.now
        let event = LifecycleEvent.damaged(reason, detectedBy: detectedBy, priority: priority)
        guard let transition = FragmentLifecycle.transition(from: row, on: event, at: now), let blank = transition.row,
            case .enqueue(let queuePriority, let queueReason) = transition.queue
        else { return nil }
        self.cache.withLock { $0.remove(row.id) }
        do {
            let result = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.markLost,
                    [.text(row.id), .uint(row.version), .int(now.milliseconds), .int(queuePriority.rawValue), .text(queueReason)]
                        + Self.transitionParameters(event, transition),
                    deadline: deadline)
            }
            guard result.first?.int(0) == 1 else {
                // Already blank (another node found it first) or replaced: the caller reads again.
                return nil
            }
        } catch {
            self.logger.warning("could not record a blank", metadata: ["fragment.id": "\(row.id)", "error": "\(error)"])
            return BlankFragment(row: blank, queuedAt: nil)
        }
        self.counters.detected(reason)
        self.logger.info(
            "fragment turned blank",
            metadata: ["fragment.id": "\(row.id)", "fragment.version": "\(row.version)", "reason": "\(reason.rawValue)", "detected_by": "\(detectedBy.rawValue)"])
        return BlankFragment(row: blank, queuedAt: now)
    }

    static func json(_ object: JSONObject) -> String {
        String(decoding: JSONValue.object(object).bytes, as: UTF8.self)
    }

    /// Sketches a fragment against this node's term statistics.
    func sketch(_ input: FragmentInput, key: String) -> Sketch {
        self.text.sketch(input, key: key)
    }
}
