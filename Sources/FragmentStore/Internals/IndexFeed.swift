import FragmentCore
import CarmaText
import Foundation

/// Carries text-index changes from the log thread to a thread of their own, so that tokenised
/// postings are inserted behind the acknowledgement, not before it. The log thread hands changes over
/// before it acknowledges; a query waits (briefly) for the changes handed over before it started, so
/// that a client that got its PUT acknowledged finds it in its next query.
///
/// `@unchecked Sendable`: `pending`, `submitted` and `applied` are touched with `condition` locked.
final class IndexFeed: @unchecked Sendable {
    enum Change: Sendable {
        case upsert(TextIndex.Document)
        case remove(String)

        /// The key the change is about.
        var id: String {
            switch self {
            case .upsert(let document): document.id
            case .remove(let id): id
            }
        }
    }

    private let condition = NSCondition()
    private var pending: [Change] = []
    private var submitted: UInt64 = 0
    private var applied: UInt64 = 0
    private var closed = false
    let worker = Worker(name: "indexer")

    /// Hands changes over (log thread, before acknowledging them).
    func submit(_ changes: [Change]) {
        guard !changes.isEmpty else { return }
        self.condition.lock()
        defer { self.condition.unlock() }
        self.pending.append(contentsOf: changes)
        self.submitted += UInt64(changes.count)
        self.condition.broadcast()
    }

    /// Changes waiting for the indexer.
    var backlog: Int {
        self.condition.lock()
        defer { self.condition.unlock() }
        return Int(self.submitted - self.applied)
    }

    /// Waits until every change handed over before the call is in the index, at most `timeout`
    /// seconds. Returns whether it got there.
    @discardableResult
    func waitForSubmitted(timeout: Double = 2) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        let target = self.submitted
        let deadline = Date(timeIntervalSinceNow: timeout)
        while self.applied < target, !self.closed {
            if !self.condition.wait(until: deadline) { return self.applied >= target }
        }
        return true
    }

    /// Starts the indexer thread: it applies each batch of changes with `apply` (under the index's
    /// write lock), then reports the upserted ids to `after`.
    func start(apply: @escaping @Sendable ([Change]) -> Void) {
        self.worker.start { [self] in
            guard let batch = self.take() else { return .finished }
            apply(batch)
            self.condition.lock()
            self.applied += UInt64(batch.count)
            self.condition.broadcast()
            self.condition.unlock()
            return .worked
        }
    }

    /// Closes the feed (what is queued is still applied) and waits for the indexer to end.
    func stop() {
        self.condition.lock()
        self.closed = true
        self.condition.broadcast()
        self.condition.unlock()
        self.worker.stop()
    }

    private func take() -> [Change]? {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.pending.isEmpty {
            if self.closed { return nil }
            self.condition.wait()
        }
        let batch = self.pending
        self.pending.removeAll(keepingCapacity: true)
        return batch
    }
}
