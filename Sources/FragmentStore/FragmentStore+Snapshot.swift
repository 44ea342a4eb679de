import FragmentCore
import CarmaJSON
import Synchronization

extension FragmentStore {
    /// Takes a snapshot of every fragment of a namespace (see `StoreSnapshot`); close it when done.
    public func snapshot(namespace: String) -> StoreSnapshot {
        let now = Timestamp.now
        let (rows, pinned, maxVersion): ([StoredRow], [UInt32], UInt64) = self.state.withLock { state in
            // An expired fragment is gone for every reader, the export included (until compaction
            // deletes it, it is still in the index).
            let rows = state.entries.values.map(\.row).filter { !$0.isExpired(at: now) && FragmentKey.belongs($0.id, to: namespace) }
            let segments = Array(Set(rows.compactMap { $0.location?.segment }))
            state.pin(segments)
            return (rows, segments, self.lastVersion.load(ordering: .relaxed))
        }
        // Sorting happens outside the lock: the rows are copies.
        let sorted = rows.sorted { $0.id < $1.id }
        return StoreSnapshot(
            rows: sorted.map(\.base), maxVersion: maxVersion,
            reader: { [self] index, _ in self.snapshotEntry(sorted[index]) },
            closer: { [self] in self.state.withLock { state in state.unpin(pinned) } })
    }

    /// A snapshot row's entry: its pinned record, read and verified.
    private func snapshotEntry(_ row: StoredRow) -> StoreSnapshot.Entry {
        let outcome = self.readServed(row)
        switch outcome {
        case .record(let record):
            return .fragment(ServedFragment.makeBody(record: record, status: row.status, checksum: row.checksum))
        case .transient(let error):
            return .unavailable("\(error)")
        default:
            var blank = row.base
            blank.status = .blank
            blank.blankReason = outcome.damage ?? .unreadable
            return .blank(blank)
        }
    }
}

extension StoreState {
    /// Pins primary segments against deletion by compaction (counted: several snapshots may pin one).
    mutating func pin(_ segments: [UInt32]) {
        for segment in segments { self.pinnedSegments[segment, default: 0] += 1 }
    }

    mutating func unpin(_ segments: [UInt32]) {
        for segment in segments {
            guard let count = self.pinnedSegments[segment] else { continue }
            self.pinnedSegments[segment] = count > 1 ? count - 1 : nil
        }
    }
}
