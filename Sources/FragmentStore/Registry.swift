import FragmentCore
import CarmaJSON
import Foundation

/// The SQLite registry: the source of truth for what exists, plus the repair queue, the fragments'
/// histories and the dream-cycle reports.
///
/// One connection writes, used only by the apply thread (SQLite allows one writer at a time anyway);
/// another, behind a lock, serves reads, which WAL mode lets run beside the writer.
final class Registry: Sendable {
    static let schemaVersion = 3
    /// The schema of the previous layout (a payload file per fragment); `carmad migrate` converts it.
    static let previousLayoutSchema = 1
    let path: String
    private let reader: LockedConnection
    private let checkpointer: LockedConnection
    /// Used only from the apply thread, and before it starts.
    nonisolated(unsafe) let writer: SQLiteConnection
    /// The last event sequence number (events are ordered by it); apply thread only.
    nonisolated(unsafe) var eventSequence: Int64 = 0

    /// Events kept per fragment and cycle reports kept in all; older ones are deleted as new ones come.
    let retention: Retention

    /// - Parameter retention: Default `Retention()` (100 events per fragment, 1,000 cycle reports).
    init(path: String, retention: Retention = Retention()) throws(SQLiteError) {
        self.path = path
        self.retention = retention
        let writer = try SQLiteConnection(path: path)
        try writer.execute("PRAGMA journal_mode=WAL")
        // NORMAL: the registry follows the logs, which are where writes become durable. In WAL mode
        // NORMAL never corrupts the database; a power loss can take back its last transactions,
        // applied position included, and start-up replays them from the logs. FULL would add an
        // fsync per apply transaction on the disk the log's fdatasync waits for.
        try writer.execute("PRAGMA synchronous=NORMAL")
        // Checkpoints run on their own connection (see `checkpoint()`), not inside a group commit.
        try writer.execute("PRAGMA wal_autocheckpoint=0")
        try Self.createSchema(writer)
        // Listing `default` walks this instead of every namespace's keys (other namespaces are
        // ranges of the primary key). Made at the first open of a store from before namespaces.
        try writer.execute("CREATE INDEX IF NOT EXISTS fragments_default ON fragments(id) WHERE instr(id, '/') = 0;")
        try Self.createMeaningTable(writer)
        let sequence = try writer.statement("SELECT COALESCE(MAX(seq), 0) FROM events")
        self.eventSequence = try sequence.step() ? sequence.int(0) : 0
        writer.resetAll()
        self.writer = writer
        self.reader = LockedConnection(try SQLiteConnection(path: path))
        self.checkpointer = LockedConnection(try SQLiteConnection(path: path))
    }

    /// Copies committed WAL pages into the database file (PASSIVE: never waits for the writer).
    /// - Returns: Frames left in the WAL afterwards.
    @discardableResult
    func checkpoint() -> Int {
        (try? self.checkpointer.with { db in
            let statement = try db.statement("PRAGMA wal_checkpoint(PASSIVE)")
            return try statement.step() ? Int(statement.int(1) - statement.int(2)) : 0
        }) ?? 0
    }

    /// Copies the whole WAL into the database and empties it (a clean stop leaves no WAL behind).
    func checkpointAndTruncate() {
        _ = try? self.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// A passive checkpoint never catches up with a busy writer, and a WAL that never restarts keeps
    /// growing (every commit then extends the file, which makes its fsync slow). Past `limit` bytes
    /// the apply thread, between transactions, checkpoints everything and restarts the WAL from
    /// its beginning, so that later commits overwrite it in place.
    func restartWALIfLarge(limit: Int64 = 32 << 20) {
        guard (FileSystem.size(self.path + "-wal") ?? 0) > limit else { return }
        _ = try? self.writer.execute("PRAGMA wal_checkpoint(RESTART)")
    }

    /// The schema version of a registry file (0 for a new, empty one).
    static func schemaVersion(of db: SQLiteConnection) throws(SQLiteError) -> Int {
        let statement = try db.statement("PRAGMA user_version")
        defer { statement.reset() }
        return try statement.step() ? Int(statement.int(0)) : 0
    }

    private static func createSchema(_ db: SQLiteConnection) throws(SQLiteError) {
        let version = try schemaVersion(of: db)
        if version == previousLayoutSchema { throw SQLiteError.previousLayout }
        if version > schemaVersion { throw SQLiteError.newerSchema(version) }
        if version == schemaVersion { return }
        if version == 2 {
            // Version 3 adds per-fragment expiry; older rows never expire.
            try db.execute("ALTER TABLE fragments ADD COLUMN expires_at INTEGER; PRAGMA user_version = \(schemaVersion);")
            return
        }
        // Every write of a PUT touches few B-tree pages on purpose: WAL frames are whole pages, and a
        // random key per index is a page per index per fragment. So the sketch lives in the row, the
        // status index only covers fragments that are not ok, and events are keyed by (id, seq).
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS fragments (
                id TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                status TEXT NOT NULL,
                checksum INTEGER NOT NULL,
                record_length INTEGER NOT NULL,
                size INTEGER NOT NULL,
                links TEXT NOT NULL,
                tags TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                blank_reason TEXT,
                lost_at INTEGER,
                detected_by TEXT,
                original_checksum INTEGER,
                original_length INTEGER,
                confidence REAL,
                redundancy_segment INTEGER,
                redundancy_offset INTEGER,
                location_segment INTEGER,
                location_offset INTEGER,
                sketch BLOB,
                embedding BLOB,
                expires_at INTEGER
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS fragments_damaged ON fragments(status, id) WHERE status != 'ok';
            CREATE TABLE IF NOT EXISTS fragment_tags (
                tag TEXT NOT NULL,
                id TEXT NOT NULL,
                PRIMARY KEY (tag, id)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS repair_queue (
                id TEXT PRIMARY KEY,
                priority INTEGER NOT NULL,
                enqueued_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                not_before INTEGER NOT NULL DEFAULT 0,
                reason TEXT NOT NULL,
                last_error TEXT
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS repair_queue_order ON repair_queue(priority, enqueued_at, id);
            CREATE TABLE IF NOT EXISTS events (
                id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                at INTEGER NOT NULL,
                kind TEXT NOT NULL,
                detail TEXT NOT NULL,
                PRIMARY KEY (id, seq)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS cycles (
                id INTEGER PRIMARY KEY,
                trigger TEXT NOT NULL,
                state TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                finished_at INTEGER,
                report TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID;
            PRAGMA user_version = \(schemaVersion);
            """)
    }

    func withReader<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        try self.reader.with(body)
    }
}

/// A connection shared between threads, one at a time.
///
/// `@unchecked Sendable`: the connection is used only while `lock` is held.
final class LockedConnection: @unchecked Sendable {
    private let lock = NSLock()
    private let connection: SQLiteConnection

    init(_ connection: SQLiteConnection) {
        self.connection = connection
    }

    func with<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        self.lock.lock()
        defer {
            self.connection.resetAll()
            self.lock.unlock()
        }
        return try body(self.connection)
    }
}

// MARK: - Rows

extension Registry {
    static let columnNames = [
        "id", "version", "status", "checksum", "record_length", "size", "links", "tags", "created_at", "updated_at",
        "blank_reason", "lost_at", "detected_by", "original_checksum", "original_length", "confidence",
        "redundancy_segment", "redundancy_offset", "location_segment", "location_offset", "expires_at",
    ]
    static let fragmentColumns = columnNames.joined(separator: ", ")

    /// The row at the statement's cursor, or nil when it cannot be a row this store wrote (a negative
    /// version or length, an invalid id): the registry is read as untrusted input.
    static func row(from s: SQLiteStatement) -> StoredRow? {
        let id = s.text(0)
        guard FragmentKey.validate(id) == nil, s.int(1) > 0, s.int(4) >= 0, s.int(4) <= LogRecord.maxBodyLength,
            s.int(5) >= 0, s.isNull(14) || (s.int(14) >= 0 && s.int(14) <= LogRecord.maxBodyLength)
        else { return nil }
        return StoredRow(
            id: id,
            version: UInt64(s.int(1)),
            status: FragmentStatus(rawValue: s.text(2)) ?? .blank,
            checksum: UInt32(truncatingIfNeeded: s.int(3)),
            recordLength: Int(s.int(4)),
            size: Int(s.int(5)),
            links: splitList(s.text(6)),
            tags: splitList(s.text(7)),
            createdAt: Timestamp(milliseconds: s.int(8)),
            updatedAt: Timestamp(milliseconds: s.int(9)),
            blankReason: s.optionalText(10).flatMap(BlankReason.init(rawValue:)),
            lostAt: s.isNull(11) ? nil : Timestamp(milliseconds: s.int(11)),
            detectedBy: s.optionalText(12).flatMap(Detection.init(rawValue:)),
            originalChecksum: s.isNull(13) ? nil : UInt32(truncatingIfNeeded: s.int(13)),
            originalLength: s.isNull(14) ? nil : Int(s.int(14)),
            confidence: s.isNull(15) ? nil : s.double(15),
            location: location(s, 18),
            redundancy: location(s, 16),
            expiresAt: s.isNull(20) ? nil : Timestamp(milliseconds: s.int(20)))
    }

    /// A location read from two columns; nil when absent or out of range (the registry is read as
    /// untrusted input: a tampered row must not trap the process).
    private static func location(_ s: SQLiteStatement, _ column: Int32) -> LogLocation? {
        guard !s.isNull(column), !s.isNull(column + 1) else { return nil }
        let segment = s.int(column)
        let offset = s.int(column + 1)
        guard segment > 0, segment < Int64(UInt32.max), offset >= 0 else { return nil }
        return LogLocation(segment: UInt32(segment), offset: UInt64(offset))
    }

    /// Links and tags are stored newline-separated: ids cannot contain a newline and tags may not
    /// contain control characters, and splitting is far cheaper than JSON at start-up.
    static func joinList(_ items: [String]) -> String { items.joined(separator: "\n") }

    static func splitList(_ text: String) -> [String] {
        text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Calls `body` for every fragment row, in no particular order. Used at start-up, before the
    /// apply thread runs.
    func forEachFragment(_ body: (StoredRow) -> Void) throws(SQLiteError) {
        let statement = try self.writer.statement("SELECT \(Self.fragmentColumns) FROM fragments")
        while try statement.step() {
            if let row = Self.row(from: statement) { body(row) }
        }
    }

    /// A page of fragments in id order after `after`, optionally filtered by status and tag; fragments
    /// expired at `now` are left out.
    func list(namespace: String, status: FragmentStatus?, tag: String?, after: String?, limit: Int, now: Timestamp = .now) throws -> [StoredRow] {
        try self.withReader { db in
            var sql = "SELECT \(Self.columnNames.map { "f." + $0 }.joined(separator: ", ")) FROM fragments f"
            var values: [SQLiteValue] = []
            var conditions: [String] = []
            if let tag {
                sql += " JOIN fragment_tags t ON t.id = f.id AND t.tag = ?"
                values.append(.text(tag))
            }
            if let status {
                // A literal status lets SQLite use the partial index of damaged fragments.
                conditions.append(status == .ok ? "f.status = 'ok'" : "f.status = '\(status.rawValue)' AND f.status != 'ok'")
            }
            if let after {
                conditions.append("f.id > ?")
                values.append(.text(after))
            }
            Self.restrict(to: namespace, column: "f.id", &conditions, &values)
            conditions.append("(f.expires_at IS NULL OR f.expires_at > ?)")
            values.append(.integer(now.milliseconds))
            if !conditions.isEmpty {
                sql += " WHERE " + conditions.joined(separator: " AND ")
            }
            sql += " ORDER BY f.id LIMIT ?"
            values.append(.int(limit))
            let statement = try db.statement(sql)
            statement.bindAll(values)
            var rows: [StoredRow] = []
            while try statement.step() {
                if let row = Self.row(from: statement) { rows.append(row) }
            }
            return rows
        }
    }

    /// The condition that keeps a namespace's keys: a range of the primary key (`ns/` up to `ns0`,
    /// `0` following `/`), or for `default` the keys without a separator (its partial index).
    static func restrict(to namespace: String, column: String, _ conditions: inout [String], _ values: inout [SQLiteValue]) {
        if namespace == Namespace.default {
            conditions.append("instr(\(column), '/') = 0")
        } else {
            conditions.append("\(column) > ? AND \(column) < ?")
            values.append(.text(namespace + "/"))
            values.append(.text(namespace + "0"))
        }
    }

    func history(_ id: String, limit: Int) throws -> [FragmentEvent] {
        try self.withReader { db in
            let statement = try db.statement("SELECT seq, id, at, kind, detail FROM events WHERE id = ? ORDER BY seq DESC LIMIT ?")
                .bind(.text(id), .int(limit))
            var events: [FragmentEvent] = []
            while try statement.step() {
                let detail = (try? JSONParser.parse(statement.text(4)))?.objectValue ?? [:]
                events.append(
                    FragmentEvent(
                        sequence: statement.int(0), id: statement.text(1), at: Timestamp(milliseconds: statement.int(2)),
                        kind: statement.text(3), detail: detail))
            }
            return events.reversed()
        }
    }

    /// The highest version handed out: kept in `meta` by every commit that assigns versions; the rows
    /// are scanned only when that is missing (a registry rebuilt from files).
    func maxVersion() throws(SQLiteError) -> UInt64 {
        let statement = try self.writer.statement("SELECT value FROM meta WHERE key = 'max_version'")
        if try statement.step(), let stored = UInt64(statement.text(0)) {
            return stored
        }
        let rows = try self.writer.statement("SELECT COALESCE(MAX(version), 0) FROM fragments")
        return try rows.step() ? UInt64(max(0, rows.int(0))) : 0
    }

    func fragmentCount() throws(SQLiteError) -> Int {
        let statement = try self.writer.statement("SELECT COUNT(*) FROM fragments")
        return try statement.step() ? Int(statement.int(0)) : 0
    }
}

// MARK: - Writes (apply thread only)

extension Registry {
    /// Inserts or replaces a fragment's row, but only with a newer version than the one stored.
    /// - Parameter previousTags: The tags of the row it replaces, if any (tag rows are rewritten only
    ///   when the tags change).
    /// - Returns: Whether the row was written.
    @discardableResult
    func upsert(_ row: StoredRow, previousTags: [String]?, sketch: [UInt8], embedding: [UInt8]?) throws(SQLiteError) -> Bool {
        let statement = try self.writer.statement(
            """
            INSERT INTO fragments (\(Self.fragmentColumns), sketch, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                version = excluded.version, status = excluded.status, checksum = excluded.checksum,
                record_length = excluded.record_length, size = excluded.size, links = excluded.links,
                tags = excluded.tags, created_at = excluded.created_at, updated_at = excluded.updated_at,
                blank_reason = excluded.blank_reason, lost_at = excluded.lost_at, detected_by = excluded.detected_by,
                original_checksum = excluded.original_checksum, original_length = excluded.original_length,
                confidence = excluded.confidence, redundancy_segment = excluded.redundancy_segment,
                redundancy_offset = excluded.redundancy_offset, location_segment = excluded.location_segment,
                location_offset = excluded.location_offset, expires_at = excluded.expires_at, sketch = excluded.sketch,
                embedding = excluded.embedding
            WHERE excluded.version >= fragments.version
            """)
        statement.bindAll(Self.values(of: row) + [.blob(sketch), embedding.map(SQLiteValue.blob) ?? .null])
        try statement.run()
        guard self.writer.changes > 0 else { return false }
        if let previousTags, Set(previousTags) == Set(row.tags) { return true }
        if previousTags?.isEmpty == false {
            try self.writer.statement("DELETE FROM fragment_tags WHERE id = ?").bind(.text(row.id)).run()
        }
        for tag in Set(row.tags) {
            try self.writer.statement("INSERT OR IGNORE INTO fragment_tags (tag, id) VALUES (?, ?)").bind(.text(tag), .text(row.id)).run()
        }
        return true
    }

    /// Removes a fragment deleted at `version` and everything kept about it, unless a newer version
    /// was stored meanwhile.
    func delete(_ id: String, before version: UInt64) throws(SQLiteError) {
        try self.writer.statement("DELETE FROM fragments WHERE id = ? AND version < ?").bind(.text(id), .integer(Int64(version))).run()
        guard self.writer.changes > 0 else { return }
        for table in ["fragment_tags", "repair_queue", "events", "meanings"] {
            try self.writer.statement("DELETE FROM \(table) WHERE id = ?").bind(.text(id)).run()
        }
    }

    /// Forgets a fragment's history (its id was reused after the fragment expired).
    func deleteEvents(_ id: String) throws(SQLiteError) {
        try self.writer.statement("DELETE FROM events WHERE id = ?").bind(.text(id)).run()
    }

    /// Records how far the registry has followed the logs (in the same transaction as the rows).
    func setPositions(_ positions: LogPositions) throws(SQLiteError) {
        try self.setMeta("applied_primary", positions.primary.description)
        try self.setMeta("applied_redundancy", positions.redundancy.description)
        try self.setMeta("applied_sequence", String(positions.sequence))
        try self.setMeta("max_version", String(positions.maxVersion))
    }

    /// How far the registry has followed the logs; nil for a registry that has not applied anything.
    func positions() throws(SQLiteError) -> (primary: LogLocation, redundancy: LogLocation, sequence: UInt64)? {
        guard let primary = try self.meta("applied_primary").flatMap(LogLocation.init),
            let redundancy = try self.meta("applied_redundancy").flatMap(LogLocation.init),
            let sequence = try self.meta("applied_sequence").flatMap({ UInt64($0) })
        else { return nil }
        return (primary, redundancy, sequence)
    }

    /// Updates where a version's records are and its status, without touching its content columns
    /// (a repair, a reconstruction or a compaction copy of a version the registry already has).
    func updatePlacement(_ row: StoredRow) throws(SQLiteError) {
        let values = Self.values(of: row)
        try self.writer.statement(
            """
            UPDATE fragments SET status = ?, checksum = ?, record_length = ?, blank_reason = ?, lost_at = ?, detected_by = ?,
                original_checksum = ?, original_length = ?, confidence = ?, redundancy_segment = ?, redundancy_offset = ?,
                location_segment = ?, location_offset = ?
            WHERE id = ? AND version = ?
            """
        ).bind(
            values[2], values[3], values[4], values[10], values[11], values[12], values[13], values[14], values[15], values[16],
            values[17], values[18], values[19], .text(row.id), .integer(Int64(row.version))
        ).run()
    }

    /// Records that a version's payload is lost and queues its repair, unless a newer version
    /// replaced it meanwhile.
    /// - Returns: Whether the registry has that version (else nothing was recorded).
    @discardableResult
    /// Writes a newly blank row's status columns; whether the version is still stored.
    func markLost(_ row: FragmentRow) throws(SQLiteError) -> Bool {
        try self.writer.statement(
            """
            UPDATE fragments SET status = 'blank', blank_reason = ?, lost_at = ?, detected_by = ?
            WHERE id = ? AND version = ? AND status != 'blank'
            """
        ).bind(
            .optional(row.blankReason?.rawValue), .optional(row.lostAt?.milliseconds), .optional(row.detectedBy?.rawValue),
            .text(row.id), .integer(Int64(row.version))
        ).run()
        let exists = try self.writer.statement("SELECT 1 FROM fragments WHERE id = ? AND version = ?").bind(.text(row.id), .integer(Int64(row.version)))
        guard try exists.step() else { return false }
        exists.reset()
        return true
    }

    func dequeueRepair(_ id: String) throws(SQLiteError) {
        try self.writer.statement("DELETE FROM repair_queue WHERE id = ?").bind(.text(id)).run()
    }

    /// When each queued fragment was queued, and where its repair stands.
    func queuedRepairs() throws(SQLiteError) -> [String: (queuedAt: Timestamp, progress: RepairProgress)] {
        let statement = try self.writer.statement("SELECT id, enqueued_at, attempts, not_before, last_error FROM repair_queue")
        var queued: [String: (queuedAt: Timestamp, progress: RepairProgress)] = [:]
        while try statement.step() {
            let notBefore = statement.int(3)
            queued[statement.text(0)] = (
                Timestamp(milliseconds: statement.int(1)),
                RepairProgress(
                    attempts: Int(clamping: statement.int(2)), lastError: statement.optionalText(4),
                    notBefore: notBefore > 0 ? Timestamp(milliseconds: notBefore) : nil)
            )
        }
        return queued
    }

    /// Queues a repair; an id already queued keeps its place and takes the more urgent priority.
    func enqueueRepair(_ id: String, priority: RepairPriority, at: Timestamp, reason: String) throws(SQLiteError) {
        try self.writer.statement(
            """
            INSERT INTO repair_queue (id, priority, enqueued_at, attempts, not_before, reason) VALUES (?, ?, ?, 0, 0, ?)
            ON CONFLICT(id) DO UPDATE SET priority = MIN(priority, excluded.priority)
            """
        ).bind(.text(id), .int(priority.rawValue), .integer(at.milliseconds), .text(reason)).run()
    }

    func addEvent(_ id: String, at: Timestamp, kind: EventKind, detail: JSONObject) throws(SQLiteError) {
        self.eventSequence += 1
        try self.writer.statement("INSERT INTO events (id, seq, at, kind, detail) VALUES (?, ?, ?, ?, ?)")
            .bind(.text(id), .integer(self.eventSequence), .integer(at.milliseconds), .text(kind.rawValue), .text(JSONValue.object(detail).serialized)).run()
        guard kind != .created else { return }
        // A fragment written over and over keeps its newest events only: an index range per write.
        try self.writer.statement(
            """
            DELETE FROM events WHERE id = ? AND seq <= (SELECT seq FROM events WHERE id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)
            """
        ).bind(.text(id), .text(id), .int(self.retention.eventsPerFragment)).run()
    }

    func setMeta(_ key: String, _ value: String) throws(SQLiteError) {
        try self.writer.statement("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(.text(key), .text(value)).run()
    }

    func meta(_ key: String) throws(SQLiteError) -> String? {
        let statement = try self.writer.statement("SELECT value FROM meta WHERE key = ?").bind(.text(key))
        return try statement.step() ? statement.text(0) : nil
    }

    static func values(of row: StoredRow) -> [SQLiteValue] {
        [
            .text(row.id), .integer(Int64(row.version)), .text(row.status.rawValue), .integer(Int64(row.checksum)),
            .int(row.recordLength), .int(row.size), .text(joinList(row.links)), .text(joinList(row.tags)),
            .integer(row.createdAt.milliseconds), .integer(row.updatedAt.milliseconds),
            .optional(row.blankReason?.rawValue), .optional(row.lostAt?.milliseconds), .optional(row.detectedBy?.rawValue),
            row.originalChecksum.map { .integer(Int64($0)) } ?? .null, row.originalLength.map { .int($0) } ?? .null,
            row.confidence.map { .real($0) } ?? .null,
            row.redundancy.map { .integer(Int64($0.segment)) } ?? .null, row.redundancy.map { .integer(Int64($0.offset)) } ?? .null,
            row.location.map { .integer(Int64($0.segment)) } ?? .null, row.location.map { .integer(Int64($0.offset)) } ?? .null,
            .optional(row.expiresAt?.milliseconds),
        ]
    }
}

// MARK: - Repair queue and cycle reports

extension Registry {
    /// Queued repairs due by `now`, namespaces taking turns: each namespace's first (most urgent)
    /// ticket, then each one's second, and so on. A namespace with a hundred thousand blanks cannot
    /// hold back another's single blank past the next batch.
    func readyRepairs(now: Timestamp, limit: Int) throws -> [RepairTicket] {
        try self.withReader { db in
            let statement = try db.statement(
                """
                SELECT id, priority, enqueued_at, attempts, not_before, reason, last_error FROM (
                    SELECT *, ROW_NUMBER() OVER (
                        PARTITION BY substr(id, 1, instr(id, '/')) ORDER BY priority, enqueued_at, id) AS turn
                    FROM repair_queue WHERE not_before <= ?)
                ORDER BY turn, priority, enqueued_at, id LIMIT ?
                """
            ).bind(.integer(now.milliseconds), .int(limit))
            var tickets: [RepairTicket] = []
            while try statement.step() {
                tickets.append(
                    RepairTicket(
                        id: statement.text(0), priority: RepairPriority(rawValue: Int(statement.int(1))) ?? .background,
                        enqueuedAt: Timestamp(milliseconds: statement.int(2)), attempts: Int(statement.int(3)),
                        notBefore: Timestamp(milliseconds: statement.int(4)), reason: statement.text(5), lastError: statement.optionalText(6)))
            }
            return tickets
        }
    }

    /// Queued repairs: all of them, and those due by `now`.
    func queueDepth(now: Timestamp) throws -> (total: Int, ready: Int) {
        try self.withReader { db in
            let statement = try db.statement("SELECT COUNT(*), COALESCE(SUM(not_before <= ?), 0) FROM repair_queue").bind(.integer(now.milliseconds))
            guard try statement.step() else { return (0, 0) }
            return (Int(statement.int(0)), Int(statement.int(1)))
        }
    }

    /// Keys in order after `after`, of one namespace or of all (the scrub's walk).
    func ids(namespace: String? = nil, after: String?, limit: Int) throws -> [String] {
        try self.withReader { db in
            var conditions = ["id > ?"]
            var values: [SQLiteValue] = [.text(after ?? "")]
            if let namespace { Self.restrict(to: namespace, column: "id", &conditions, &values) }
            values.append(.int(limit))
            let statement = try db.statement("SELECT id FROM fragments WHERE \(conditions.joined(separator: " AND ")) ORDER BY id LIMIT ?")
            statement.bindAll(values)
            var ids: [String] = []
            while try statement.step() { ids.append(statement.text(0)) }
            return ids
        }
    }




    /// Keeps a ticket for later: counts the attempt and sets when to try again.
    func postponeRepair(_ id: String, priority: RepairPriority?, attempts: Int, notBefore: Timestamp, error: String) throws(SQLiteError) {
        try self.writer.statement(
            """
            UPDATE repair_queue SET attempts = ?, not_before = ?, last_error = ?, priority = COALESCE(?, priority)
            WHERE id = ?
            """
        ).bind(.int(attempts), .integer(notBefore.milliseconds), .text(error), priority.map { .int($0.rawValue) } ?? .null, .text(id)).run()
    }

    /// Stores what a lifecycle transition does to the queue and the history (the row is written by
    /// the caller, with its log locations).
    func record(_ transition: LifecycleTransition, id: String, at: Timestamp) throws(SQLiteError) {
        if transition.clearsHistory { try self.deleteEvents(id) }
        switch transition.queue {
        case .keep: break
        case .enqueue(let priority, let reason): try self.enqueueRepair(id, priority: priority, at: at, reason: reason)
        case .dequeue: try self.dequeueRepair(id)
        case .postpone(let priority, let attempts, let notBefore, let error):
            try self.postponeRepair(id, priority: priority, attempts: attempts, notBefore: notBefore, error: error)
        }
        for entry in transition.history {
            try self.addEvent(id, at: at, kind: entry.kind, detail: entry.detail)
        }
    }

    func saveCycle(id: Int64, trigger: String, state: String, startedAt: Timestamp, finishedAt: Timestamp?, report: JSONValue) throws(SQLiteError) {
        try self.writer.statement(
            """
            INSERT INTO cycles (id, trigger, state, started_at, finished_at, report) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at, report = excluded.report
            """
        ).bind(.integer(id), .text(trigger), .text(state), .integer(startedAt.milliseconds), .optional(finishedAt?.milliseconds), .text(report.serialized)).run()
        try self.writer.statement("DELETE FROM cycles WHERE id <= ?").bind(.integer(id - Int64(self.retention.cycleReports))).run()
    }

    /// A stored cycle report.
    func cycleReport(_ id: Int64) throws -> JSONValue? {
        try self.withReader { db in
            let statement = try db.statement("SELECT report FROM cycles WHERE id = ?").bind(.integer(id))
            guard try statement.step() else { return nil }
            return try? JSONParser.parse(statement.text(0), maxDepth: 64)
        }
    }

    /// The highest cycle id stored (0 when none).
    func lastCycleID() throws -> Int64 {
        try self.withReader { db in
            let statement = try db.statement("SELECT COALESCE(MAX(id), 0) FROM cycles")
            return try statement.step() ? statement.int(0) : 0
        }
    }

    /// The most recent cycle reports, newest first.
    func recentCycles(limit: Int) throws -> [JSONValue] {
        try self.withReader { db in
            let statement = try db.statement("SELECT report FROM cycles ORDER BY id DESC LIMIT ?").bind(.int(limit))
            var reports: [JSONValue] = []
            while try statement.step() {
                if let report = try? JSONParser.parse(statement.text(0), maxDepth: 64) { reports.append(report) }
            }
            return reports
        }
    }
}

// MARK: - Sketches

extension Registry {
    /// Every stored sketch, read on the reader connection (so a background load does not hold up
    /// the apply thread).
    func forEachSketch(_ body: (String, [UInt8], [UInt8]?) -> Void) throws {
        try self.withReader { db in
            let statement = try db.statement("SELECT id, sketch, embedding FROM fragments WHERE sketch IS NOT NULL")
            while try statement.step() {
                body(statement.text(0), statement.blob(1), statement.isNull(2) ? nil : statement.blob(2))
            }
        }
    }
}
