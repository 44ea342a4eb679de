import CarmaJSON
import CarmaText
import Logging
import Synchronization

/// The durable fragment store: a SQLite registry, one payload file per fragment version, a second
/// copy of each payload in the redundancy area, and an in-memory index with a payload cache.
///
/// Reads are synchronous and never touch SQLite: an index lookup, then the cache or one file read.
/// Writes go through a three-stage group commit (files written by one thread, synced by a second,
/// committed in batches by a third), so one `syncfs` and one SQLite commit serve many waiting requests.
public final class FragmentStore: Sendable {
    public let configuration: StoreConfiguration
    let logger: Logger
    let registry: Registry
    let primary: PayloadDirectory
    let redundancy: RedundancyLog
    /// Whether the two areas share a file system (then one sync covers both).
    let sharedFileSystem: Bool
    let state: Mutex<StoreState>
    /// The last version handed out; versions are unique across the store and only go up.
    let lastVersion: Atomic<UInt64>
    /// Ids with a write accepted by the file stage but not yet committed, and what they will become.
    let inflight = Mutex<[String: Inflight]>([:])
    let pipeline: CommitPipeline
    let counters = StoreCounters()
    /// Sketches of every fragment, for queries, context and reconstruction.
    let text = Mutex(TextIndex())
    /// Whether the text index has been loaded (it loads in the background after start-up).
    let textReady = Atomic<Bool>(false)
    /// The embedding dimension of this store, fixed by the first fragment stored with one.
    let embeddingDimension = Mutex<Int?>(nil)

    struct Inflight {
        var version: UInt64
        /// nil when the pending operation is a delete.
        var row: FragmentRow?
    }

    /// Opens the store, creating its directories and registry if needed, and loads the index.
    ///
    /// If the registry is missing but payload files exist (the registry was lost), it is rebuilt from
    /// the files first, as `reindex` would.
    public init(configuration: StoreConfiguration, logger: Logger) throws(StoreError) {
        self.configuration = configuration
        self.logger = logger
        do {
            try FileSystem.makeDirectory(configuration.dataDirectory)
            self.primary = try PayloadDirectory(root: configuration.payloadDirectory)
            self.redundancy = try RedundancyLog(root: configuration.redundancyDirectory, segmentBytes: UInt64(configuration.redundancySegmentBytes))
        } catch {
            throw .from(error, doing: "create the data directories")
        }
        self.sharedFileSystem = FileSystem.device(of: self.primary.root) == FileSystem.device(of: self.redundancy.root)
        let registryExisted = FileSystem.exists(configuration.registryPath)
        do {
            self.registry = try Registry(path: configuration.registryPath)
        } catch {
            throw .from(error, doing: "open the registry at \(configuration.registryPath)")
        }
        self.state = Mutex(StoreState(cacheBytes: configuration.cacheBytes))
        self.lastVersion = Atomic(0)
        self.pipeline = CommitPipeline()

        if !registryExisted {
            let rebuilt = try Reindexer(registry: self.registry, primary: self.primary, redundancy: self.redundancy, logger: logger).run()
            if rebuilt.fragments > 0 {
                logger.warning("the registry was missing; rebuilt it from payload files", metadata: rebuilt.metadata)
            }
        }
        try self.loadIndex()
        self.pipeline.start(store: self)
        self.loadTextIndexInBackground()
    }

    private func loadIndex() throws(StoreError) {
        do throws(SQLiteError) {
            let queued = try self.registry.queuedTimes()
            let rows = try self.registry.fragmentCount()
            var live: [UInt32: UInt64] = [:]
            // Straight into the index, under one lock for the whole load. Reading and decoding the rows
            // takes about as long as inserting them, so a second thread reads while this one inserts.
            let scan = RegistryScan(registry: self.registry)
            scan.start()
            self.state.withLock { state in
                state.reserve(rows)
                while let chunk = scan.next() {
                    for row in chunk {
                        if let location = row.redundancy {
                            live[location.segment, default: 0] += UInt64(row.copyLength)
                        }
                        state.set(row.id, IndexEntry(row: row, queuedAt: queued[row.id]))
                    }
                }
            }
            if let failure = scan.failure { throw failure }
            self.redundancy.retain(live)
            self.lastVersion.store(try self.registry.maxVersion(), ordering: .relaxed)
            let dimension = try self.registry.meta("embedding_dimension").flatMap { Int($0) }
            self.embeddingDimension.withLock { $0 = dimension }
            self.registry.writer.resetAll()
        } catch {
            throw .from(error, doing: "load the registry")
        }
    }

    /// Finishes queued writes and stops the commit threads. Reads keep working; writes fail.
    public func close() {
        self.pipeline.stop()
    }
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
    }

    /// A readable fragment: the JSON body to send, plus the facts headers need.
    public struct ServedFragment: Sendable {
        public var body: [UInt8]
        public var version: UInt64
        public var status: FragmentStatus
        public var checksum: UInt32
    }

    /// A blank fragment: its registry row (links, tags, reason) and when its repair was queued.
    public struct BlankFragment: Sendable {
        public var row: FragmentRow
        public var queuedAt: Timestamp?
    }

    private enum Lookup {
        case notFound
        case blank(BlankFragment)
        case hit(ServedFragment)
        case miss(version: UInt64, status: FragmentStatus, checksum: UInt32, kind: PayloadFile.Kind)
    }

    /// Reads a fragment: from the cache, else from its payload file, verified against the registry's
    /// checksum. A missing or corrupt payload turns the fragment blank (durably, and queued for
    /// repair) and the read answers with the blank.
    public func read(_ id: String) -> ReadResult {
        // A concurrent write may replace the version between the lookup and the file read; then the
        // old file can vanish, and the lookup is simply repeated.
        for _ in 0..<8 {
            let lookup: Lookup = self.state.withLock { state in
                guard let entry = state[id] else { return .notFound }
                if entry.row.status == .blank {
                    return .blank(BlankFragment(row: entry.row, queuedAt: entry.queuedAt))
                }
                if entry.cacheSlot >= 0 {
                    state.cache.touch(entry.cacheSlot)
                    let body = state.cache.body(entry.cacheSlot)
                    return .hit(ServedFragment(body: body, version: entry.row.version, status: entry.row.status, checksum: entry.row.checksum))
                }
                return .miss(version: entry.row.version, status: entry.row.status, checksum: entry.row.checksum, kind: entry.row.servedKind)
            }
            switch lookup {
            case .notFound:
                return .notFound
            case .blank(let blank):
                return .blank(blank)
            case .hit(let served):
                self.counters.cacheHits.add(1, ordering: .relaxed)
                return .fragment(served)
            case .miss(let version, let status, let checksum, let kind):
                self.counters.cacheMisses.add(1, ordering: .relaxed)
                let outcome = self.primary.read(id: id, version: version, kind: kind, checksum: checksum)
                if case .record(let record) = outcome {
                    let body = Self.servedBody(record: record, status: status, checksum: checksum)
                    self.state.withLock { $0.cache(id, version: version, body: body, recordLength: record.count) }
                    return .fragment(ServedFragment(body: body, version: version, status: status, checksum: checksum))
                }
                if case .unreadable(let error) = outcome {
                    self.logger.warning("payload unreadable", metadata: ["fragment.id": "\(id)", "error": "\(error)"])
                }
                if let damage = outcome.damage, let blank = self.markBlank(id, version: version, reason: damage, detectedBy: .read, priority: .servedBlank) {
                    return .blank(blank)
                }
            }
        }
        return .notFound
    }

    /// Turns a version blank in memory at once and records it durably in the background (a reader
    /// does not wait for the commit; if the process dies first, the next read detects it again).
    /// - Returns: The blank, or nil if the fragment changed meanwhile (the caller looks again).
    func markBlank(_ id: String, version: UInt64, reason: BlankReason, detectedBy: Detection, priority: RepairPriority) -> BlankFragment? {
        let now = Timestamp.now
        let marked: BlankFragment? = self.state.withLock { state in
            guard var entry = state[id], entry.row.version == version else { return nil }
            if entry.row.status == .blank {
                return BlankFragment(row: entry.row, queuedAt: entry.queuedAt)
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
                    try registry.markLost(row, priority: priority, at: now)
                    try registry.addEvent(
                        id, at: now, kind: "lost",
                        detail: ["version": .number(Double(version)), "reason": .string(reason.rawValue), "detected_by": .string(detectedBy.rawValue)])
                    try registry.addEvent(id, at: now, kind: "queued", detail: ["priority": .string(priority.name)])
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
        return BlankFragment(row: entry.row, queuedAt: entry.queuedAt)
    }

    /// The registry row of a fragment as the index holds it now.
    public func row(_ id: String) -> FragmentRow? {
        self.state.withLock { $0[id]?.row }
    }

    /// The rows of several fragments at once (nil for unknown ids), under one lock.
    public func rows(_ ids: [String]) -> [FragmentRow?] {
        self.state.withLock { state in ids.map { state[$0]?.row } }
    }

    /// The served JSON: the record with its closing brace replaced by `status` and `checksum`.
    static func servedBody(record: [UInt8], status: FragmentStatus, checksum: UInt32) -> [UInt8] {
        var body = record
        if body.last == UInt8(ascii: "}") { body.removeLast() }
        body.append(contentsOf: ",\"status\":\"\(status.rawValue)\",\"checksum\":\"\(CRC32C.format(checksum))\"}".utf8)
        return body
    }

    /// The record a served body was built from.
    static func record(fromServedBody body: [UInt8], recordLength: Int) -> [UInt8] {
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
    }

    /// Lists fragments in id order, after `after`, filtered by status and tag. Waits for queued
    /// status changes to be committed first, so a listing agrees with reads made before it.
    public func list(status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> Page {
        self.pipeline.flush()
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
        self.pipeline.flush()
        do {
            return try self.registry.history(id, limit: limit)
        } catch {
            throw StoreError(.io, "cannot read the history: \(error)")
        }
    }

    /// Waits until every operation submitted so far is committed.
    public func flush() {
        self.pipeline.flush()
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
    /// Bytes held by each area: payload records in the primary area (headers not counted), the
    /// redundancy segments (garbage included, until compaction), and the registry's database files.
    public func diskUsage() -> (primary: Int64, redundancy: Int64, registry: Int64) {
        let primary = self.state.withLock { $0.recordBytes }
        let registry = ["", "-wal", "-shm"].reduce(Int64(0)) { $0 + (FileSystem.size(self.configuration.registryPath + $1) ?? 0) }
        return (primary, self.redundancy.bytes, registry)
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

