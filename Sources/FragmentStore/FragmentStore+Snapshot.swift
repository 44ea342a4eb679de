import CarmaJSON
import Synchronization

/// Every fragment as it was at one instant, for an export: the index's rows taken under its lock,
/// with the primary segments they point into pinned so that compaction cannot delete them until the
/// snapshot is closed. Records are never rewritten in place, so reading a pinned location later gives
/// exactly the version the snapshot saw, whatever was written since.
public final class StoreSnapshot: Sendable {
    /// The rows, in id order.
    public let rows: [FragmentRow]
    /// The highest version handed out when the snapshot was taken.
    public let maxVersion: UInt64
    public let takenAt: Timestamp
    private let store: FragmentStore
    private let pinned: [UInt32]
    private let open = Atomic<Bool>(true)

    init(store: FragmentStore, rows: [FragmentRow], maxVersion: UInt64, pinned: [UInt32]) {
        self.store = store
        self.rows = rows
        self.maxVersion = maxVersion
        self.pinned = pinned
        self.takenAt = .now
    }

    deinit {
        self.close()
    }

    /// Lets compaction have the pinned segments again. Safe to call more than once.
    public func close() {
        guard self.open.exchange(false, ordering: .acquiringAndReleasing) else { return }
        let pinned = self.pinned
        self.store.state.withLock { state in state.unpin(pinned) }
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
        let outcome = self.store.readServed(row)
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

extension FragmentStore {
    /// Takes a snapshot of every fragment (see `StoreSnapshot`); close it when done with it.
    public func snapshot() -> StoreSnapshot {
        let (rows, pinned, maxVersion): ([FragmentRow], [UInt32], UInt64) = self.state.withLock { state in
            let rows = state.entries.values.map(\.row)
            let segments = Array(Set(rows.compactMap { $0.location?.segment }))
            state.pin(segments)
            return (rows, segments, self.lastVersion.load(ordering: .relaxed))
        }
        // Sorting happens outside the lock: the rows are copies.
        return StoreSnapshot(store: self, rows: rows.sorted { $0.id < $1.id }, maxVersion: maxVersion, pinned: pinned)
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
