import CarmaJSON
import Synchronization

/// Every fragment as it was at one instant, for an export: the rows, and a reader that yields each
/// row's record as the snapshot saw it until the snapshot is closed. The embedded store takes the
/// rows under its index lock and pins the primary segments they point into (records are never
/// rewritten in place, so a pinned location keeps the version the snapshot saw); cluster mode reads
/// inside one REPEATABLE READ transaction.
public final class StoreSnapshot: Sendable {
    /// The rows, in id order.
    public let rows: [FragmentRow]
    /// The highest version handed out when the snapshot was taken.
    public let maxVersion: UInt64
    public let takenAt: Timestamp
    private let reader: @Sendable (FragmentRow) -> Entry
    private let closer: @Sendable () -> Void
    private let open = Atomic<Bool>(true)

    /// - Parameters:
    ///   - reader: Reads one row's entry as the snapshot saw it.
    ///   - closer: Lets go of what keeps the snapshot's records readable; runs once.
    package init(rows: [FragmentRow], maxVersion: UInt64, reader: @escaping @Sendable (FragmentRow) -> Entry, closer: @escaping @Sendable () -> Void) {
        self.rows = rows
        self.maxVersion = maxVersion
        self.reader = reader
        self.closer = closer
        self.takenAt = .now
    }

    deinit {
        self.close()
    }

    /// Lets go of the snapshot's records (compaction may have the pinned segments again). Safe to
    /// call more than once.
    public func close() {
        guard self.open.exchange(false, ordering: .acquiringAndReleasing) else { return }
        self.closer()
    }

    /// What the snapshot holds for one fragment.
    public enum Entry: Sendable {
        /// The fragment's served JSON (its record with `status` and `checksum`), `ok` or `reconstructed`.
        case fragment([UInt8])
        /// A blank: the row, with the reason (a record that no longer verifies reads as a blank).
        case blank(FragmentRow)
        /// The record could not be read for a passing reason; nothing is lost.
        case unavailable(String)
    }

    /// Reads the fragment at `index` as the snapshot saw it.
    public func entry(_ index: Int) -> Entry {
        let row = self.rows[index]
        guard row.status != .blank else { return .blank(row) }
        return self.reader(row)
    }
}

extension FragmentStore {
    /// Takes a snapshot of every fragment (see `StoreSnapshot`); close it when done with it.
    public func snapshot() -> StoreSnapshot {
        let now = Timestamp.now
        let (rows, pinned, maxVersion): ([FragmentRow], [UInt32], UInt64) = self.state.withLock { state in
            // An expired fragment is gone for every reader, the export included (until compaction
            // deletes it, it is still in the index).
            let rows = state.entries.values.map(\.row).filter { !$0.isExpired(at: now) }
            let segments = Array(Set(rows.compactMap { $0.location?.segment }))
            state.pin(segments)
            return (rows, segments, self.lastVersion.load(ordering: .relaxed))
        }
        // Sorting happens outside the lock: the rows are copies.
        return StoreSnapshot(
            rows: rows.sorted { $0.id < $1.id }, maxVersion: maxVersion,
            reader: { [self] row in self.snapshotEntry(row) },
            closer: { [self] in self.state.withLock { state in state.unpin(pinned) } })
    }

    /// A snapshot row's entry: its pinned record, read and verified.
    private func snapshotEntry(_ row: FragmentRow) -> StoreSnapshot.Entry {
        let outcome = self.readServed(row)
        switch outcome {
        case .record(let record):
            return .fragment(FragmentStore.servedBody(record: record, status: row.status, checksum: row.checksum))
        case .transient(let error):
            return .unavailable("\(error)")
        default:
            var blank = row
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
