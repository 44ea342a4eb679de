import CarmaEmbedding
import FragmentCore
import Foundation
import Synchronization

/// The queue of fragments waiting for the built-in model, and the threads that work it off. Ids are
/// queued once however often they are written meanwhile; the worker looks up the version current
/// when it gets to an id, so a burst of rewrites costs one embedding.
///
/// `@unchecked Sendable`: `order`, `queued` and `closed` are touched with `condition` locked.
final class MeaningWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var order: [String] = []
    private var head = 0
    private var queued: Set<String> = []
    private var closed = false
    /// Embeddings computed since start-up.
    let embedded = Atomic<Int>(0)
    /// The embedding workers, once started.
    private let team = WorkerTeam(name: "embedder")
    var workers: [Worker] { self.team.workers }
    /// The model whose meanings were dropped at start-up for this one's (for `/readyz`).
    let replacing = Mutex<String?>(nil)

    func enqueue(_ ids: some Sequence<String>) {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.closed else { return }
        for id in ids where self.queued.insert(id).inserted {
            self.order.append(id)
        }
        self.condition.signal()
    }

    /// Fragments waiting to be embedded.
    var backlog: Int {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.queued.count
    }

    /// Starts `threads` workers, each taking up to `batch` ids at a time; `work` embeds them. The
    /// first runs at normal priority, the others at low priority (`BackgroundThread`), on the cores
    /// the foreground leaves idle.
    func start(threads: Int, batch: Int, work: @escaping @Sendable ([String]) -> Void) {
        self.team.start(count: threads) { [self] in
            guard let ids = self.next(max: batch) else { return .finished }
            work(ids)
            return .worked
        }
    }

    /// Closes the queue (the fragment being embedded is finished) and waits for the worker to end.
    func stop() {
        self.condition.lock()
        self.closed = true
        self.condition.broadcast()
        self.condition.unlock()
        self.team.stop()
    }

    private func next(max: Int) -> [String]? {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.head == self.order.count {
            if self.closed { return nil }
            self.condition.wait()
        }
        if self.closed { return nil }
        let ids = Array(self.order[self.head..<min(self.order.count, self.head + max)])
        self.head += ids.count
        // Out of the set before the work: a write meanwhile queues the id again.
        for id in ids { self.queued.remove(id) }
        if self.head > 4096, self.head * 2 > self.order.count {
            self.order.removeFirst(self.head)
            self.head = 0
        }
        return ids
    }
}
