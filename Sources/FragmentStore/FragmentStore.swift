import FragmentCore
import CarmaJSON
import CarmaText
import Foundation
import Logging
import Synchronization

/// The durable fragment store: two segment logs (primary and redundancy) where every write becomes
/// durable, a SQLite registry that follows them, and an in-memory index with a cache of served bodies.
///
/// Reads are synchronous and never touch SQLite: an index lookup, then the cache or one `pread` of
/// a record. Writes are appended to both logs by one thread and acknowledged after one `fdatasync`
/// per log per batch (group commit); the registry is brought up to date behind them.
public final class FragmentStore: Sendable {
    public let configuration: StoreConfiguration
    let logger: Logger
    let registry: Registry
    let primaryLog: SegmentLog
    let redundancyLog: SegmentLog
    let lock: DirectoryLock
    /// The namespaces, their quotas and tokens.
    let journal: NamespaceJournal
    let state: Mutex<StoreState>
    /// The last version handed out; versions are unique across the store and only go up.
    let lastVersion: Atomic<UInt64>
    /// The last record sequence number handed out (store-wide, both logs).
    let lastSequence: Atomic<UInt64>
    let pipeline: CommitPipeline
    let counters = StoreCounters()
    /// Sketches, postings and meanings of every fragment, one index per namespace, for queries,
    /// context and reconstruction.
    let text: TextIndexes
    /// Text-index changes on their way from the log thread to the indexer thread.
    let feed = IndexFeed()
    /// Fragments waiting for the built-in model.
    let meanings = MeaningWorker()
    /// Loads the text index at start-up, then hands the fragments without a meaning to the embedder.
    let textLoader = Worker(name: "text-loader")
    /// Builds the text index's vector graphs in the background (FragmentStore+Neighbours.swift).
    let neighbourBuilder: NeighbourBuilder
    /// Runs the builder: a look every 2 s whether a graph is due, once the text index has loaded.
    let vectorIndexer = Worker(name: "vector-index", interval: 2)
    /// Whether the text index has been loaded (it loads in the background after start-up).
    let textReady = Atomic<Bool>(false)
    /// The embedding dimension of this store, fixed by the first fragment stored with one.
    let embeddingDimension = Mutex<Int?>(nil)
    /// Where the scrub goes on in the logs.
    let scrubCursor = Mutex(ScrubCursor())
    private let startupReport = Mutex(StartupReport())
    /// What start-up found and did, for the log and `/readyz`.
    public var startup: StartupReport { self.startupReport.withLock { $0 } }

    /// Opens the store: takes the data directory's lock, opens both logs (cutting a torn tail),
    /// loads the index from the registry and replays the log records it has not applied yet. A
    /// missing registry is rebuilt from the logs, as `reindex` would.
    public init(configuration: StoreConfiguration, logger: Logger) throws(StoreError) {
        self.configuration = configuration
        self.logger = logger
        self.text = TextIndexes(meaningDimensions: configuration.encoder?.dimensions ?? 0, neighbours: Self.neighbours(configuration))
        self.neighbourBuilder = NeighbourBuilder { message, metadata in logger.info("\(message)", metadata: metadata.mapValues { .string($0) }) }
        do {
            try FileSystem.makeDirectory(configuration.dataDirectory)
            self.lock = try DirectoryLock(path: configuration.lockPath)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .from(error as! FileError, doing: "open the data directory")
        }
        if FileSystem.exists(configuration.previousLayoutPayloads) {
            throw .previousLayout(configuration.dataDirectory)
        }
        self.journal = try NamespaceJournal(paths: configuration.namespaceJournalPaths)
        let registryExisted = FileSystem.exists(configuration.registryPath)
        do {
            self.registry = try Registry(path: configuration.registryPath, retention: configuration.retention)
        } catch {
            throw .from(error, doing: "open the registry at \(configuration.registryPath)")
        }
        let applied: (primary: LogLocation, redundancy: LogLocation, sequence: UInt64)?
        do {
            applied = try self.registry.positions()
        } catch {
            throw .from(error, doing: "read the registry")
        }
        var report = StartupReport()
        do {
            let note: (String) -> Void = { logger.warning("\($0)") }
            self.primaryLog = try SegmentLog(
                root: configuration.primaryLogDirectory, volume: .primary, segmentBytes: UInt64(configuration.segmentBytes),
                tailHint: applied?.primary, logger: note)
            self.redundancyLog = try SegmentLog(
                root: configuration.redundancyLogDirectory, volume: .redundancy, segmentBytes: UInt64(configuration.segmentBytes),
                tailHint: applied?.redundancy, logger: note)
        } catch {
            throw .from(error, doing: "open the logs")
        }
        self.state = Mutex(StoreState(cacheBytes: configuration.cacheBytes))
        self.lastVersion = Atomic(0)
        self.lastSequence = Atomic(applied?.sequence ?? 0)
        self.pipeline = CommitPipeline()

        let rebuild = !registryExisted || applied == nil && self.registryIsEmpty
        var replayWork: [ApplyItem] = []
        if rebuild {
            report.rebuilt = try self.rebuildRegistry()
            if report.rebuilt!.fragments > 0 {
                logger.warning("the registry was missing; rebuilt it from the logs", metadata: report.rebuilt!.metadata)
            }
        } else {
            try self.loadIndex()
            (report.replayed, replayWork) = self.replay(from: applied)
            if report.replayed > 0 {
                logger.info("replayed log records the registry had not applied", metadata: ["records": "\(report.replayed)"])
            }
        }
        // Versions above this cannot have been handed out by this store: the registry or a log
        // record was tampered with. Going on would wrap the counter and overwrite fragments.
        guard self.lastVersion.load(ordering: .relaxed) < FragmentRecord.versionCeiling else {
            throw StoreError(
                .io,
                "the highest version recorded (\(self.lastVersion.load(ordering: .relaxed))) is implausible: the registry's meta table or a log record was altered; restore it, or move registry.sqlite3 aside to rebuild it from the logs")
        }
        self.startupReport.withLock { $0 = report }
        self.pipeline.start(store: self)
        // The registry catches up on the replayed records behind the start, before any new write.
        self.pipeline.enqueueApply(replayWork)
        self.startIndexing()
        self.startVectorIndexer()
        self.settleNamespaces()
    }

    private var registryIsEmpty: Bool {
        ((try? self.registry.fragmentCount()) ?? 0) == 0
    }

    private func loadIndex() throws(StoreError) {
        do throws(SQLiteError) {
            let queued = try self.registry.queuedRepairs()
            let rows = try self.registry.fragmentCount()
            // Straight into the index, under one lock for the whole load. Reading and decoding the rows
            // takes about as long as inserting them, so a second thread reads while this one inserts.
            let scan = RegistryScan(registry: self.registry)
            scan.start()
            self.state.withLock { state in
                state.reserve(rows)
                // Live bytes per segment, summed here and handed to the logs once (not a lock per row).
                var primaryLive: [UInt32: UInt64] = [:]
                var redundancyLive: [UInt32: UInt64] = [:]
                while let chunk = scan.next() {
                    for row in chunk {
                        if let location = row.location {
                            primaryLive[location.segment, default: 0] += UInt64(LogRecord.length(id: row.id, bodyLength: row.recordLength))
                        }
                        if let location = row.redundancy {
                            redundancyLive[location.segment, default: 0] += UInt64(LogRecord.length(id: row.id, bodyLength: row.exactLength))
                        }
                        state.set(row.id, IndexEntry(row: row, queuedAt: queued[row.id]?.queuedAt, progress: queued[row.id]?.progress ?? RepairProgress()))
                    }
                }
                self.primaryLog.retain(primaryLive)
                self.redundancyLog.retain(redundancyLive)
            }
            if let failure = scan.failure { throw failure }
            self.lastVersion.store(try self.registry.maxVersion(), ordering: .relaxed)
            let dimension = try self.registry.meta("embedding_dimension").flatMap { Int($0) }
            self.embeddingDimension.withLock { $0 = dimension }
            self.registry.writer.resetAll()
        } catch {
            throw .from(error, doing: "load the registry")
        }
    }

    /// Finishes queued writes, stops the pipeline threads and lets go of the data directory. Reads
    /// keep working; writes fail.
    public func close() {
        self.shutdownOrder.run()
        self.registry.checkpointAndTruncate()
        self.lock.release()
    }

    /// What `close` stops, in order: the loader and the embedder (no new work for the write path),
    /// the vector-index builder (a build going on is dropped; the serving graphs are saved), the
    /// write path (log thread, registry apply, checkpointer: what is queued is written first), then
    /// the indexer (it takes the last writes into the text index).
    private var shutdownOrder: ShutdownOrder {
        ShutdownOrder([
            { [self] in self.textLoader.stop() },
            { [self] in self.meanings.stop() },
            { [self] in self.vectorIndexer.stop() },
            { [self] in self.neighbourBuilder.save(self.text.primary) },
            { [self] in self.pipeline.stop() },
            { [self] in self.feed.stop() },
        ])
    }

    /// The store's background workers, for metrics.
    public var workers: [Worker] {
        [self.textLoader] + self.meanings.workers + [self.vectorIndexer, self.pipeline.applier, self.pipeline.checkpointer, self.feed.worker]
    }
}

/// What start-up found.
public struct StartupReport: Sendable {
    /// Log records past the registry's applied position, replayed into it.
    public var replayed = 0
    /// Set when the registry was rebuilt from the logs.
    public var rebuilt: RebuildSummary?
}

// MARK: - Reading

extension FragmentStore {
    private enum Lookup {
        case notFound
        case blank(BlankFragment)
        case hit(ServedFragment)
        case miss(StoredRow)
    }

    /// Reads a fragment: from the cache, else from its record in the primary log, verified against the index's
    /// checksum. A missing or corrupt payload turns the fragment blank (durably, and queued for
    /// repair) and the read answers with the blank.
    public func read(_ id: String) -> ReadResult {
        // A concurrent write may replace the version between the lookup and the file read; then the
        // old file can vanish, and the lookup is simply repeated.
        let now = Timestamp.now
        for _ in 0..<8 {
            let lookup: Lookup = self.state.withLock { state in
                guard let entry = state[id], !entry.row.isExpired(at: now) else { return .notFound }
                if entry.row.status == .blank {
                    return .blank(BlankFragment(row: entry.row.base, queuedAt: entry.queuedAt, progress: entry.progress))
                }
                if entry.cacheSlot >= 0 {
                    state.cache.touch(entry.cacheSlot)
                    let body = state.cache.body(entry.cacheSlot)
                    return .hit(ServedFragment(body: body, version: entry.row.version, status: entry.row.status, checksum: entry.row.checksum))
                }
                return .miss(entry.row)
            }
            switch lookup {
            case .notFound:
                return .notFound
            case .blank(let blank):
                return .blank(blank)
            case .hit(let served):
                self.counters.cacheHits.add(1, ordering: .relaxed)
                return .fragment(served)
            case .miss(let row):
                self.counters.cacheMisses.add(1, ordering: .relaxed)
                let outcome = self.readServed(row)
                switch outcome {
                case .record(let record):
                    let body = ServedFragment.makeBody(record: record, status: row.status, checksum: row.checksum)
                    self.state.withLock { $0.cache(row.id, version: row.version, body: body, recordLength: record.count) }
                    return .fragment(ServedFragment(body: body, version: row.version, status: row.status, checksum: row.checksum))
                case .transient(let error):
                    self.logger.warning("record temporarily unreadable", metadata: ["fragment.id": "\(id)", "error": "\(error)"])
                    return .unavailable("the record could not be read just now (\(error)); nothing is lost")
                case .unreadable(let error):
                    self.logger.warning("record unreadable", metadata: ["fragment.id": "\(id)", "error": "\(error)"])
                case .missing, .corrupt:
                    break
                }
                // Look again if the fragment changed meanwhile (a write or a repair moved it).
                if let damage = outcome.damage, let blank = self.markBlank(id, version: row.version, location: row.location, reason: damage, detectedBy: .read, priority: .servedBlank) {
                    return .blank(blank)
                }
            }
        }
        return .notFound
    }

    /// Turns a version blank in memory at once and records it durably in the background (a reader
    /// does not wait for the commit; if the process dies first, the next read detects it again).
    /// - Returns: The blank, or nil if the fragment changed meanwhile (the caller looks again).
    /// - Parameter location: The record found damaged; if the fragment was repaired or moved since
    ///   (it points elsewhere now), nothing is marked.
    func markBlank(_ id: String, version: UInt64, location: LogLocation?, reason: BlankReason, detectedBy: Detection, priority: RepairPriority) -> BlankFragment? {
        let now = Timestamp.now
        let marked: (BlankFragment, LifecycleTransition?)? = self.state.withLock { state in
            guard var entry = state[id], entry.row.version == version, entry.row.location == location else { return nil }
            guard let transition = FragmentLifecycle.transition(
                from: entry.row.base, progress: entry.progress, on: .damaged(reason, detectedBy: detectedBy, priority: priority), at: now)
            else {
                return (BlankFragment(row: entry.row.base, queuedAt: entry.queuedAt, progress: entry.progress), nil)
            }
            return (self.blankEntry(&entry, transition, state: &state, id: id, now: now), transition)
        }
        guard let marked else { return nil }
        let (blank, transition) = marked
        guard let transition else { return blank }
        self.counters.damageDetected(reason)
        self.logger.info(
            "fragment turned blank",
            metadata: ["fragment.id": "\(id)", "fragment.version": "\(version)", "reason": "\(reason.rawValue)", "detected_by": "\(detectedBy.rawValue)"])
        let row = blank.row
        self.pipeline.submit(
            .change(
                RegistryChange(apply: { registry in
                    guard try registry.markLost(row) else { return }
                    try registry.record(transition, id: id, at: now)
                })))
        return blank
    }

    private func blankEntry(_ entry: inout IndexEntry, _ transition: LifecycleTransition, state: inout StoreState, id: String, now: Timestamp) -> BlankFragment {
        entry.row.base = transition.row!
        entry.progress = transition.progress
        entry.queuedAt = entry.queuedAt ?? now
        // A cached body stays: reads answer the blank (status comes first), and the bytes remain the
        // cheapest source for an exact repair if they match the stored checksum.
        state.set(id, entry)
        return BlankFragment(row: entry.row.base, queuedAt: entry.queuedAt, progress: entry.progress)
    }

    /// The registry row of a fragment as the index holds it now; nil for an unknown, deleted or
    /// expired fragment.
    public func row(_ id: String) -> FragmentRow? {
        self.storedRow(id)?.base
    }

    /// The row with its log locations; nil for an unknown, deleted or expired fragment.
    func storedRow(_ id: String) -> StoredRow? {
        let now = Timestamp.now
        return self.state.withLock { $0[id]?.row }.flatMap { $0.isExpired(at: now) ? nil : $0 }
    }

    /// The rows of several fragments at once (nil for unknown, deleted or expired ids), under one lock.
    public func rows(_ ids: [String]) -> [FragmentRow?] {
        let now = Timestamp.now
        return self.state.withLock { state in ids.map { state[$0]?.row.base } }.map { $0.flatMap { $0.isExpired(at: now) ? nil : $0 } }
    }

    /// The row the index holds, expired or not: for the store's own bookkeeping (replay, compaction),
    /// where an expired fragment still has records until its tombstone is written.
    func indexedRow(_ id: String) -> StoredRow? {
        self.state.withLock { $0[id]?.row }
    }

    func indexedRows(_ ids: [String]) -> [StoredRow?] {
        self.state.withLock { state in ids.map { state[$0]?.row } }
    }

}

// MARK: - Listing and history

extension FragmentStore {
    /// Lists fragments in id order, after `after`, filtered by status and tag, as the registry has them.
    /// To see every write acknowledged before, call it from `whenApplied`.
    public func list(namespace: String, status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentPage {
        do {
            let rows = try self.registry.list(namespace: namespace, status: status, tag: tag, after: after, limit: limit + 1)
            let page = rows.prefix(limit).map(\.base)
            return FragmentPage(rows: page, nextAfter: rows.count > limit ? page.last?.id : nil)
        } catch let error as SQLiteError {
            throw .from(error, doing: "list fragments")
        } catch {
            throw StoreError(.io, "cannot list fragments: \(error)")
        }
    }

    /// The history of a known fragment, oldest first; nil if the id is unknown.
    public func history(_ id: String, limit: Int = 500) throws(StoreError) -> [FragmentEvent]? {
        guard self.row(id) != nil else { return nil }
        do {
            return try self.registry.history(id, limit: limit)
        } catch {
            throw StoreError(.io, "cannot read the history: \(error)")
        }
    }

    /// Ids in order after `after`, as the registry has them.
    public func ids(namespace: String?, after: String?, limit: Int) throws(StoreError) -> [String] {
        do {
            return try self.registry.ids(namespace: namespace, after: after, limit: limit)
        } catch {
            throw StoreError(.io, "cannot walk the registry: \(error)")
        }
    }

    /// Waits until every operation submitted so far is applied to the registry. Blocks: not for
    /// HTTP threads (use `whenApplied`).
    public func flush() {
        self.pipeline.flush()
    }

    /// Calls `body` once every operation submitted so far is applied to the registry, on the apply
    /// thread: hand real work to another queue from there.
    public func whenApplied(_ body: @escaping @Sendable () -> Void) {
        self.pipeline.whenApplied(body)
    }
}

// MARK: - Statistics

/// Counters the store keeps for metrics.
final class StoreCounters: Sendable {
    let cacheHits = Atomic<Int>(0)
    let cacheMisses = Atomic<Int>(0)
    let missingDetected = Atomic<Int>(0)
    let checksumDetected = Atomic<Int>(0)
    let unreadableDetected = Atomic<Int>(0)
    let redundancyDamage = Atomic<Int>(0)
    let commits = Atomic<Int>(0)
    let committedOperations = Atomic<Int>(0)

    func damageDetected(_ reason: BlankReason) {
        switch reason {
        case .missing: self.missingDetected.add(1, ordering: .relaxed)
        case .checksumMismatch: self.checksumDetected.add(1, ordering: .relaxed)
        case .unreadable: self.unreadableDetected.add(1, ordering: .relaxed)
        }
    }
}

extension FragmentStore {
    /// Bytes held by each area: the primary and redundancy segments (garbage included, until
    /// compaction), and the registry's database files.
    public func diskUsage() -> (primary: Int64, redundancy: Int64, registry: Int64) {
        let registry = ["", "-wal", "-shm"].reduce(Int64(0)) { $0 + (FileSystem.size(self.configuration.registryPath + $1) ?? 0) }
        return (self.primaryLog.bytes, self.redundancyLog.bytes, registry)
    }

    /// Fragments currently blank (cheap: one lock, no allocation).
    public var blankCount: Int {
        self.state.withLock { $0.count(.blank) }
    }

    public func stats() -> StoreStats {
        let (count, byStatus, bytes, cacheBytes, cacheEntries) = self.state.withLock { state in
            (state.count, state.counts, state.recordBytes, state.cache.bytes, state.cache.count)
        }
        return StoreStats(
            fragments: count, byStatus: byStatus, recordBytes: bytes, cacheBytes: cacheBytes, cacheEntries: cacheEntries,
            cacheHits: self.counters.cacheHits.load(ordering: .relaxed),
            cacheMisses: self.counters.cacheMisses.load(ordering: .relaxed),
            damageDetected: [
                .missing: self.counters.missingDetected.load(ordering: .relaxed),
                .checksumMismatch: self.counters.checksumDetected.load(ordering: .relaxed),
                .unreadable: self.counters.unreadableDetected.load(ordering: .relaxed),
            ],
            redundancyDamageDetected: self.counters.redundancyDamage.load(ordering: .relaxed),
            commits: self.counters.commits.load(ordering: .relaxed),
            committedOperations: self.counters.committedOperations.load(ordering: .relaxed),
            pendingOperations: self.pipeline.pending)
    }
}

