import FragmentCore

// The built-in model's embeddings ("meanings"), one row per fragment: the version it was computed
// for and the int8 vector. Kept apart from the fragments table so that the background embedder's
// writes touch nothing a PUT touches, and created whatever the schema version (an older carmad simply
// ignores the table).

extension Registry {
    static func createMeaningTable(_ db: SQLiteConnection) throws(SQLiteError) {
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS meanings (
                id TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                vector BLOB NOT NULL
            ) WITHOUT ROWID
            """)
    }

    /// Stores a meaning unless the fragment is gone or at another version by now (apply thread).
    func setMeaning(_ id: String, version: UInt64, vector: [Int8]) throws(SQLiteError) {
        try self.writer.statement(
            """
            INSERT INTO meanings (id, version, vector) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM fragments WHERE id = ? AND version = ?)
            ON CONFLICT(id) DO UPDATE SET version = excluded.version, vector = excluded.vector
            """
        ).bind(.text(id), .integer(Int64(version)), .blob(vector.map { UInt8(bitPattern: $0) }), .text(id), .integer(Int64(version))).run()
    }

    /// Forgets every meaning (the model changed), apply thread.
    func clearMeanings() throws(SQLiteError) {
        try self.writer.execute("DELETE FROM meanings")
    }

    /// Every stored meaning, on the reader connection.
    func forEachMeaning(_ body: (String, UInt64, [Int8]) -> Void) throws {
        try self.withReader { db in
            let statement = try db.statement("SELECT id, version, vector FROM meanings")
            while try statement.step() {
                body(statement.text(0), UInt64(statement.int(1)), statement.blob(2).map { Int8(bitPattern: $0) })
            }
        }
    }
}
