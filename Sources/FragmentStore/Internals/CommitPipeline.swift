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
}

/// The two threads of the group commit.
///
/// The *file* thread takes submitted operations in order, checks preconditions, assigns versions and
/// writes payload files (primary and redundancy). The *commit* thread takes whole batches of prepared
/// operations, makes their files durable with one sync per file system, commits their registry rows
/// in one SQLite transaction, updates the index, and only then completes them. While one batch is
/// being synced, the next one's files are being written.
final class CommitPipeline: Sendable {
    private let intake = BlockingQueue<PipelineOperation>()
    private let prepared = BlockingQueue<PreparedOperation>()
    private let threadCount = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let stoppedSignal = DispatchSemaphore(value: 0)

    func start(store: FragmentStore) {
        let fileThread = Thread { [intake, prepared] in
            while let batch = intake.takeBatch(limit: store.configuration.maxBatch) {
                for operation in batch {
                    if let ready = store.prepare(operation) {
                        prepared.put(ready)
                    }
                }
            }
            prepared.close()
            self.threadFinished()
        }
        fileThread.name = "carma-store-files"
        let commitThread = Thread { [prepared] in
            while let batch = prepared.takeBatch(limit: store.configuration.maxBatch) {
                store.commit(batch)
            }
            self.threadFinished()
        }
        commitThread.name = "carma-store-commit"
        self.threadCount.store(2, ordering: .relaxed)
        fileThread.start()
        commitThread.start()
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
        self.intake.count + self.prepared.count
    }

    /// Blocks until everything submitted before the call is committed.
    func flush() {
        let done = DispatchSemaphore(value: 0)
        if self.submit(.barrier({ done.signal() })) {
            done.wait()
        }
    }

    /// Commits what is queued, then stops both threads. Idempotent.
    func stop() {
        guard !self.stopped.exchange(true, ordering: .relaxed) else { return }
        let count = self.threadCount.load(ordering: .relaxed)
        self.intake.close()
        for _ in 0..<count {
            self.stoppedSignal.wait()
        }
    }
}
