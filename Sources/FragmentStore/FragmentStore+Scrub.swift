import FragmentCore
import CarmaJSON
import Synchronization

struct ScrubCursor {
    var volume: SegmentLog.Volume = .primary
    var segment: UInt32 = 0
    var pending: [(offset: UInt64, id: String)] = []
}

extension FragmentStore {
    /// Verifies up to `limit` fragments' records, walking the primary log and then the redundancy log
    /// segment by segment, in file order. A damaged primary record turns its fragment blank (queued at
    /// scrub priority); a damaged or missing redundancy copy is written again from the primary.
    public func scrub(limit: Int) -> ScrubSlice {
        var slice = ScrubSlice()
        while slice.verified < limit {
            let next: (volume: SegmentLog.Volume, segment: UInt32, batch: [(offset: UInt64, id: String)])? = self.scrubCursor.withLock { cursor in
                if cursor.pending.isEmpty {
                    guard self.advanceScrub(&cursor) else { return nil }
                }
                let count = min(limit - slice.verified, cursor.pending.count)
                let batch = Array(cursor.pending.prefix(count))
                cursor.pending.removeFirst(count)
                return (cursor.volume, cursor.segment, batch)
            }
            guard let next else {
                // Wrapped around: one full pass is done; the next slice starts the next pass.
                slice.passCompleted = true
                break
            }
            let segmentThere = (next.volume == .primary ? self.primaryLog : self.redundancyLog).segmentExists(next.segment)
            for (offset, id) in next.batch {
                let location = LogLocation(segment: next.segment, offset: offset)
                let finding = next.volume == .primary
                    ? self.scrubPrimary(id, at: location, segmentThere: segmentThere)
                    : self.scrubRedundancy(id, at: location, segmentThere: segmentThere)
                slice.verified += 1
                switch finding {
                case .intact, .skipped: continue
                default: slice.findings.append((id, finding))
                }
            }
        }
        return slice
    }

    /// Moves the cursor to the next segment that some fragment points into; false after the end of
    /// the redundancy log (the cursor then starts over at the primary log).
    private func advanceScrub(_ cursor: inout ScrubCursor) -> Bool {
        while true {
            let volume = cursor.volume
            let rows = self.state.withLock { $0.rows(where: { (volume == .primary ? $0.location : $0.redundancy).map { $0.segment > cursor.segment } ?? false }) }
            guard let segment = rows.compactMap({ (volume == .primary ? $0.location : $0.redundancy)?.segment }).min() else {
                cursor.segment = 0
                if cursor.volume == .primary {
                    cursor.volume = .redundancy
                    continue
                }
                cursor.volume = .primary
                return false
            }
            cursor.segment = segment
            cursor.pending = rows.compactMap { row in
                guard let location = volume == .primary ? row.location : row.redundancy, location.segment == segment else { return nil }
                return (location.offset, row.id)
            }.sorted { $0.offset < $1.offset }
            return true
        }
    }

    private func scrubPrimary(_ id: String, at location: LogLocation, segmentThere: Bool) -> ScrubFinding {
        guard let row = self.storedRow(id), row.location == location else { return .skipped }
        if row.status == .blank {
            // Its ticket may have been lost with a registry change that failed: queue it again
            // (a ticket already there keeps its place and its retry time).
            self.enqueueRepair(id, priority: .scrub, reason: row.blankReason?.rawValue ?? "blank")
            return .skipped
        }
        let outcome = segmentThere ? self.readServed(row) : .missing
        if let damage = outcome.damage {
            return self.markBlank(id, version: row.version, location: location, reason: damage, detectedBy: .scrub, priority: .scrub) == nil
                ? .skipped : .damaged(damage)
        }
        guard case .record(let record) = outcome else { return .skipped }
        // A fragment with no copy at all (the redundancy volume was lost) gets one now.
        if row.redundancy == nil, row.status == .ok {
            return self.rewriteCopy(row, record: record, damage: .missing)
        }
        return .intact
    }

    private func scrubRedundancy(_ id: String, at location: LogLocation, segmentThere: Bool) -> ScrubFinding {
        guard let row = self.storedRow(id), row.redundancy == location else { return .skipped }
        let outcome: SegmentLog.ReadOutcome =
            segmentThere
            ? self.redundancyLog.read(location, id: id, version: row.version, kind: .put, bodyLength: row.exactLength, checksum: row.exactChecksum)
            : .missing
        guard let damage = outcome.damage else { return .intact }
        guard row.status == .ok, case .record(let record) = self.readServed(row) else {
            self.counters.redundancyDamage.add(1, ordering: .relaxed)
            return .redundancyDamaged(damage)
        }
        return self.rewriteCopy(row, record: record, damage: damage)
    }

    /// Writes a new redundancy copy of an intact fragment and points the index and registry at it.
    private func rewriteCopy(_ row: StoredRow, record: [UInt8], damage: BlankReason) -> ScrubFinding {
        self.counters.redundancyDamage.add(1, ordering: .relaxed)
        let now = Timestamp.now
        let copy = PendingRecord(kind: .put, id: row.id, version: row.version, body: record, checksum: row.exactChecksum)
        do {
            try self.appendAndWait(primary: [], redundancy: [copy]) { locations in
                let moved: StoredRow? = self.state.withLock { state in
                    guard var entry = state[row.id], entry.row.version == row.version, entry.row.redundancy == row.redundancy else { return nil }
                    self.releaseRecords(of: entry.row)
                    entry.row.redundancy = locations.redundancy[0]
                    self.retainRecords(of: entry.row)
                    state.set(row.id, entry)
                    return entry.row
                }
                guard let moved else { return nil }
                return RegistryChange(apply: { registry in
                    try registry.updatePlacement(moved)
                    try registry.addEvent(
                        row.id, at: now, kind: .redundancyRepaired, detail: HistoryDetail.redundancyRepaired(version: row.version, reason: damage))
                })
            }
        } catch {
            self.logger.warning("cannot rewrite a redundancy copy", metadata: ["fragment.id": "\(row.id)", "error": "\(error)"])
            return .redundancyDamaged(damage)
        }
        return .redundancyRepaired(damage)
    }
}
