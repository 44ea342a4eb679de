import FragmentCore
import Foundation
import Synchronization

/// A change to the registry alone (no log record): applied in a later transaction, in order with the
/// writes submitted before it, with a completion once it is committed.
struct RegistryChange: Sendable {
    let apply: @Sendable (Registry) throws -> Void
    var completion: (@Sendable (Result<Void, StoreError>) -> Void)?

    init(apply: @escaping @Sendable (Registry) throws -> Void, completion: (@Sendable (Result<Void, StoreError>) -> Void)? = nil) {
        self.apply = apply
        self.completion = completion
    }
}

/// A record to append that is not a client's write: a repair, a reconstruction, a compaction copy.
struct PendingRecord: Sendable {
    var kind: LogRecord.Kind
    var id: String
    var version: UInt64
    var body: [UInt8]
    var checksum: UInt32
}

/// Records to append to one or both logs. `completion` runs on the log thread once they are durable
/// (with their locations) or failed; the registry change it returns is applied in order after them.
struct AppendOperation: Sendable {
    var primary: [PendingRecord]
    var redundancy: [PendingRecord]
    let completion: @Sendable (Result<AppendedLocations, StoreError>) -> RegistryChange?
}

struct AppendedLocations: Sendable {
    var primary: [LogLocation]
    var redundancy: [LogLocation]
}

/// What clients and the engine submit to the pipeline.
enum PipelineOperation: Sendable {
    case put(PutOperation)
    case delete(DeleteOperation)
    case append(AppendOperation)
    case change(RegistryChange)
    /// Completes once everything submitted before it is applied to the registry.
    case barrier(@Sendable () -> Void)
    /// Puts taken by the log thread together, whatever the batch limit: one group commit.
    case puts([PutOperation])
}

/// Registry work behind the log, in log order.
enum ApplyItem: Sendable {
    /// `created`: clients saw no fragment before (none, or an expired one).
    case put(row: StoredRow, sketch: [UInt8], embedding: [UInt8]?, previous: StoredRow?, created: Bool)
    case delete(id: String, version: UInt64)
    case change(RegistryChange)
    case barrier(@Sendable () -> Void)
    /// Everything in the logs before these positions has been handed to the apply stage.
    case position(LogPositions)
}

extension ApplyItem {
    /// Whether somebody waits for this item to be applied.
    var isAwaited: Bool {
        switch self {
        case .barrier: true
        case .change(let change): change.completion != nil
        case .put, .delete, .position: false
        }
    }
}

/// How far the registry has followed the two logs.
struct LogPositions: Sendable, Equatable {
    var primary: LogLocation
    var redundancy: LogLocation
    var sequence: UInt64
    var maxVersion: UInt64
}

/// The two threads of the write path.
///
/// The *log* thread takes submitted operations in order, checks preconditions, assigns versions and
/// sequence numbers, appends the batch's records to both logs in one write each, syncs both logs at
/// once, updates the in-memory index and acknowledges: a write is durable and visible when its
/// client hears of it. The *apply* thread then brings the registry up to date in large
/// transactions, recording how far it got, so start-up only replays the logs past that point.
final class CommitPipeline: Sendable {
    private let intake = BlockingQueue<PipelineOperation>()
    private let applyQueue = BlockingQueue<ApplyItem>()
    private let logStopped = DispatchSemaphore(value: 0)
    private let logStarted = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// Brings the registry up to date from the log thread's output.
    let applier = Worker(name: "store-apply")
    /// Checkpoints the registry's WAL twice a second.
    let checkpointer = Worker(name: "store-checkpoint", interval: 0.5)
    /// Operations taken by the log thread and not yet applied (for metrics and `pending`).
    private let applying = Atomic<Int>(0)

    func start(store: FragmentStore) {
        let logThread = Thread { [intake, applyQueue] in
            while let batch = intake.takeBatch(limit: store.configuration.maxBatch) {
                let items = store.logStage(batch)
                self.applying.add(items.count, ordering: .relaxed)
                applyQueue.put(contentsOf: items)
            }
            applyQueue.close()
            self.logStopped.signal()
        }
        // The log thread stays a dedicated thread: every write's latency goes through it.
        logThread.name = "carma-store-log"
        self.logStarted.store(true, ordering: .relaxed)
        logThread.start()
        self.applier.start { [applyQueue] in
            // Larger transactions write each hot B-tree page once for many rows: gather for up to
            // 50 ms, unless a listing, a repair or a flush is waiting for the apply.
            guard let items = applyQueue.takeBatch(limit: store.configuration.maxApplyBatch, gatheringFor: 0.05, isUrgent: \.isAwaited) else {
                return .finished
            }
            store.applyStage(items, stopping: { self.stopped.load(ordering: .relaxed) })
            self.applying.subtract(items.count, ordering: .relaxed)
            store.registry.restartWALIfLarge()
            return .worked
        }
        self.checkpointer.start {
            store.registry.checkpoint()
            return .idle
        }
    }

    /// Hands registry work straight to the apply stage (the replay at start-up).
    func enqueueApply(_ items: [ApplyItem]) {
        guard !items.isEmpty else { return }
        self.applying.add(items.count, ordering: .relaxed)
        self.applyQueue.put(contentsOf: items)
    }

    /// Queues an operation; false (and nothing queued) when the store is closed.
    @discardableResult
    func submit(_ operation: PipelineOperation) -> Bool {
        self.intake.put(operation)
    }

    /// Operations submitted and not yet applied to the registry.
    var pending: Int {
        self.intake.count + self.applying.load(ordering: .relaxed)
    }

    /// Blocks until everything submitted before the call is applied to the registry. Never call it on
    /// an HTTP thread: use `whenApplied`.
    func flush() {
        let done = DispatchSemaphore(value: 0)
        if self.submit(.barrier({ done.signal() })) {
            done.wait()
        }
    }

    /// Calls `body` (on the apply thread) once everything submitted before the call is applied; at
    /// once, on the caller's thread, if the store is closed.
    func whenApplied(_ body: @escaping @Sendable () -> Void) {
        if !self.submit(.barrier(body)) { body() }
    }

    /// Logs and applies what is queued, then stops the threads, in this order: the log thread (it
    /// closes the apply queue when it has logged everything), the apply worker, the checkpointer.
    /// Idempotent.
    func stop() {
        guard !self.stopped.exchange(true, ordering: .relaxed) else { return }
        self.intake.close()
        if self.logStarted.load(ordering: .relaxed) { self.logStopped.wait() }
        self.applier.stop()
        self.checkpointer.stop()
    }
}
