import CarmaEmbedding
import Synchronization

/// Several workers running the same pass, as the background embedders do: the first at normal
/// priority, so a loaded machine still makes progress, the others at low priority
/// (`BackgroundThread`), so they only take the cores the foreground leaves idle.
public final class WorkerTeam: Sendable {
    private let name: String
    private let interval: Double?
    private let members = Mutex<[Worker]>([])

    public init(name: String, interval: Double? = nil) {
        self.name = name
        self.interval = interval
    }

    /// The workers, once started (for metrics).
    public var workers: [Worker] { self.members.withLock { $0 } }

    /// Starts `count` workers named `name`, `name-2`, … running `pass`. A second call does nothing.
    public func start(count: Int, _ pass: @escaping @Sendable () -> Worker.Pass) {
        let workers: [Worker] = self.members.withLock { members in
            guard members.isEmpty else { return [] }
            members = (0..<max(1, count)).map { Worker(name: $0 == 0 ? self.name : "\(self.name)-\($0 + 1)", interval: self.interval) }
            return members
        }
        for (index, worker) in workers.enumerated() {
            if index == 0 {
                worker.start(pass)
            } else {
                worker.start(setUp: { BackgroundThread.lowerPriority() }, pass)
            }
        }
    }

    public func wake() {
        for worker in self.workers { worker.wake() }
    }

    public func stop() {
        for worker in self.workers { worker.stop() }
    }
}
