import FragmentCore
import Foundation
import Synchronization

/// Keeps this node's text index current: a thread that reads the change feed (`carma_changes`)
/// after the last entry it applied and re-indexes the fragments named there.
///
/// Feed entries get their sequence numbers when their transaction writes them but become visible
/// when it commits, so a later number can appear before an earlier one. The follower therefore
/// keeps a low-water mark (every entry at or below it applied) and the entries above it it has
/// applied; a gap older than `gapSeconds` is taken as a rolled-back transaction and passed over.
final class ChangeFollower: Sendable {
    /// Feed entries older than this are pruned; a node offline longer reloads its whole index.
    static let retentionMilliseconds: Int64 = 3_600_000
    static let gapSeconds: Double = 10

    struct Position: Sendable {
        var low: Int64 = 0
        var seen: Set<Int64> = []
        /// The entry the mark waits for, and since when.
        var gap: (at: Int64, since: ContinuousClock.Instant)?
    }

    let position = Mutex(Position())
    /// Wakes `wait(until:)` callers after each look at the feed.
    private let condition = NSCondition()
    /// Looks at the feed: again at once after it applied something, else every 0.2 s or when poked.
    let worker = Worker(name: "change-feed", interval: 0.2)

    func start(store: ClusterStore) {
        self.worker.start { [self] in
            let applied = store.followFeed()
            self.condition.lock()
            self.condition.broadcast()
            self.condition.unlock()
            return applied ? .worked : .idle
        }
    }

    func stop() {
        self.worker.stop()
    }

    /// Asks for a look at the feed now (this node just wrote).
    func poke() {
        self.worker.wake()
    }

    /// Waits (up to `timeout`) until every entry up to `sequence` is applied.
    func wait(until sequence: Int64, timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        self.poke()
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.position.withLock({ $0.low }) < sequence, Date() < deadline {
            _ = self.condition.wait(until: deadline)
        }
    }

    /// Takes a batch of feed entries (sequence numbers ascending) into the position; returns the
    /// entries not applied before.
    func accept(_ sequences: [Int64]) -> Set<Int64> {
        self.position.withLock { position in
            var fresh = Set<Int64>()
            for sequence in sequences where sequence > position.low && !position.seen.contains(sequence) {
                fresh.insert(sequence)
                position.seen.insert(sequence)
            }
            Self.advance(&position)
            return fresh
        }
    }

    /// Moves the low-water mark over applied entries and over gaps older than `gapSeconds`.
    static func advance(_ position: inout Position) {
        while position.seen.remove(position.low + 1) != nil {
            position.low += 1
        }
        guard let next = position.seen.min() else {
            position.gap = nil
            return
        }
        let now = ContinuousClock.now
        guard let gap = position.gap, gap.at == position.low + 1 else {
            position.gap = (position.low + 1, now)
            return
        }
        if now - gap.since > .seconds(Self.gapSeconds) {
            position.low = next - 1
            position.gap = nil
            Self.advance(&position)
        }
    }
}
