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
    private let reader: @Sendable (Int, FragmentRow) -> Entry
    private let closer: @Sendable () -> Void
    private let open = Atomic<Bool>(true)

    /// - Parameters:
    ///   - reader: Reads one row's entry (its index in `rows`, and the row) as the snapshot saw it.
    ///   - closer: Lets go of what keeps the snapshot's records readable; runs once.
    package init(rows: [FragmentRow], maxVersion: UInt64, reader: @escaping @Sendable (Int, FragmentRow) -> Entry, closer: @escaping @Sendable () -> Void) {
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
        return self.reader(index, row)
    }
}
