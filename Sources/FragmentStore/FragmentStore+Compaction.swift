import FragmentCore
import Dispatch
import Synchronization

extension FragmentStore {
    /// Compacts sealed segments of both logs whose live share is below `threshold`: live records are
    /// copied forward and synced, index and registry repointed, and only then the old segment is
    /// deleted, so a crash at any step leaves every acknowledged record reachable. A tombstone is kept
    /// (copied forward) until its segment is the oldest of its log: only then can no older record of
    /// its id survive there.
    ///
    /// Fragments expired by now are deleted first, each with a tombstone (so that a registry rebuilt
    /// from the logs never brings back an older version), which leaves their records to be dropped.
    public func compact(threshold: Double, maxSegments: Int) -> CompactionSummary {
        var summary = CompactionSummary()
        summary.expired = self.deleteExpired(now: .now)
        for log in [self.primaryLog, self.redundancyLog] {
            // Segments an export is reading from wait for the next cycle.
            let pinned = log.volume == .primary ? self.state.withLock { Set($0.pinnedSegments.keys) } : []
            for candidate in log.compactionCandidates(threshold: threshold).filter({ !pinned.contains($0.segment) }).prefix(maxSegments) {
                summary.add(self.compact(log, segment: candidate.segment, size: candidate.size))
            }
        }
        return summary
    }

    private func compact(_ log: SegmentLog, segment: UInt32, size: UInt64) -> CompactionSummary {
        var summary = CompactionSummary()
        guard case .success(let bytes) = log.contents(segment) else { return summary }
        let primary = log.volume == .primary
        let oldest = log.oldestSegment == segment
        var copies: [PendingRecord] = []
        var moved: [(id: String, version: UInt64, from: LogLocation)] = []
        var unreadableLive = false
        var walked: [(offset: Int, record: SegmentLog.Walked)] = []
        bytes.withUnsafeBytes { buffer in _ = SegmentLog.walk(buffer) { walked.append(($0, $1)) } }
        // The rows of every id met, under one lock (not a copy of the index: its next change would
        // then copy every entry).
        let rows = self.indexedRows(walked.map { step in
            switch step.record {
            case .record(let header, _), .damagedBody(let header): header.id
            }
        })
        for ((offset, record), row) in zip(walked, rows) {
            let location = LogLocation(segment: segment, offset: UInt64(offset))
            let pointsHere = row.map { (primary ? $0.location : $0.redundancy) == location } ?? false
            switch record {
            case .record(let header, let body) where header.kind == .delete:
                if row == nil || row!.version < header.version, !oldest {
                    copies.append(PendingRecord(kind: .delete, id: header.id, version: header.version, body: body, checksum: header.bodyChecksum))
                    summary.tombstonesKept += 1
                } else {
                    summary.tombstonesDropped += 1
                }
            case .record(let header, let body) where pointsHere:
                copies.append(PendingRecord(kind: header.kind, id: header.id, version: header.version, body: body, checksum: header.bodyChecksum))
                moved.append((header.id, header.version, location))
            case .damagedBody where pointsHere:
                unreadableLive = true
            default:
                continue
            }
        }
        // A live record that no longer verifies keeps its segment until a repair moves it.
        if unreadableLive { return CompactionSummary() }
        // Nothing to gain (a segment of tombstones that must be kept): copying them forward would
        // only move the same bytes again every cycle.
        let keptBytes = copies.reduce(0) { $0 + LogRecord.length(id: $1.id, bodyLength: $1.body.count) }
        if !copies.isEmpty, Double(keptBytes) > Double(size) * 0.9 { return CompactionSummary() }
        let movedRecords = moved
        let copied = copies
        do {
            try self.appendAndWait(primary: primary ? copied : [], redundancy: primary ? [] : copied) { locations in
                let targets = primary ? locations.primary : locations.redundancy
                var changed: [StoredRow] = []
                self.state.withLock { state in
                    var position = 0
                    for (copyIndex, copy) in copied.enumerated() where copy.kind != .delete {
                        let (id, version, from) = movedRecords[position]
                        position += 1
                        guard var entry = state[id], entry.row.version == version, (primary ? entry.row.location : entry.row.redundancy) == from else { continue }
                        self.releaseRecords(of: entry.row)
                        if primary { entry.row.location = targets[copyIndex] } else { entry.row.redundancy = targets[copyIndex] }
                        self.retainRecords(of: entry.row)
                        state.set(id, entry)
                        changed.append(entry.row)
                    }
                }
                let rows = changed
                return RegistryChange(apply: { registry in
                    for row in rows { try registry.updatePlacement(row) }
                })
            }
        } catch {
            self.logger.warning("compaction could not copy live records; keeping the segment", metadata: ["segment": "\(segment)", "error": "\(error)"])
            return CompactionSummary()
        }
        // Only once nothing points into it any more, and no export's snapshot (taken before the
        // repoint, under the same lock) still reads from it.
        let stillUsed = self.state.withLock { state in
            (primary && state.pinnedSegments[segment] != nil)
                || state.entries.values.contains { (primary ? $0.row.location : $0.row.redundancy)?.segment == segment }
        }
        guard !stillUsed else { return CompactionSummary() }
        log.removeSegment(segment)
        summary.segments = 1
        summary.recordsCopied = moved.count
        summary.bytesReclaimed = Int64(size) - Int64(copies.reduce(0) { $0 + LogRecord.length(id: $1.id, bodyLength: $1.body.count) })
        return summary
    }
}

extension FragmentStore {
    /// Deletes every fragment expired at `now`, as a DELETE would (a tombstone in both logs), unless
    /// it was written again meanwhile; waits until the tombstones are durable.
    /// - Returns: Fragments deleted.
    func deleteExpired(now: Timestamp) -> Int {
        let expired = self.state.withLock { state in state.rows { $0.isExpired(at: now) }.map { ($0.id, $0.version) } }
        guard !expired.isEmpty else { return 0 }
        let group = DispatchGroup()
        let deleted = Atomic<Int>(0)
        for (id, version) in expired {
            group.enter()
            let operation = DeleteOperation(id: id, precondition: .none, expiredVersion: version) { result in
                if case .success = result { deleted.add(1, ordering: .relaxed) }
                group.leave()
            }
            if !self.pipeline.submit(.delete(operation)) { group.leave() }
        }
        group.wait()
        let count = deleted.load(ordering: .relaxed)
        if count > 0 { self.logger.info("deleted expired fragments", metadata: ["fragments.expired": "\(count)"]) }
        return count
    }
}
