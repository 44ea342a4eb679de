import CarmaEmbedding
import CarmaJSON
import CarmaText
import Foundation
import FragmentCore
import Logging
import Synchronization

/// The fragment store on PostgreSQL, shared by several carmad nodes.
///
/// PostgreSQL holds everything durable: the registry (`carma_fragments`), the served records
/// (`carma_payloads`, CRC32C verified by the node on every read), the exact copies
/// (`carma_redundancy`), the repair queue with leases, histories, cycle reports and a change feed.
/// A write is acknowledged once its transaction committed. Each node keeps a bounded cache of served
/// bodies, checked against the current version on every read, and an in-memory text index that
/// follows the change feed.
public final class ClusterStore: Sendable {
    public let configuration: ClusterConfiguration
    let logger: Logger
    let pool: PGPool
    let cache: Mutex<NodeCache>
    let counters = ClusterCounters()
    /// Sketches, postings and links of every fragment, for queries, context and reconstruction.
    let text: TextIndexes
    /// The namespaces, their quotas and tokens (tables in PostgreSQL).
    let catalog: ClusterCatalog
    /// The namespaces' usage last read, answered while the database does not answer.
    let lastUsage = Mutex<[String: NamespaceUsage]>([:])
    /// Fragments waiting for the built-in model are claimed and embedded by this thread.
    let embedder = ClusterEmbedder()
    /// The dimension of client embeddings, fixed by the first fragment stored with one (as the
    /// database records it; nil until this node has seen it).
    let embeddingDimension = Mutex<Int?>(nil)
    let follower: ChangeFollower
    /// Whether the text index holds every fragment yet (it loads in the background at start).
    let textLoaded = Atomic<Bool>(false)
    /// When the change feed was last read; the index is loaded afresh when this is too long ago.
    let feedReadAt = Mutex<ContinuousClock.Instant?>(nil)
    let loadFailures = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    /// Counts for `/metrics` and `/readyz`, which never wait on the database for more than
    /// `observationPatience` (issue 28: a scrape waited out a stalled database, 6 s, and then
    /// reported it up): past it they answer the last counts known.
    let statusCounts = LastKnown<[FragmentStatus: Int]>(patience: observationPatience)
    let blankCounts = LastKnown<Int>(patience: observationPatience)
    let tableSizes = LastKnown<[Int64]>(patience: observationPatience)
    let queueDepths = LastKnown<[Int]>(patience: observationPatience)
    static let observationPatience: Duration = .milliseconds(500)

    /// Connects, creates or migrates the schema (safe when several nodes start at once), and starts
    /// the thread that loads the text index and then follows the change feed. Fails when the
    /// database cannot be reached: a node does not start without it.
    public init(configuration: ClusterConfiguration, logger: Logger) throws(StoreError) {
        self.configuration = configuration
        self.logger = logger
        let timeout = configuration.timeout
        let application = "carmad " + configuration.nodeName
        self.pool = PGPool(url: configuration.databaseURL, size: configuration.poolSize, timeout: timeout) { connection, deadline throws(PGError) in
            // The server gives up on a statement a little after the node has; idle transactions of a
            // node that died are ended by the server.
            let milliseconds = timeout.wholeMilliseconds
            try connection.execute(
                "SET application_name = '\(application.replacingOccurrences(of: "'", with: "''"))'; SET statement_timeout = \(max(1000, 2 * milliseconds)); SET idle_in_transaction_session_timeout = 60000",
                deadline: deadline)
        }
        self.cache = Mutex(NodeCache(capacity: configuration.cacheBytes))
        self.catalog = ClusterCatalog(pool: self.pool)
        self.text = TextIndexes(meaningDimensions: configuration.encoder?.dimensions ?? 0)
        self.follower = ChangeFollower()
        do {
            let applied = try ClusterSchema.migrate(self.pool, redundancyTablespace: configuration.redundancyTablespace)
            if !applied.isEmpty {
                logger.info("database schema migrated", metadata: ["schema.versions": "\(applied.map(String.init).joined(separator: ","))"])
            }
        } catch {
            throw Self.storeError(error, doing: "prepare the database schema at \(configuration.redactedURL)")
        }
        let dimension = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.execute("SELECT value FROM carma_settings WHERE key = 'embedding_dimension'", deadline: deadline)
        }.first?.string(0).flatMap { Int($0) }
        self.embeddingDimension.withLock { $0 = dimension }
        self.follower.start(store: self)
        if configuration.encoder != nil { self.embedder.start(store: self) }
        // Namespace deletions cut short are finished in the background (also at each compaction).
        Self.writers.async { [self] in
            guard !self.closed.load(ordering: .relaxed) else { return }
            self.settleNamespaces()
        }
    }

    public func close() {
        guard !self.closed.exchange(true, ordering: .relaxed) else { return }
        self.shutdownOrder.run()
    }

    /// What `close` stops, in order: the change follower and the embedder (each finishes the batch
    /// it is in), then the connection pool.
    private var shutdownOrder: ShutdownOrder {
        ShutdownOrder([
            { [self] in self.follower.stop() },
            { [self] in self.embedder.stop() },
            { [self] in self.pool.drain() },
        ])
    }

    /// This node's background workers, for metrics.
    public var workers: [Worker] {
        [self.follower.worker] + self.embedder.workers
    }

    // MARK: Errors

    static func storeError(_ error: PGError, doing action: String) -> StoreError {
        switch error.kind {
        case .unavailable:
            StoreError(.unavailable, "the database does not answer; cannot \(action) now (\(error.message)); nothing changed")
        case .server:
            StoreError(.io, "cannot \(action): \(error)")
        }
    }

    // MARK: Rows

    /// The registry columns, in `FragmentRow` order.
    static let rowColumns = """
        f.id, f.version, f.status, f.checksum, f.record_length, f.size, f.links, f.tags, f.created_at, f.updated_at, f.expires_at,
        f.blank_reason, f.lost_at, f.detected_by, f.original_checksum, f.original_length, f.confidence
        """
    static let rowColumnCount = 17

    /// A registry row from the database; nil when a cell does not parse (never trusted blindly).
    static func row(_ r: PGRow, from column: Int = 0) -> FragmentRow? {
        let c = column
        guard let id = r.string(c), let version = r.int(c + 1), version > 0, let status = r.string(c + 2).flatMap(FragmentStatus.init(rawValue:)),
            let checksum = r.int(c + 3), let recordLength = r.int(c + 4), let size = r.int(c + 5), let links = r.texts(c + 6),
            let tags = r.texts(c + 7), let created = r.int(c + 8), let updated = r.int(c + 9)
        else { return nil }
        return FragmentRow(
            id: id, version: UInt64(version), status: status, checksum: UInt32(truncatingIfNeeded: checksum), recordLength: Int(recordLength),
            size: Int(size), links: links, tags: tags, createdAt: Timestamp(milliseconds: created), updatedAt: Timestamp(milliseconds: updated),
            blankReason: r.string(c + 11).flatMap(BlankReason.init(rawValue:)), lostAt: r.int(c + 12).map(Timestamp.init(milliseconds:)),
            detectedBy: r.string(c + 13).flatMap(Detection.init(rawValue:)),
            originalChecksum: r.int(c + 14).map { UInt32(truncatingIfNeeded: $0) }, originalLength: r.int(c + 15).map(Int.init),
            confidence: r.double(c + 16), expiresAt: r.int(c + 10).map(Timestamp.init(milliseconds:)))
    }

    private static let selectRows = PGStatement(
        "carma_rows", "SELECT \(rowColumns) FROM carma_fragments f WHERE f.id = ANY($1::text[]) AND (f.expires_at IS NULL OR f.expires_at > $2)")

    /// Rows by id (nil for unknown, deleted or expired ids); empty rows when the database does not answer.
    func fetchRows(_ ids: [String]) throws(PGError) -> [FragmentRow?] {
        guard !ids.isEmpty else { return [] }
        let result = try self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.selectRows, [.texts(ids), .int(Timestamp.now.milliseconds)], deadline: deadline)
        }
        var byID: [String: FragmentRow] = [:]
        for r in result.all {
            if let row = Self.row(r) { byID[row.id] = row }
        }
        return ids.map { byID[$0] }
    }

    public func row(_ id: String) -> FragmentRow? {
        ((try? self.fetchRows([id])) ?? [nil])[0]
    }

    public func rows(_ ids: [String]) -> [FragmentRow?] {
        (try? self.fetchRows(ids)) ?? ids.map { _ in nil }
    }

    // MARK: State

    public var kind: BackendKind { .cluster }
    public var backendAvailable: Bool { self.pool.isUp }
    public var backendFailures: Int { self.pool.unavailableCount }
    public var location: String { self.configuration.redactedURL }
    public var encoder: SentenceEncoder? { self.configuration.encoder }

    private static let countByStatus = PGStatement("carma_count_by_status", "SELECT status, count(*) FROM carma_fragments GROUP BY status")
    private static let countBlank = PGStatement("carma_count_blank", "SELECT count(*) FROM carma_fragments WHERE status = 'blank'")
    private static let tableBytes = PGStatement(
        "carma_table_bytes",
        "SELECT pg_total_relation_size('carma_payloads'), pg_total_relation_size('carma_redundancy'), pg_total_relation_size('carma_fragments') + pg_total_relation_size('carma_events') + pg_total_relation_size('carma_repairs')")

    public var fragmentCount: Int {
        self.stats().fragments
    }

    public var blankCount: Int {
        let pool = self.pool
        return self.blankCounts.read {
            let rows = try? pool.with { connection, deadline throws(PGError) in try connection.run(Self.countBlank, [], deadline: deadline) }
            return rows?.first?.int(0).map(Int.init)
        } ?? 0
    }

    public func stats() -> StoreStats {
        let pool = self.pool
        let byStatus = self.statusCounts.read { () -> [FragmentStatus: Int]? in
            guard let rows = try? pool.with({ connection, deadline throws(PGError) in try connection.run(Self.countByStatus, [], deadline: deadline) }) else {
                return nil
            }
            var counts: [FragmentStatus: Int] = [:]
            for r in rows.all {
                if let status = r.string(0).flatMap(FragmentStatus.init(rawValue:)), let count = r.int(1) { counts[status] = Int(count) }
            }
            return counts
        } ?? [:]
        let (cacheBytes, cacheEntries) = self.cache.withLock { ($0.bytes, $0.count) }
        return StoreStats(
            fragments: byStatus.values.reduce(0, +), byStatus: byStatus, recordBytes: 0, cacheBytes: cacheBytes, cacheEntries: cacheEntries,
            cacheHits: self.counters.cacheHits.load(ordering: .relaxed), cacheMisses: self.counters.cacheMisses.load(ordering: .relaxed),
            damageDetected: self.counters.damage(), redundancyDamageDetected: self.counters.redundancyDamage.load(ordering: .relaxed))
    }

    public func diskUsage() -> (primary: Int64, redundancy: Int64, registry: Int64) {
        let pool = self.pool
        let sizes = self.tableSizes.read { () -> [Int64]? in
            let rows = try? pool.with { connection, deadline throws(PGError) in try connection.run(Self.tableBytes, [], deadline: deadline) }
            guard let r = rows?.first else { return nil }
            return [r.int(0) ?? 0, r.int(1) ?? 0, r.int(2) ?? 0]
        } ?? [0, 0, 0]
        return (sizes[0], sizes[1], sizes[2])
    }

    /// Writes are visible to every reader once acknowledged: nothing to wait for.
    public func whenApplied(_ body: @escaping @Sendable () -> Void) {
        body()
    }

    public func flush() {}
}

/// Counters this node keeps for metrics.
final class ClusterCounters: Sendable {
    let cacheHits = Atomic<Int>(0)
    let cacheMisses = Atomic<Int>(0)
    let missing = Atomic<Int>(0)
    let checksum = Atomic<Int>(0)
    /// Damaged redundancy copies the scrub found.
    let redundancyDamage = Atomic<Int>(0)

    func detected(_ reason: BlankReason) {
        if reason == .missing {
            self.missing.add(1, ordering: .relaxed)
        } else {
            self.checksum.add(1, ordering: .relaxed)
        }
    }

    func damage() -> [BlankReason: Int] {
        [.missing: self.missing.load(ordering: .relaxed), .checksumMismatch: self.checksum.load(ordering: .relaxed), .unreadable: 0]
    }
}
extension ClusterStore: FragmentBackend {}
