import FragmentCore
import Synchronization

/// The namespace catalog in PostgreSQL: `carma_namespaces` (name, quotas, creation time),
/// `carma_namespace_floors` (the highest version deleted with each removed namespace) and
/// `carma_tokens` (SHA-256 of each secret; a namespace's tokens go with it, `ON DELETE CASCADE`).
///
/// Every look-up reads the database (a primary-key look-up), so a namespace created or deleted, or
/// a token revoked, through any node is seen by every node at once. While the database does not
/// answer, `entry` answers the last entry this node read for the name (reads go on from the node
/// cache as they do without namespaces) and `token` answers nil: a revoked token never works
/// because the database is away.
final class ClusterCatalog: NamespaceCatalog {
    private let pool: PGPool
    /// The last entry read per name, for when the database does not answer.
    private let known = Mutex<[String: NamespaceEntry]>([:])
    /// `default`'s entry and when it was read: it is asked for on most requests (every read of an
    /// unprefixed route without an admin token), is never created nor deleted, and its quota is
    /// enforced from the database in each write's transaction; so it is read again at most every
    /// `defaultPatience` (a quota set through another node shows in GET /namespaces/default that
    /// much later).
    private let defaultRead = Mutex<(entry: NamespaceEntry, at: ContinuousClock.Instant)?>(nil)
    static let defaultPatience: Duration = .seconds(1)

    init(pool: PGPool) {
        self.pool = pool
    }

    static let defaultEntry = NamespaceEntry(name: Namespace.default, createdAt: Timestamp(milliseconds: 0))

    static let columns = "name, quota_fragments, quota_bytes, created_at"
    static let selectEntry = PGStatement("carma_ns_entry", "SELECT \(columns) FROM carma_namespaces WHERE name = $1")
    static let lockEntry = PGStatement("carma_ns_lock_entry", "SELECT \(columns) FROM carma_namespaces WHERE name = $1 FOR NO KEY UPDATE")
    static let selectEntries = PGStatement(
        "carma_ns_entries", "SELECT \(columns) FROM carma_namespaces WHERE name > $1 ORDER BY name LIMIT $2")
    static let insertEntry = PGStatement(
        "carma_ns_insert",
        "INSERT INTO carma_namespaces (name, quota_fragments, quota_bytes, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING \(columns)")
    static let setQuota = PGStatement("carma_ns_set_quota", "UPDATE carma_namespaces SET quota_fragments = $2, quota_bytes = $3 WHERE name = $1")
    /// Whether fragments of a deleted namespace of this name are still waiting to be deleted (asked
    /// of a name not in the catalog, where every fragment left is one: the usage counters say).
    static let deletionPending = PGStatement(
        "carma_ns_deletion_pending",
        """
        SELECT EXISTS (SELECT 1 FROM carma_namespace_floors WHERE name = $1)
           AND (SELECT COALESCE(sum(fragments), 0) FROM carma_namespace_usage WHERE namespace = $1) > 0
        """)
    static let removeEntry = PGStatement("carma_ns_remove", "DELETE FROM carma_namespaces WHERE name = $1 RETURNING name")
    /// The floor: the one given, or (`$4`) the highest version handed out, read once the removal
    /// holds the namespace's row (every write into the namespace has committed by then).
    static let recordFloor = PGStatement(
        "carma_ns_record_floor",
        """
        INSERT INTO carma_namespace_floors (name, floor, removed_at)
        SELECT $1::text, CASE WHEN $4::boolean THEN (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM carma_versions) ELSE $2::bigint END, $3::bigint
        ON CONFLICT (name) DO UPDATE SET floor = greatest(carma_namespace_floors.floor, excluded.floor), removed_at = excluded.removed_at
        RETURNING floor
        """)
    static let selectFloor = PGStatement("carma_ns_floor", "SELECT floor FROM carma_namespace_floors WHERE name = $1")
    static let insertToken = PGStatement(
        "carma_token_insert", "INSERT INTO carma_tokens (id, namespace, scope, hash, created_at) VALUES ($1, $2, $3, $4, $5)")
    static let selectToken = PGStatement("carma_token", "SELECT id, namespace, scope, hash, created_at FROM carma_tokens WHERE id = $1")
    static let selectTokens = PGStatement(
        "carma_tokens_of", "SELECT id, namespace, scope, hash, created_at FROM carma_tokens WHERE namespace = $1 ORDER BY created_at, id")
    static let deleteToken = PGStatement("carma_token_revoke", "DELETE FROM carma_tokens WHERE id = $1 AND namespace = $2 RETURNING id")

    static func entry(_ r: PGRow) -> NamespaceEntry? {
        guard let name = r.string(0), let created = r.int(3) else { return nil }
        return NamespaceEntry(
            name: name, quota: NamespaceQuota(fragments: r.int(1).map { Int($0) }, bytes: r.int(2)), createdAt: Timestamp(milliseconds: created))
    }

    static func token(_ r: PGRow) -> NamespaceToken? {
        guard let id = r.string(0), let namespace = r.string(1), let scope = r.string(2).flatMap(TokenScope.init(rawValue:)),
            let hash = r.bytes(3), let created = r.int(4)
        else { return nil }
        return NamespaceToken(id: id, namespace: namespace, scope: scope, hash: hash, createdAt: Timestamp(milliseconds: created))
    }

    // MARK: Reading

    func entry(_ name: String) -> NamespaceEntry? {
        let fallback = name == Namespace.default ? Self.defaultEntry : nil
        if name == Namespace.default, let read = self.defaultRead.withLock({ $0 }), ContinuousClock.now - read.at < Self.defaultPatience {
            return read.entry
        }
        do {
            let rows = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.selectEntry, [.text(name)], deadline: deadline)
            }
            let entry = rows.first.flatMap(Self.entry) ?? fallback
            self.known.withLock { $0[name] = entry }
            if name == Namespace.default, let entry { self.defaultRead.withLock { $0 = (entry, .now) } }
            return entry
        } catch {
            return self.known.withLock { $0[name] } ?? fallback
        }
    }

    func entries(after: String?, limit: Int) throws(StoreError) -> [NamespaceEntry] {
        do {
            let rows = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.selectEntries, [.text(after ?? ""), .int(limit)], deadline: deadline)
            }
            var entries = rows.all.compactMap(Self.entry)
            // `default` exists even when its row does not (a database whose row was removed by hand).
            if !entries.contains(where: { $0.name == Namespace.default }), after.map({ $0 < Namespace.default }) ?? true {
                entries.append(Self.defaultEntry)
                entries.sort { $0.name < $1.name }
                entries = Array(entries.prefix(limit))
            }
            return entries
        } catch {
            throw ClusterStore.storeError(error, doing: "list the namespaces")
        }
    }

    func versionFloor(_ name: String) -> UInt64 {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.selectFloor, [.text(name)], deadline: deadline)
        }
        return rows?.first?.int(0).map { UInt64(max(0, $0)) } ?? 0
    }

    func token(_ id: String) -> NamespaceToken? {
        let rows = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.selectToken, [.text(id)], deadline: deadline)
        }
        return rows?.first.flatMap(Self.token)
    }

    func tokens(of namespace: String) throws(StoreError) -> [NamespaceToken] {
        do {
            return try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.selectTokens, [.text(namespace)], deadline: deadline)
            }.all.compactMap(Self.token)
        } catch {
            throw ClusterStore.storeError(error, doing: "list the tokens of '\(namespace)'")
        }
    }

    // MARK: Changes

    func create(_ name: String, quota: NamespaceQuota?) throws(StoreError) -> (entry: NamespaceEntry, created: Bool) {
        if let reason = Namespace.validate(name) { throw .invalid(field: "namespace", reason) }
        let outcome: Result<(entry: NamespaceEntry, created: Bool), StoreError>
        do {
            outcome = try self.pool.transaction { connection, deadline throws(PGError) in
                // NO KEY UPDATE: writers into the namespace hold KEY SHARE and go on meanwhile.
                if let existing = try connection.run(Self.lockEntry, [.text(name)], deadline: deadline).first.flatMap(Self.entry) {
                    guard let quota, quota != existing.quota else { return .success((existing, false)) }
                    try connection.run(Self.setQuota, [.text(name), .optional(quota.fragments.map(Int64.init)), .optional(quota.bytes)], deadline: deadline)
                    var entry = existing
                    entry.quota = quota
                    return .success((entry, false))
                }
                if try connection.run(Self.deletionPending, [.text(name)], deadline: deadline).first?.string(0) == "t" {
                    return .failure(.unavailable("the namespace '\(name)' is still being deleted; try again shortly"))
                }
                let quota = quota ?? .none
                let inserted = try connection.run(
                    Self.insertEntry,
                    [.text(name), .optional(quota.fragments.map(Int64.init)), .optional(quota.bytes), .int(Timestamp.now.milliseconds)],
                    deadline: deadline)
                if let entry = inserted.first.flatMap(Self.entry) { return .success((entry, true)) }
                // Created by another node meanwhile: as if it had been there.
                guard let existing = try connection.run(Self.lockEntry, [.text(name)], deadline: deadline).first.flatMap(Self.entry) else {
                    throw PGError(kind: .server, state: nil, message: "namespace '\(name)' neither inserted nor found")
                }
                return .success((existing, false))
            }
        } catch {
            throw ClusterStore.storeError(error, doing: "create the namespace '\(name)'")
        }
        let done = try outcome.get()
        self.known.withLock { $0[name] = done.entry }
        if name == Namespace.default { self.defaultRead.withLock { $0 = (done.entry, .now) } }
        return done
    }

    func remove(_ name: String, floor: UInt64) throws(StoreError) {
        _ = try self.remove(name, floor: .some(floor))
    }

    /// Removes a namespace (its tokens go with it) and records its floor: `floor`, or when nil the
    /// highest version handed out once every write into the namespace has committed.
    /// - Returns: The floor recorded, nil when there was no such namespace.
    func remove(_ name: String, floor: UInt64?) throws(StoreError) -> UInt64? {
        guard name != Namespace.default else { throw .invalid(field: "namespace", "the namespace default cannot be deleted") }
        let recorded: UInt64?
        do {
            recorded = try self.pool.transaction { connection, deadline throws(PGError) -> UInt64? in
                // Waits for the writes holding the row (KEY SHARE); later ones find no namespace.
                guard try connection.run(Self.removeEntry, [.text(name)], deadline: deadline).count == 1 else { return nil }
                let rows = try connection.run(
                    Self.recordFloor, [.text(name), .uint(floor ?? 0), .int(Timestamp.now.milliseconds), .bool(floor == nil)], deadline: deadline)
                return rows.first?.int(0).map { UInt64(max(0, $0)) } ?? 0
            }
        } catch {
            throw ClusterStore.storeError(error, doing: "remove the namespace '\(name)'")
        }
        self.known.withLock { $0[name] = nil }
        return recorded
    }

    func addToken(_ token: NamespaceToken) throws(StoreError) {
        do {
            _ = try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.insertToken,
                    [.text(token.id), .text(token.namespace), .text(token.scope.rawValue), .bytes(token.hash), .int(token.createdAt.milliseconds)],
                    deadline: deadline)
            }
        } catch where error.state == "23503" {
            throw .namespaceNotFound(token.namespace)
        } catch {
            throw ClusterStore.storeError(error, doing: "store a token of '\(token.namespace)'")
        }
    }

    func revokeToken(_ id: String, of namespace: String) throws(StoreError) -> Bool {
        do {
            return try self.pool.with { connection, deadline throws(PGError) in
                try connection.run(Self.deleteToken, [.text(id), .text(namespace)], deadline: deadline)
            }.count == 1
        } catch {
            throw ClusterStore.storeError(error, doing: "revoke a token of '\(namespace)'")
        }
    }
}
