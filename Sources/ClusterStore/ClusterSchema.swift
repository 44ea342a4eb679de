/// The PostgreSQL schema, as numbered migrations that carmad applies itself. Several nodes may start
/// at once: each takes the same transaction-level advisory lock before it reads the applied
/// versions, so exactly one applies a migration and the others find it applied.
enum ClusterSchema {
    /// Any 64-bit number unique to carmad's schema lock.
    static let lockKey: Int64 = 0x6361_726D_6173_6368  // "carmasch"

    struct Migration: Sendable {
        let version: Int
        let description: String
        let sql: @Sendable (_ redundancyTablespace: String?) -> String
    }

    static let migrations: [Migration] = [
        Migration(version: 1, description: "registry, payloads, redundancy copies, repair queue, histories, cycles, change feed") { tablespace in
            let redundancySpace = tablespace.map { " TABLESPACE \(quoted($0))" } ?? ""
            return """
                CREATE SEQUENCE carma_versions;
                CREATE SEQUENCE carma_cycle_ids;
                CREATE TABLE carma_fragments (
                    id text PRIMARY KEY,
                    version bigint NOT NULL,
                    status text NOT NULL CHECK (status IN ('ok', 'blank', 'reconstructed')),
                    checksum bigint NOT NULL,
                    record_length integer NOT NULL,
                    size integer NOT NULL,
                    links text[] NOT NULL,
                    tags text[] NOT NULL,
                    created_at bigint NOT NULL,
                    updated_at bigint NOT NULL,
                    expires_at bigint,
                    blank_reason text,
                    lost_at bigint,
                    detected_by text,
                    original_checksum bigint,
                    original_length integer,
                    confidence double precision,
                    sketch bytea
                );
                CREATE INDEX carma_fragments_damaged ON carma_fragments (status, id) WHERE status <> 'ok';
                CREATE INDEX carma_fragments_tags ON carma_fragments USING gin (tags);
                CREATE TABLE carma_payloads (id text PRIMARY KEY, version bigint NOT NULL, record bytea NOT NULL);
                CREATE TABLE carma_redundancy (id text PRIMARY KEY, version bigint NOT NULL, record bytea NOT NULL)\(redundancySpace);
                CREATE TABLE carma_repairs (
                    id text PRIMARY KEY,
                    priority integer NOT NULL,
                    enqueued_at bigint NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    not_before bigint NOT NULL DEFAULT 0,
                    reason text NOT NULL,
                    last_error text,
                    lease_owner text,
                    lease_until bigint
                );
                CREATE INDEX carma_repairs_order ON carma_repairs (priority, enqueued_at, id);
                CREATE TABLE carma_events (
                    sequence bigserial PRIMARY KEY,
                    id text NOT NULL,
                    at bigint NOT NULL,
                    kind text NOT NULL,
                    detail text NOT NULL
                );
                CREATE INDEX carma_events_by_fragment ON carma_events (id, sequence);
                CREATE TABLE carma_cycles (
                    id bigint PRIMARY KEY,
                    node text NOT NULL,
                    trigger text NOT NULL,
                    state text NOT NULL,
                    started_at bigint NOT NULL,
                    finished_at bigint,
                    report text NOT NULL
                );
                CREATE TABLE carma_changes (sequence bigserial PRIMARY KEY, id text NOT NULL, at bigint NOT NULL);
                CREATE TABLE carma_scrub (name text PRIMARY KEY, cursor text NOT NULL, passes bigint NOT NULL, slice_at bigint NOT NULL);
                INSERT INTO carma_scrub (name, cursor, passes, slice_at) VALUES ('payloads', '', 0, 0);
                """
        },
        Migration(version: 2, description: "meanings of the built-in model, claims on embedding work, settings") { _ in
            """
            CREATE TABLE carma_meanings (id text PRIMARY KEY, version bigint NOT NULL, model text NOT NULL, vector bytea NOT NULL);
            CREATE TABLE carma_embed_claims (id text PRIMARY KEY, owner text NOT NULL, until bigint NOT NULL);
            CREATE TABLE carma_settings (key text PRIMARY KEY, value text NOT NULL);
            """
        },
        Migration(version: 3, description: "namespaces: catalog, version floors, tokens, usage counters, the namespace of each fragment") { _ in
            """
            ALTER TABLE carma_fragments ADD COLUMN namespace text COLLATE "C" NOT NULL
                GENERATED ALWAYS AS (CASE WHEN strpos(id, '/') = 0 THEN 'default' ELSE split_part(id, '/', 1) END) STORED;
            CREATE INDEX carma_fragments_namespace ON carma_fragments (namespace, id);
            CREATE TABLE carma_namespaces (
                name text COLLATE "C" PRIMARY KEY,
                quota_fragments bigint,
                quota_bytes bigint,
                created_at bigint NOT NULL
            );
            CREATE TABLE carma_namespace_floors (name text COLLATE "C" PRIMARY KEY, floor bigint NOT NULL, removed_at bigint NOT NULL);
            CREATE TABLE carma_tokens (
                id text PRIMARY KEY,
                namespace text COLLATE "C" NOT NULL REFERENCES carma_namespaces (name) ON DELETE CASCADE,
                scope text NOT NULL CHECK (scope IN ('read', 'write')),
                hash bytea NOT NULL,
                created_at bigint NOT NULL
            );
            CREATE INDEX carma_tokens_by_namespace ON carma_tokens (namespace);
            CREATE TABLE carma_namespace_usage (
                namespace text COLLATE "C" NOT NULL,
                shard integer NOT NULL,
                fragments bigint NOT NULL,
                bytes bigint NOT NULL,
                PRIMARY KEY (namespace, shard)
            );
            CREATE FUNCTION carma_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                slot integer := pg_backend_pid() % \(ClusterSchema.usageShards);
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.namespace = NEW.namespace THEN
                    INSERT INTO carma_namespace_usage AS u (namespace, shard, fragments, bytes) VALUES (NEW.namespace, slot, 0, NEW.size - OLD.size)
                    ON CONFLICT ON CONSTRAINT carma_namespace_usage_pkey DO UPDATE SET bytes = u.bytes + excluded.bytes;
                    RETURN NULL;
                END IF;
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    INSERT INTO carma_namespace_usage AS u (namespace, shard, fragments, bytes) VALUES (OLD.namespace, slot, -1, -OLD.size)
                    ON CONFLICT ON CONSTRAINT carma_namespace_usage_pkey
                    DO UPDATE SET fragments = u.fragments + excluded.fragments, bytes = u.bytes + excluded.bytes;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO carma_namespace_usage AS u (namespace, shard, fragments, bytes) VALUES (NEW.namespace, slot, 1, NEW.size)
                    ON CONFLICT ON CONSTRAINT carma_namespace_usage_pkey
                    DO UPDATE SET fragments = u.fragments + excluded.fragments, bytes = u.bytes + excluded.bytes;
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER carma_usage_inserted AFTER INSERT ON carma_fragments FOR EACH ROW EXECUTE FUNCTION carma_count_row();
            CREATE TRIGGER carma_usage_deleted AFTER DELETE ON carma_fragments FOR EACH ROW EXECUTE FUNCTION carma_count_row();
            CREATE TRIGGER carma_usage_updated AFTER UPDATE ON carma_fragments FOR EACH ROW
                WHEN (OLD.size <> NEW.size OR OLD.id <> NEW.id) EXECUTE FUNCTION carma_count_row();
            INSERT INTO carma_namespace_usage (namespace, shard, fragments, bytes)
                SELECT namespace, 0, count(*), sum(size) FROM carma_fragments GROUP BY namespace;
            INSERT INTO carma_namespaces (name, created_at)
                SELECT namespace, (extract(epoch FROM now()) * 1000)::bigint FROM carma_fragments WHERE namespace <> 'default' GROUP BY namespace
                UNION ALL SELECT 'default', 0;
            """
        },
    ]

    /// Rows each namespace's usage counters are spread over (`carma_namespace_usage`): a row trigger
    /// on `carma_fragments` adds each insert, delete and change of size to the row of its database
    /// session, in the same transaction, so that concurrent writes into one namespace do not queue on
    /// one row (a counter row is held from the write to the commit).
    static let usageShards = 32

    static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Applies what is missing; returns the versions applied by this call.
    static func migrate(_ pool: PGPool, redundancyTablespace: String?) throws(PGError) -> [Int] {
        try pool.transaction { connection, deadline throws(PGError) in
            try connection.execute("SELECT pg_advisory_xact_lock(\(lockKey))", deadline: deadline)
            try connection.execute(
                "CREATE TABLE IF NOT EXISTS carma_schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                deadline: deadline)
            let rows = try connection.execute("SELECT version FROM carma_schema_migrations", deadline: deadline)
            let applied = Set(rows.all.compactMap { $0.int(0) }.map(Int.init))
            if let newest = applied.max(), newest > migrations.last!.version {
                throw PGError(
                    kind: .server, state: nil,
                    message: "the database has schema version \(newest), newer than this carmad understands (\(migrations.last!.version)); upgrade carmad")
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                try connection.execute(migration.sql(redundancyTablespace), deadline: deadline)
                try connection.run(
                    PGStatement("carma_migration_done", "INSERT INTO carma_schema_migrations (version, description) VALUES ($1, $2)"),
                    [.int(migration.version), .text(migration.description)], deadline: deadline)
                done.append(migration.version)
            }
            return done
        }
    }
}
