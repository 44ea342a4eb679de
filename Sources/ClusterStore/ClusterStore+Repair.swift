import CarmaJSON
import FragmentCore

// The repair seams on PostgreSQL: a queue claimed with FOR UPDATE SKIP LOCKED and a lease, exact
// sources verified by this node, outcomes committed in one statement each.

extension ClusterStore {
    // MARK: Queue

    static let claim = PGStatement(
        "carma_claim",
        """
        UPDATE carma_repairs SET lease_owner = $1, lease_until = $2
        WHERE id IN (
            SELECT id FROM carma_repairs WHERE id IN (
                SELECT id FROM (
                    SELECT id, priority, enqueued_at, ROW_NUMBER() OVER (
                        PARTITION BY CASE WHEN strpos(id, '/') > 0 THEN split_part(id, '/', 1) ELSE '' END
                        ORDER BY priority, enqueued_at, id) AS turn
                    FROM carma_repairs
                    WHERE not_before <= $3 AND (lease_until IS NULL OR lease_until < $3 OR lease_owner = $1)) ranked
                ORDER BY turn, priority, enqueued_at, id LIMIT $4)
            FOR UPDATE SKIP LOCKED)
        RETURNING id, priority, enqueued_at, attempts, not_before, reason, last_error
        """)

    /// Claims up to `limit` due tickets for this node (leased until the lease runs out), namespaces
    /// taking turns (each namespace's most urgent first), as on one machine. Tickets leased by other
    /// nodes are skipped, not waited for.
    public func readyRepairs(limit: Int, now: Timestamp) throws(StoreError) -> [RepairTicket] {
        let leaseUntil = now.adding(milliseconds: self.configuration.repairLease.wholeMilliseconds)
        do {
            let claimed = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.claim, [.text(self.configuration.nodeName), .int(leaseUntil.milliseconds), .int(now.milliseconds), .int(limit)], deadline: deadline)
            }
            return claimed.all.compactMap { r -> RepairTicket? in
                guard let id = r.string(0), let priority = r.int(1).flatMap({ RepairPriority(rawValue: Int($0)) }), let enqueued = r.int(2),
                    let attempts = r.int(3), let notBefore = r.int(4), let reason = r.string(5)
                else { return nil }
                return RepairTicket(
                    id: id, priority: priority, enqueuedAt: Timestamp(milliseconds: enqueued), attempts: Int(attempts),
                    notBefore: Timestamp(milliseconds: notBefore), reason: reason, lastError: r.string(6))
            }.sorted { ($0.priority, $0.enqueuedAt, $0.id) < ($1.priority, $1.enqueuedAt, $1.id) }
        } catch {
            throw Self.storeError(error, doing: "claim repairs")
        }
    }

    static let depth = PGStatement("carma_queue_depth", "SELECT count(*), count(*) FILTER (WHERE not_before <= $1) FROM carma_repairs")

    public func repairQueueDepth(now: Timestamp) -> (total: Int, ready: Int) {
        let pool = self.pool
        let depth = self.queueDepths.read { () -> [Int]? in
            let rows = try? pool.with { connection, deadline throws(PGError) in try connection.run(Self.depth, [.int(now.milliseconds)], deadline: deadline) }
            guard let r = rows?.first else { return nil }
            return [Int(r.int(0) ?? 0), Int(r.int(1) ?? 0)]
        } ?? [0, 0]
        return (depth[0], depth[1])
    }

    static let dequeue = PGStatement("carma_dequeue", "DELETE FROM carma_repairs WHERE id = $1")

    public func dropRepair(_ id: String) {
        _ = try? self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.dequeue, [.text(id)], deadline: deadline) }
    }

    static let postpone = PGStatement(
        "carma_postpone",
        """
        WITH u AS (UPDATE carma_repairs SET attempts = $3, not_before = $4, last_error = $5, priority = COALESCE($6::integer, priority),
                   lease_owner = NULL, lease_until = NULL WHERE id = $1 AND EXISTS (SELECT 1 FROM carma_fragments WHERE id = $1 AND version = $2)
                   RETURNING id),
        \(ClusterStore.historyInsert(kinds: 8, details: 9, at: 7))
        SELECT count(*) FROM u
        """)

    public func postponeRepair(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recordEvent: Bool) throws(StoreError) {
        let now = Timestamp.now
        let event = LifecycleEvent.repairFailed(reason: reason, attempt: attempt, retryAt: retryAt, cycle: cycle, recorded: recordEvent)
        guard let transition = FragmentLifecycle.transition(from: target.row, on: event, at: now),
            case .postpone(let priority, let attempts, let notBefore, let error) = transition.queue
        else { return }
        do {
            _ = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.postpone,
                    [
                        .text(target.id), .uint(target.version), .int(attempts), .int(notBefore.milliseconds), .text(error), priority.map { .int($0.rawValue) } ?? .null,
                        .int(now.milliseconds), .texts(transition.history.map(\.kind.rawValue)), .texts(transition.history.map { Self.json($0.detail) }),
                    ],
                    deadline: deadline)
            }
        } catch {
            throw Self.storeError(error, doing: "postpone the repair of '\(target.id)'")
        }
    }

    // MARK: Sources of exact bytes

    public func repairTarget(_ id: String) -> RepairTarget? {
        self.row(id).map(RepairTarget.init(row:))
    }

    static let primaryRecord = PGStatement("carma_primary_record", "SELECT record FROM carma_payloads WHERE id = $1 AND version = $2")
    static let redundancyRecord = PGStatement("carma_redundancy_record", "SELECT record FROM carma_redundancy WHERE id = $1 AND version = $2")

    public func exactRecord(_ target: RepairTarget, from tier: RepairTier) -> [UInt8]? {
        let record: [UInt8]?
        switch tier {
        case .primary:
            guard target.row.status != .reconstructed else { return nil }
            record = self.fetchRecord(Self.primaryRecord, target)
        case .cache:
            record = self.cache.withLock { cache in
                cache.use(target.id).flatMap { $0.version == target.version && $0.status == .ok ? $0.body : nil }
            }.map { ServedFragment.record(fromServedBody: $0, recordLength: target.exactLength) }
        case .redundancy:
            record = self.fetchRecord(Self.redundancyRecord, target)
        case .sketch:
            record = SketchRecovery.record(target, sketch: self.sketch(of: target.id))
        case .reconstruction, .none:
            return nil
        }
        guard let record, record.count == target.exactLength, CRC32C.checksum(record) == target.exactChecksum else { return nil }
        return record
    }

    private func fetchRecord(_ statement: PGStatement, _ target: RepairTarget) -> [UInt8]? {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.run(statement, [.text(target.id), .uint(target.version)], deadline: deadline)
        }
        return rows?.first?.bytes(0)
    }

    public func sourceDescription(_ tier: RepairTier) -> String {
        switch tier {
        case .primary: "carma_payloads"
        case .cache: "node cache (\(self.configuration.nodeName))"
        case .redundancy: "carma_redundancy"
        case .sketch: "the sketch in carma_fragments (the text kept verbatim)"
        case .reconstruction: "surviving context"
        case .none: "nothing"
        }
    }

    // MARK: Outcomes

    static let restoreOne = PGStatement(
        "carma_restore",
        """
        WITH \(ClusterStore.stateUpdate(from: 6)),
        p AS (INSERT INTO carma_payloads (id, version, record) SELECT id, $2::bigint, $3::bytea FROM u
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        r AS (INSERT INTO carma_redundancy (id, version, record) SELECT id, $2::bigint, $3::bytea FROM u WHERE $5::boolean
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        q AS (DELETE FROM carma_repairs WHERE id IN (SELECT id FROM u)),
        \(ClusterStore.historyInsert(kinds: 16, details: 17, at: 4)),
        c AS (INSERT INTO carma_changes (id, at) SELECT id, $4::bigint FROM u)
        SELECT count(*) FROM u
        """)

    /// Puts exact records back, each in one statement (row, record, queue, history, change feed);
    /// per item, whether it applied (false when the fragment changed or another node repaired it).
    public func restore(_ items: [Restoration]) throws(StoreError) -> [Bool] {
        var applied: [Bool] = []
        for item in items {
            let target = item.target
            let now = Timestamp.now
            // The queue's effect (dequeue) is the statement's shape; the state and history come from the transition.
            guard let transition = FragmentLifecycle.transition(from: target.row, on: .recovered(item), at: now), transition.queue == .dequeue else {
                applied.append(false)
                continue
            }
            do {
                let result = try self.pool.with { connection, deadline throws(PGError) in
                    try connection.run(
                        Self.restoreOne,
                        [.text(target.id), .uint(target.version), .bytes(item.record), .int(now.milliseconds), .bool(item.tier != .redundancy)]
                            + Self.transitionParameters(.recovered(item), transition),
                        deadline: deadline)
                }
                let done = result.first?.int(0) == 1
                if done {
                    let body = ServedFragment.makeBody(record: item.record, status: .ok, checksum: target.exactChecksum)
                    self.cache.withLock { $0.set(target.id, NodeCache.Entry(version: target.version, status: .ok, checksum: target.exactChecksum, body: body)) }
                }
                applied.append(done)
            } catch {
                throw Self.storeError(error, doing: "restore '\(target.id)'")
            }
        }
        self.follower.poke()
        return applied
    }

    static let reconstructOne = PGStatement(
        "carma_reconstruct",
        """
        WITH \(ClusterStore.stateUpdate(from: 9)),
        p AS (INSERT INTO carma_payloads (id, version, record) SELECT id, $2::bigint, $3::bytea FROM u
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record),
        q AS (UPDATE carma_repairs SET attempts = $5, not_before = $6, priority = COALESCE($7::integer, priority), lease_owner = NULL, lease_until = NULL,
                  last_error = $8 WHERE id IN (SELECT id FROM u)),
        \(ClusterStore.historyInsert(kinds: 19, details: 20, at: 4)),
        c AS (INSERT INTO carma_changes (id, at) SELECT id, $4::bigint FROM u)
        SELECT count(*) FROM u
        """)

    public func saveReconstruction(_ target: RepairTarget, _ rebuilt: RebuiltFragment, attempt: Int, cycle: Int64?, retryAt: Timestamp) throws(StoreError) -> Bool {
        let now = Timestamp.now
        let stored = rebuilt.stored(for: target, at: now, cycle: cycle)
        let event = LifecycleEvent.reconstructed(stored, attempt: attempt, retryAt: retryAt)
        guard let transition = FragmentLifecycle.transition(from: target.row, on: event, at: now),
            case .postpone(let priority, let attempts, let notBefore, let error) = transition.queue
        else { return false }
        do {
            let result = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.reconstructOne,
                    [
                        .text(target.id), .uint(target.version), .bytes(stored.record), .int(now.milliseconds), .int(attempts), .int(notBefore.milliseconds),
                        priority.map { .int($0.rawValue) } ?? .null, .text(error),
                    ] + Self.transitionParameters(event, transition),
                    deadline: deadline)
            }
            guard result.first?.int(0) == 1 else { return false }
        } catch {
            throw Self.storeError(error, doing: "save the reconstruction of '\(target.id)'")
        }
        let body = ServedFragment.makeBody(record: stored.record, status: .reconstructed, checksum: stored.checksum)
        self.cache.withLock { $0.set(target.id, NodeCache.Entry(version: target.version, status: .reconstructed, checksum: stored.checksum, body: body)) }
        self.follower.poke()
        return true
    }
}
