import Foundation
import Synchronization

/// A change to the registry made inside a group commit, with work to do in memory once it is
/// durable and a completion to call.
struct RegistryChange: Sendable {
    let apply: @Sendable (Registry) throws -> Void
    var afterCommit: (@Sendable () -> Void)?
    var completion: (@Sendable (Result<Void, StoreError>) -> Void)?

    init(
        apply: @escaping @Sendable (Registry) throws -> Void,
        afterCommit: (@Sendable () -> Void)? = nil,
        completion: (@Sendable (Result<Void, StoreError>) -> Void)? = nil
    ) {
        self.apply = apply
        self.afterCommit = afterCommit
        self.completion = completion
    }
}

/// What clients and the engine submit to the pipeline.
enum PipelineOperation: Sendable {
    case put(PutOperation)
    case delete(DeleteOperation)
    case change(RegistryChange)
    /// Completes once everything submitted before it is committed.
    case barrier(@Sendable () -> Void)
}

/// An operation whose files are written and whose version is fixed, waiting for the commit.
enum PreparedOperation: @unchecked Sendable {
    // @unchecked: handed from the file thread to the commit thread through a locked queue, and never
    // touched by the first after that.
    case put(PutOperation, row: FragmentRow, record: [UInt8], previous: FragmentRow?)
    case delete(DeleteOperation, previous: FragmentRow, version: UInt64)
    case change(RegistryChange)
    case barrier(@Sendable () -> Void)

    /// Whether it wrote payload files that must be synced before the commit.
    var wroteFiles: Bool {
        if case .put = self { true } else { false }
    }

    /// Whether it took a version number (a put or a delete).
    var tookVersion: Bool {
        switch self {
        case .put, .delete: true
        case .change, .barrier: false
        }
    }
}

/// The three threads of the group commit, each a stage working on a different batch at once.
///
/// The *file* thread takes submitted operations in order, checks preconditions and assigns versions,
/// then writes the batch's payload files and appends its redundancy copies. The *sync* thread makes
/// everything written so far durable with one `syncfs` per file system. The *commit* thread commits
/// the synced batch's registry rows in one SQLite transaction, updates the index, and only then
/// completes the operations. A fourth thread checkpoints the SQLite WAL in the background.
final class CommitPipeline: Sendable {
    private let intake = BlockingQueue<PipelineOperation>()
    private let prepared = BlockingQueue<PreparedOperation>()
    private let synced = BlockingQueue<(operations: [PreparedOperation], failure: StoreError?)>()
    private let threadCount = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let stoppedSignal = DispatchSemaphore(value: 0)
    private let checkpointSignal = DispatchSemaphore(value: 0)

    func start(store: FragmentStore) {
        let fileThread = Thread { [intake, prepared] in
            while let batch = intake.takeBatch(limit: store.configuration.maxBatch) {
                prepared.put(contentsOf: store.prepare(batch))
            }
            prepared.close()
            self.threadFinished()
        }
        fileThread.name = "carma-store-files"
        let syncThread = Thread { [prepared, synced] in
            while let batch = prepared.takeBatch(limit: store.configuration.maxBatch) {
                synced.put((batch, store.sync(batch)))
            }
            synced.close()
            self.threadFinished()
        }
        syncThread.name = "carma-store-sync"
        let commitThread = Thread { [synced] in
            while let batches = synced.takeBatch(limit: 8) {
                // Consecutive synced batches commit together; a sync failure fails only its own batch.
                var operations: [PreparedOperation] = []
                for batch in batches {
                    if let failure = batch.failure {
                        store.commit(batch.operations, syncFailure: failure)
                    } else {
                        operations += batch.operations
                    }
                }
                if !operations.isEmpty { store.commit(operations, syncFailure: nil) }
                store.registry.restartWALIfLarge()
            }
            self.threadFinished()
        }
        commitThread.name = "carma-store-commit"
        let checkpointThread = Thread { [self] in
            while !self.stopped.load(ordering: .relaxed) {
                _ = self.checkpointSignal.wait(timeout: .now() + .milliseconds(500))
                store.registry.checkpoint()
            }
            self.threadFinished()
        }
        checkpointThread.name = "carma-store-checkpoint"
        self.threadCount.store(4, ordering: .relaxed)
        fileThread.start()
        syncThread.start()
        commitThread.start()
        checkpointThread.start()
    }

    private func threadFinished() {
        self.stoppedSignal.signal()
    }

    /// Queues an operation; false (and nothing queued) when the store is closed.
    @discardableResult
    func submit(_ operation: PipelineOperation) -> Bool {
        self.intake.put(operation)
    }

    /// Operations submitted and not yet completed.
    var pending: Int {
        self.intake.count + self.prepared.count + self.synced.count
    }

    /// Blocks until everything submitted before the call is committed.
    func flush() {
        let done = DispatchSemaphore(value: 0)
        if self.submit(.barrier({ done.signal() })) {
            done.wait()
        }
    }

    /// Commits what is queued, then stops the threads. Idempotent.
    func stop() {
        guard !self.stopped.exchange(true, ordering: .relaxed) else { return }
        let count = self.threadCount.load(ordering: .relaxed)
        self.intake.close()
        self.checkpointSignal.signal()
        for _ in 0..<count {
            self.stoppedSignal.wait()
        }
    }
}
