import CarmaJSON
import FragmentCore

// The background work cycles do beside repairs, on PostgreSQL: the scrub's shared cursor and the
// scheduled-scrub slot, removing expired fragments and old feed entries, and cycle reports.

extension ClusterStore {
    // MARK: Scrub

    static let lockScrub = PGStatement("carma_scrub_lock", "SELECT cursor, passes FROM carma_scrub WHERE name = 'payloads' FOR UPDATE SKIP LOCKED")
    static let scrubRows = PGStatement(
        "carma_scrub_rows",
        """
        SELECT \(rowColumns), p.version, p.record, r.version, r.record
        FROM carma_fragments f LEFT JOIN carma_payloads p ON p.id = f.id LEFT JOIN carma_redundancy r ON r.id = f.id
        WHERE f.id > $1 ORDER BY f.id LIMIT $2
        """)
    static let moveScrub = PGStatement("carma_scrub_move", "UPDATE carma_scrub SET cursor = $1, passes = passes + $2 WHERE name = 'payloads'")
    /// The copy written again, and the fragment's history told so (as the embedded store tells it).
    static let rewriteRedundancy = PGStatement(
        "carma_rewrite_redundancy",
        """
        WITH r AS (INSERT INTO carma_redundancy (id, version, record) VALUES ($1, $2, $3)
                   ON CONFLICT (id) DO UPDATE SET version = excluded.version, record = excluded.record)
        INSERT INTO carma_events (id, at, kind, detail) VALUES ($1, $4, $5, $6)
        """)
    static let claimScrubSlot = PGStatement(
        "carma_scrub_slot", "UPDATE carma_scrub SET slice_at = $1 WHERE name = 'payloads' AND slice_at < $1 RETURNING 1")

    /// A scheduled cycle scrubs only if no node has in the current interval (slot = now ÷ interval).
    public func claimScrub(scheduled: Bool) -> Bool {
        guard scheduled else { return true }
        let slot = Timestamp.now.milliseconds / max(1, self.configuration.scrubInterval.wholeMilliseconds)
        let rows = try? self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.claimScrubSlot, [.int(slot)], deadline: deadline) }
        return rows?.count == 1
    }

    /// Verifies the next `limit` records in id order: both of a fragment's (its row in
    /// `carma_payloads` and its copy in `carma_redundancy`) at once, so `limit / 2` fragments, counted
    /// as the embedded store counts them and as the engine's budget and progress expect (one shared
    /// cursor: another node finds it locked and scrubs nothing). A damaged record turns its fragment
    /// blank and queued; a damaged redundancy copy is written again from an intact primary.
    public func scrub(limit: Int) -> ScrubSlice {
        let fragments = max(1, (limit + 1) / 2)
        var findings: [(id: String, finding: ScrubFinding)] = []
        var blanks: [(FragmentRow, BlankReason)] = []
        var verified = 0
        var wrapped = false
        do {
            try self.pool.transaction { connection, deadline throws(PGError) in
                guard let cursor = try connection.run(Self.lockScrub, [], deadline: deadline).first?.string(0) else { return }
                let rows = try connection.run(Self.scrubRows, [.text(cursor), .int(fragments)], deadline: deadline)
                for r in rows.all {
                    guard let row = Self.row(r) else { continue }
                    verified += 2
                    guard row.status != .blank else {
                        findings.append((row.id, .skipped))
                        continue
                    }
                    let c = Self.rowColumnCount
                    let primary = Self.verify(version: r.int(c), record: r.bytes(c + 1), row.version, length: row.recordLength, checksum: row.checksum)
                    let copy = Self.verify(version: r.int(c + 2), record: r.bytes(c + 3), row.version, length: row.exactLength, checksum: row.exactChecksum)
                    if let damage = primary {
                        blanks.append((row, damage))
                        findings.append((row.id, .damaged(damage)))
                    } else if let damage = copy {
                        if row.status == .ok, let record = r.bytes(c + 1) {
                            let event = HistoryDetail.redundancyRepaired(version: row.version, reason: damage)
                            try connection.run(
                                Self.rewriteRedundancy,
                                [
                                    .text(row.id), .uint(row.version), .bytes(record), .int(Timestamp.now.milliseconds),
                                    .text(EventKind.redundancyRepaired.rawValue), .text(Self.json(event)),
                                ],
                                deadline: deadline)
                            try connection.run(Self.trimEvents, [.text(row.id), .int(self.configuration.retention.eventsPerFragment)], deadline: deadline)
                            findings.append((row.id, .redundancyRepaired(damage)))
                        } else {
                            findings.append((row.id, .redundancyDamaged(damage)))
                        }
                    } else {
                        findings.append((row.id, .intact))
                    }
                }
                wrapped = rows.count < fragments
                let next = wrapped ? "" : (rows.all.last?.string(0) ?? "")
                try connection.run(Self.moveScrub, [.text(next), .int(wrapped ? 1 : 0)], deadline: deadline)
            }
        } catch {
            self.logger.warning("scrub slice failed", metadata: ["error": "\(error)"])
            return ScrubSlice(scrubbed: 0, findings: [], passCompleted: false)
        }
        for (row, damage) in blanks {
            _ = self.markBlank(row, reason: damage, detectedBy: .scrub, priority: .scrub)
        }
        for (_, finding) in findings {
            if case .redundancyRepaired = finding { self.counters.redundancyDamage.add(1, ordering: .relaxed) }
            if case .redundancyDamaged = finding { self.counters.redundancyDamage.add(1, ordering: .relaxed) }
        }
        return ScrubSlice(scrubbed: verified, findings: findings, passCompleted: wrapped)
    }

    /// nil when the record is there at that version and verifies; else what is wrong.
    static func verify(version: Int64?, record: [UInt8]?, _ expected: UInt64, length: Int, checksum: UInt32) -> BlankReason? {
        guard let version, version == Int64(expected), let record else { return .missing }
        return record.count == length && CRC32C.checksum(record) == checksum ? nil : .checksumMismatch
    }

    // MARK: Compaction

    static let expire = PGStatement(
        "carma_expire",
        """
        WITH x AS (DELETE FROM carma_fragments WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING id),
        p AS (DELETE FROM carma_payloads WHERE id IN (SELECT id FROM x)),
        r AS (DELETE FROM carma_redundancy WHERE id IN (SELECT id FROM x)),
        q AS (DELETE FROM carma_repairs WHERE id IN (SELECT id FROM x)),
        e AS (DELETE FROM carma_events WHERE id IN (SELECT id FROM x)),
        m AS (DELETE FROM carma_meanings WHERE id IN (SELECT id FROM x)),
        c AS (INSERT INTO carma_changes (id, at) SELECT id, $1::bigint FROM x)
        SELECT count(*) FROM x
        """)
    static let pruneChanges = PGStatement("carma_prune_changes", "DELETE FROM carma_changes WHERE at < $1")
    static let pruneCycles = PGStatement("carma_prune_cycles", "DELETE FROM carma_cycles WHERE id <= (SELECT max(id) FROM carma_cycles) - $1")

    /// PostgreSQL reclaims space itself (autovacuum); what is left is removing expired fragments,
    /// change-feed entries every node has seen (an hour old) and old cycle reports, and finishing
    /// namespace deletions cut short.
    public func compact(threshold: Double, maxSegments: Int) -> CompactionSummary {
        var summary = CompactionSummary()
        let now = Timestamp.now
        do {
            try self.pool.with { connection, deadline throws(PGError) in
                summary.expired = Int(try connection.run(Self.expire, [.int(now.milliseconds)], deadline: deadline).first?.int(0) ?? 0)
                try connection.run(Self.pruneChanges, [.int(now.milliseconds - ChangeFollower.retentionMilliseconds)], deadline: deadline)
                try connection.run(Self.pruneCycles, [.int(self.configuration.retention.cycleReports)], deadline: deadline)
            }
        } catch {
            self.logger.warning("compaction failed", metadata: ["error": "\(error)"])
        }
        if summary.expired > 0 { self.follower.poke() }
        self.settleNamespaces()
        return summary
    }

    // MARK: Cycle reports

    static let saveCycle = PGStatement(
        "carma_save_cycle",
        """
        INSERT INTO carma_cycles (id, node, trigger, state, started_at, finished_at, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (id) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at, report = excluded.report
        """)
    static let oneCycle = PGStatement("carma_cycle", "SELECT report FROM carma_cycles WHERE id = $1")
    static let recentCycles = PGStatement("carma_recent_cycles", "SELECT report FROM carma_cycles ORDER BY id DESC LIMIT $1")
    /// This node's running cycles (it restarted), and any node's started longer ago than a cycle
    /// can run (a node that died, under a name it does not come back with: the default carries the pid).
    static let unfinishedCycles = PGStatement(
        "carma_unfinished_cycles", "SELECT report FROM carma_cycles WHERE state = 'running' AND (node = $1 OR started_at < $2)")
    /// Another node's cycles still marked running past their lease: that node died in them.
    static let abandonedCycles = PGStatement(
        "carma_abandoned_cycles", "SELECT id, node, report FROM carma_cycles WHERE state = 'running' AND node <> $1 AND started_at < $2")
    /// Marks one abandoned cycle interrupted, keeping the node that ran it; only if it is still running.
    static let interruptCycle = PGStatement(
        "carma_interrupt_cycle", "UPDATE carma_cycles SET state = 'interrupted', report = $2 WHERE id = $1 AND state = 'running'")
    static let lastCycle = PGStatement("carma_last_cycle", "SELECT COALESCE(max(id), 0) FROM carma_cycles")
    static let nextCycle = PGStatement("carma_next_cycle", "SELECT nextval('carma_cycle_ids')")

    public func saveCycleReport(id: Int64, trigger: String, state: String, startedAt: Timestamp, finishedAt: Timestamp?, report: JSONValue, wait: Bool) {
        var report = report
        if case .object(var object) = report {
            object["node"] = .string(self.configuration.nodeName)
            report = .object(object)
        }
        let text = String(decoding: report.bytes, as: UTF8.self)
        do {
            _ = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.saveCycle,
                    [.int(id), .text(self.configuration.nodeName), .text(trigger), .text(state), .int(startedAt.milliseconds), .optional(finishedAt?.milliseconds), .text(text)],
                    deadline: deadline)
            }
        } catch {
            self.logger.warning("could not save a cycle report", metadata: ["cycle.id": "\(id)", "error": "\(error)"])
        }
    }

    private func reports(_ statement: PGStatement, _ parameters: [PGValue]) -> [JSONValue] {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in try connection.run(statement, parameters, deadline: deadline) }
        return (rows?.all ?? []).compactMap { $0.string(0).flatMap { try? JSONParser.parse($0) } }
    }

    public func cycleReport(_ id: Int64) -> JSONValue? { self.reports(Self.oneCycle, [.int(id)]).first }
    public func recentCycleReports(limit: Int) -> [JSONValue] { self.reports(Self.recentCycles, [.int(limit)]) }
    public func unfinishedCycleReports() -> [JSONValue] {
        self.reports(Self.unfinishedCycles, [.text(self.configuration.nodeName), .int(self.cycleLeaseCutoff().milliseconds)])
    }

    private func cycleLeaseCutoff() -> Timestamp {
        Timestamp(milliseconds: Timestamp.now.milliseconds - self.configuration.cycleLease.wholeMilliseconds)
    }

    /// Marks interrupted the cycles of other nodes that are still marked running after their lease
    /// (issue 28: a node killed mid-cycle left it running until a node of the same name started).
    /// Called whenever this node starts a cycle.
    func interruptAbandonedCycles() {
        do {
            try self.pool.with { connection, deadline throws(PGError) in
                let rows = try connection.run(Self.abandonedCycles, [.text(self.configuration.nodeName), .int(self.cycleLeaseCutoff().milliseconds)], deadline: deadline)
                for row in rows.all {
                    guard let id = row.int(0), let text = row.string(2), case .object(var report)? = try? JSONParser.parse(text) else { continue }
                    report["state"] = "interrupted"
                    report["stop_reason"] = .string("node \(row.string(1) ?? "?") stopped during the cycle; marked by \(self.configuration.nodeName) after the cycle's lease")
                    try connection.run(Self.interruptCycle, [.int(id), .text(JSONValue.object(report).serialized)], deadline: deadline)
                    self.logger.notice("marked a dead node's cycle interrupted", metadata: ["cycle.id": "\(id)", "cycle.node": "\(row.string(1) ?? "?")"])
                }
            }
        } catch {
            self.logger.warning("could not check for abandoned cycles", metadata: ["error": "\(error)"])
        }
    }

    public func lastCycleID() -> Int64 {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.lastCycle, [], deadline: deadline) }
        return rows?.first?.int(0) ?? 0
    }

    public func newCycleID(local: Int64) -> Int64 {
        self.interruptAbandonedCycles()
        let rows = try? self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.nextCycle, [], deadline: deadline) }
        return rows?.first?.int(0) ?? local
    }
}
