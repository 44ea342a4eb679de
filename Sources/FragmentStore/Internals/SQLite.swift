import FragmentCore
import CSQLite

// The one file that calls SQLite. The registry above it speaks in rows and Swift values.

/// An error from SQLite, with its primary result code.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String { "SQLite error \(self.code): \(self.message)" }

    var isFull: Bool { self.code & 0xFF == SQLITE_FULL }
    var isReadOnly: Bool { self.code & 0xFF == SQLITE_READONLY || self.code & 0xFF == SQLITE_CANTOPEN }
    var isIOError: Bool { self.code & 0xFF == SQLITE_IOERR }

    // Conditions of this project's schema, not of SQLite: codes outside SQLite's range.
    static let previousLayout = SQLiteError(code: -1, message: "the registry belongs to the previous storage layout")
    static func newerSchema(_ version: Int) -> SQLiteError {
        SQLiteError(code: -2, message: "the registry has schema version \(version), newer than this carmad understands")
    }

    var isPreviousLayout: Bool { self.code == -1 }
}

/// One SQLite connection. Not thread-safe: owned by one thread or guarded by a lock.
final class SQLiteConnection {
    private let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]

    init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw SQLiteError(code: code, message: "\(message) (\(path))")
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit {
        self.statements.removeAll()
        sqlite3_close_v2(self.handle)
    }

    func execute(_ sql: String) throws(SQLiteError) {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(self.handle, sql, nil, nil, &error)
        if code != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "error"
            sqlite3_free(error)
            throw SQLiteError(code: code, message: message)
        }
    }

    /// A prepared statement, cached by its text, reset and with bindings cleared.
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = self.statements[sql] {
            cached.reset()
            return cached
        }
        var raw: OpaquePointer?
        let code = sqlite3_prepare_v2(self.handle, sql, -1, &raw, nil)
        guard code == SQLITE_OK, let raw else { throw self.error(code) }
        let statement = SQLiteStatement(raw: raw, connection: self)
        self.statements[sql] = statement
        return statement
    }

    /// Runs `body` in an immediate transaction, committing if it returns and rolling back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try self.execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            self.resetAll()
            try self.execute("COMMIT")
            return result
        } catch {
            self.resetAll()
            try? self.execute("ROLLBACK")
            throw error
        }
    }

    /// Resets every cached statement. A statement left on a row keeps its read transaction, and so
    /// its snapshot, open: later reads would not see new commits and WAL checkpoints would stall.
    func resetAll() {
        for statement in self.statements.values {
            statement.reset()
        }
    }

    var changes: Int { Int(sqlite3_changes(self.handle)) }

    func error(_ code: Int32) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(self.handle)))
    }
}

/// A prepared statement; its connection keeps it alive.
final class SQLiteStatement {
    private let raw: OpaquePointer
    private unowned let connection: SQLiteConnection

    fileprivate init(raw: OpaquePointer, connection: SQLiteConnection) {
        self.raw = raw
        self.connection = connection
    }

    deinit {
        sqlite3_finalize(self.raw)
    }

    func reset() {
        sqlite3_reset(self.raw)
        sqlite3_clear_bindings(self.raw)
    }

    @discardableResult
    func bind(_ values: SQLiteValue...) -> SQLiteStatement {
        self.bindAll(values)
        return self
    }

    func bindAll(_ values: [SQLiteValue]) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: sqlite3_bind_null(self.raw, index)
            case .integer(let v): sqlite3_bind_int64(self.raw, index, v)
            case .real(let v): sqlite3_bind_double(self.raw, index, v)
            case .text(let v): sqlite3_bind_text(self.raw, index, v, -1, carma_sqlite_transient())
            case .blob(let v):
                v.withUnsafeBytes { buffer in
                    _ = sqlite3_bind_blob(self.raw, index, buffer.baseAddress, Int32(buffer.count), carma_sqlite_transient())
                }
            }
        }
    }

    /// Advances; true while a row is available.
    func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(self.raw)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = self.connection.error(code)
            sqlite3_reset(self.raw)
            throw error
        }
    }

    /// Runs a statement that returns no rows.
    func run() throws(SQLiteError) {
        while try self.step() {}
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(self.raw, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(self.raw, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(self.raw, column) == SQLITE_NULL }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(self.raw, column) else { return "" }
        let count = Int(sqlite3_column_bytes(self.raw, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? {
        self.isNull(column) ? nil : self.text(column)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(self.raw, column))
        guard count > 0, let pointer = sqlite3_column_blob(self.raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

enum SQLiteValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    static func int(_ value: Int) -> SQLiteValue { .integer(Int64(value)) }
    static func optional(_ value: String?) -> SQLiteValue { value.map(SQLiteValue.text) ?? .null }
    static func optional(_ value: Int64?) -> SQLiteValue { value.map(SQLiteValue.integer) ?? .null }
}
