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
    let state: Mutex<StoreState>
    /// The last version handed out; versions are unique across the store and only go up.
    let lastVersion: Atomic<UInt64>
    /// The last record sequence number handed out (store-wide, both logs).
    let lastSequence: Atomic<UInt64>
    let pipeline: CommitPipeline
    let counters = StoreCounters()
    /// Sketches, postings and meanings of every fragment, for queries, context and reconstruction.
    let text: ReadWriteLock<TextIndex>
    /// Text-index changes on their way from the log thread to the indexer thread.
    let feed = IndexFeed()
    /// Fragments waiting for the built-in model.
    let meanings = MeaningWorker()
    /// Builds the text index's vector graphs in the background (FragmentStore+Neighbours.swift).
    let neighbourBuilder: NeighbourBuilder
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
        self.text = ReadWriteLock(TextIndex(meaningDimensions: configuration.encoder?.dimensions ?? 0, neighbours: Self.neighbours(configuration)))
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
        guard self.lastVersion.load(ordering: .relaxed) < Self.versionCeiling else {
            throw StoreError(
                .io,
                "the highest version recorded (\(self.lastVersion.load(ordering: .relaxed))) is implausible: the registry's meta table or a log record was altered; restore it, or move registry.sqlite3 aside to rebuild it from the logs")
        }
        self.startupReport.withLock { $0 = report }
        self.pipeline.start(store: self)
        // The registry catches up on the replayed records behind the start, before any new write.
        self.pipeline.enqueueApply(replayWork)
        self.startIndexing()
        self.neighbourBuilder.start(self.text) { [self] in self.textReady.load(ordering: .relaxed) }
    }

    /// Far above anything a store reaches (2^62), far below where the counter would wrap.
    package static let versionCeiling: UInt64 = 1 << 62

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
        self.meanings.stop()
        self.neighbourBuilder.stop()
        self.neighbourBuilder.save(self.text)
        self.pipeline.stop()
        self.feed.stop()
        self.registry.checkpointAndTruncate()
        self.lock.release()
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
    /// What a read found.
    public enum ReadResult: Sendable {
        /// The store never knew the id, or it was deleted.
        case notFound
        /// The fragment (`ok` or `reconstructed`), as the bytes to serve.
        case fragment(ServedFragment)
        /// Known, but its payload is lost: what the registry still knows.
        case blank(BlankFragment)
        /// The record could not be read for a passing reason (out of descriptors or memory): nothing
        /// is lost and nothing was recorded; the client should try again shortly.
        case unavailable(String)
        /// The storage behind the store (cluster mode: PostgreSQL) does not answer and no copy is at
        /// hand: nothing is known about the fragment just now.
        case backendUnavailable(String)
    }

    /// A readable fragment: the JSON body to send, plus the facts headers need.
    public struct ServedFragment: Sendable {
        public var body: [UInt8]
        public var version: UInt64
        public var status: FragmentStatus
        public var checksum: UInt32

        package init(body: [UInt8], version: UInt64, status: FragmentStatus, checksum: UInt32) {
            self.body = body
            self.version = version
            self.status = status
            self.checksum = checksum
        }
    }

    /// A blank fragment: its registry row (links, tags, reason) and when its repair was queued.
    public struct BlankFragment: Sendable {
        public var row: FragmentRow
        public var queuedAt: Timestamp?
        /// Where its repair stands: attempts made, the last one's error, the next one's earliest time.
        public var progress: RepairProgress

        package init(row: FragmentRow, queuedAt: Timestamp?, progress: RepairProgress = RepairProgress()) {
            self.row = row
            self.queuedAt = queuedAt
            self.progress = progress
        }
    }

    private enum Lookup {
        case notFound
        case blank(BlankFragment)
        case hit(ServedFragment)
        case miss(FragmentRow)
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
                    return .blank(BlankFragment(row: entry.row, queuedAt: entry.queuedAt, progress: entry.progress))
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
                    let body = Self.servedBody(record: record, status: row.status, checksum: row.checksum)
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
        let marked: BlankFragment? = self.state.withLock { state in
            guard var entry = state[id], entry.row.version == version, entry.row.location == location else { return nil }
            if entry.row.status == .blank {
                return BlankFragment(row: entry.row, queuedAt: entry.queuedAt, progress: entry.progress)
            }
            return self.blankEntry(&entry, state: &state, id: id, reason: reason, detectedBy: detectedBy, now: now)
        }
        guard let marked else { return nil }
        self.counters.damageDetected(reason)
        self.logger.info(
            "fragment turned blank",
            metadata: ["fragment.id": "\(id)", "fragment.version": "\(version)", "reason": "\(reason.rawValue)", "detected_by": "\(detectedBy.rawValue)"])
        let row = marked.row
        self.pipeline.submit(
            .change(
                RegistryChange(apply: { registry in
                    guard try registry.markLost(row, priority: priority, at: now) else { return }
                    try registry.addEvent(id, at: now, kind: .lost, detail: HistoryDetail.lost(version: version, reason: reason, detectedBy: detectedBy))
                    try registry.addEvent(id, at: now, kind: .queued, detail: HistoryDetail.queued(priority))
                })))
        return marked
    }

    private func blankEntry(
        _ entry: inout IndexEntry, state: inout StoreState, id: String, reason: BlankReason, detectedBy: Detection, now: Timestamp
    ) -> BlankFragment {
        entry.row.status = .blank
        entry.row.blankReason = reason
        entry.row.lostAt = now
        entry.row.detectedBy = detectedBy
        entry.queuedAt = entry.queuedAt ?? now
        // A cached body stays: reads answer the blank (status comes first), and the bytes remain the
        // cheapest source for an exact repair if they match the stored checksum.
        state.set(id, entry)
        return BlankFragment(row: entry.row, queuedAt: entry.queuedAt, progress: entry.progress)
    }

    /// The registry row of a fragment as the index holds it now; nil for an unknown, deleted or
    /// expired fragment.
    public func row(_ id: String) -> FragmentRow? {
        let now = Timestamp.now
        return self.state.withLock { $0[id]?.row }.flatMap { $0.isExpired(at: now) ? nil : $0 }
    }

    /// The rows of several fragments at once (nil for unknown, deleted or expired ids), under one lock.
    public func rows(_ ids: [String]) -> [FragmentRow?] {
        let now = Timestamp.now
        return self.state.withLock { state in ids.map { state[$0]?.row } }.map { $0.flatMap { $0.isExpired(at: now) ? nil : $0 } }
    }

    /// The row the index holds, expired or not: for the store's own bookkeeping (replay, compaction),
    /// where an expired fragment still has records until its tombstone is written.
    func indexedRow(_ id: String) -> FragmentRow? {
        self.state.withLock { $0[id]?.row }
    }

    func indexedRows(_ ids: [String]) -> [FragmentRow?] {
        self.state.withLock { state in ids.map { state[$0]?.row } }
    }

    /// The served JSON: the record with its closing brace replaced by `status` and `checksum`.
    package static func servedBody(record: [UInt8], status: FragmentStatus, checksum: UInt32) -> [UInt8] {
        var body = record
        if body.last == UInt8(ascii: "}") { body.removeLast() }
        body.append(contentsOf: ",\"status\":\"\(status.rawValue)\",\"checksum\":\"\(CRC32C.format(checksum))\"}".utf8)
        return body
    }

    /// The record a served body was built from.
    package static func record(fromServedBody body: [UInt8], recordLength: Int) -> [UInt8] {
        guard recordLength > 0, recordLength <= body.count else { return [] }
        var record = Array(body[0..<(recordLength - 1)])
        record.append(UInt8(ascii: "}"))
        return record
    }
}

// MARK: - Listing and history

extension FragmentStore {
    /// A page of fragment rows in id order.
    public struct Page: Sendable {
        public var rows: [FragmentRow]
        /// The last id of this page when more may follow.
        public var nextAfter: String?

        package init(rows: [FragmentRow], nextAfter: String?) {
            self.rows = rows
            self.nextAfter = nextAfter
        }
    }

    /// Lists fragments in id order, after `after`, filtered by status and tag, as the registry has them.
    /// To see every write acknowledged before, call it from `whenApplied`.
    public func list(status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> Page {
        do {
            let rows = try self.registry.list(status: status, tag: tag, after: after, limit: limit + 1)
            let page = Array(rows.prefix(limit))
            return Page(rows: page, nextAfter: rows.count > limit ? page.last?.id : nil)
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
    public func ids(after: String?, limit: Int) throws(StoreError) -> [String] {
        do {
            return try self.registry.ids(after: after, limit: limit)
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

/// A snapshot of the store's size and activity.
public struct StoreStats: Sendable {
    public var fragments: Int
    public var byStatus: [FragmentStatus: Int]
    public var recordBytes: Int64
    public var cacheBytes: Int
    public var cacheEntries: Int
    public var cacheHits: Int
    public var cacheMisses: Int
    /// Damage found, by kind (`missing`, `checksum_mismatch`, `unreadable`).
    public var damageDetected: [BlankReason: Int]
    /// Damaged redundancy copies found by the scrub.
    public var redundancyDamageDetected: Int
    public var commits: Int
    public var committedOperations: Int
    public var pendingOperations: Int
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

