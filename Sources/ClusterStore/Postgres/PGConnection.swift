import CPostgres
import Foundation

// The one file that calls libpq. Everything above it speaks in statements, parameters and rows.

/// Why a database call failed.
public struct PGError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server could not be reached, the connection broke, or the deadline passed: the
        /// database is unavailable for now; nothing is known to have changed.
        case unavailable
        /// The server refused the statement (SQLSTATE in `state`).
        case server
    }

    public let kind: Kind
    /// The SQLSTATE for server errors ("23505", "40001", …).
    public let state: String?
    public let message: String

    public var description: String { self.state.map { "\(self.message) (SQLSTATE \($0))" } ?? self.message }

    static func unavailable(_ message: String) -> PGError { PGError(kind: .unavailable, state: nil, message: message) }

    /// Serialization failures and deadlocks: the transaction can simply run again.
    public var isRetryable: Bool { self.state == "40001" || self.state == "40P01" }
    public var isUniqueViolation: Bool { self.state == "23505" }
}

/// A statement prepared once per connection under its name.
public struct PGStatement: Sendable, Hashable {
    public let name: String
    public let sql: String

    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// One parameter, sent as text except bytes (binary, no escaping).
public enum PGValue: Sendable {
    case null
    case text(String)
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case bool(Bool)
    case texts([String])

    public static func int(_ value: Int) -> PGValue { .int(Int64(value)) }
    public static func uint(_ value: UInt64) -> PGValue { .int(Int64(bitPattern: value)) }
    public static func uint(_ value: UInt32) -> PGValue { .int(Int64(value)) }
    public static func optional(_ value: String?) -> PGValue { value.map(PGValue.text) ?? .null }
    public static func optional(_ value: Int64?) -> PGValue { value.map(PGValue.int) ?? .null }
    public static func optional(_ value: Double?) -> PGValue { value.map(PGValue.double) ?? .null }

    /// The wire form: bytes and whether they are binary.
    fileprivate var wire: (bytes: [UInt8], binary: Bool)? {
        switch self {
        case .null: nil
        case .text(let string): (Array(string.utf8), false)
        case .int(let value): (Array(String(value).utf8), false)
        case .double(let value): (Array(String(value).utf8), false)
        case .bytes(let bytes): (bytes, true)
        case .bool(let value): (Array((value ? "t" : "f").utf8), false)
        case .texts(let strings): (Array(PGArray.literal(strings).utf8), false)
        }
    }
}

/// The rows of a result, as the text the server sent (bytea decoded on request).
public struct PGRows: Sendable {
    public var rows: [[[UInt8]?]] = []

    public var count: Int { self.rows.count }
    public subscript(_ index: Int) -> PGRow { PGRow(cells: self.rows[index]) }
    public var all: [PGRow] { self.rows.map(PGRow.init(cells:)) }
    public var first: PGRow? { self.rows.first.map(PGRow.init(cells:)) }
}

/// One row's cells, typed on access. A malformed cell reads as nil (the caller decides).
public struct PGRow: Sendable {
    let cells: [[UInt8]?]

    public func isNull(_ column: Int) -> Bool { self.cells[column] == nil }
    public func string(_ column: Int) -> String? { self.cells[column].map { String(decoding: $0, as: UTF8.self) } }
    public func int(_ column: Int) -> Int64? { self.string(column).flatMap { Int64($0) } }
    public func double(_ column: Int) -> Double? { self.string(column).flatMap { Double($0) } }
    public func texts(_ column: Int) -> [String]? { self.string(column).flatMap(PGArray.parse) }

    /// A bytea column in the server's hex output format (`\x0a1b…`).
    public func bytes(_ column: Int) -> [UInt8]? {
        guard let cell = self.cells[column], cell.count >= 2, cell[0] == UInt8(ascii: "\\"), cell[1] == UInt8(ascii: "x"), cell.count % 2 == 0 else {
            return nil
        }
        var out = [UInt8]()
        out.reserveCapacity((cell.count - 2) / 2)
        var index = 2
        while index < cell.count {
            guard let high = Self.nibble(cell[index]), let low = Self.nibble(cell[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// One libpq connection in non-blocking mode: every call waits at most until its deadline, then the
/// connection is dropped (a late answer cannot be told apart from a lost one). Not thread-safe:
/// owned by one thread at a time (the pool hands it out).
public final class PGConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var prepared: Set<String> = []
    /// False once the connection broke or a call overran its deadline: the pool drops it.
    public private(set) var usable = true
    /// Calls answered so far (the pool tells a stale connection's first failure from a later one).
    public private(set) var answered = 0

    /// Connects, waiting at most until `deadline`.
    public init(url: String, deadline: ContinuousClock.Instant) throws(PGError) {
        guard let handle = PQconnectStart(url) else { throw .unavailable("out of memory connecting to PostgreSQL") }
        self.handle = handle
        if PQstatus(handle) == CONNECTION_BAD {
            throw .unavailable("cannot connect to PostgreSQL: \(self.errorMessage)")
        }
        while true {
            switch PQconnectPoll(handle) {
            case PGRES_POLLING_OK:
                // Server notices ("relation already exists, skipping") would go to stderr.
                PQsetNoticeProcessor(handle, { _, _ in }, nil)
                guard PQsetnonblocking(handle, 1) == 0 else { throw .unavailable("cannot use a non-blocking connection: \(self.errorMessage)") }
                return
            case PGRES_POLLING_FAILED:
                throw .unavailable("cannot connect to PostgreSQL: \(self.errorMessage)")
            case PGRES_POLLING_READING:
                try self.wait(readable: true, until: deadline, doing: "connect")
            default:
                try self.wait(readable: false, until: deadline, doing: "connect")
            }
        }
    }

    deinit {
        PQfinish(self.handle)
    }

    private var errorMessage: String {
        String(cString: PQerrorMessage(self.handle)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs SQL without parameters (several statements allowed): transaction control, DDL.
    @discardableResult
    public func execute(_ sql: String, deadline: ContinuousClock.Instant) throws(PGError) -> PGRows {
        try self.ensureUsable()
        guard PQsendQuery(self.handle, sql) == 1 else { throw self.broken("send") }
        return try self.collect(until: deadline)
    }

    /// Runs a prepared statement (prepared on this connection the first time).
    @discardableResult
    public func run(_ statement: PGStatement, _ parameters: [PGValue], deadline: ContinuousClock.Instant) throws(PGError) -> PGRows {
        try self.ensureUsable()
        if !self.prepared.contains(statement.name) {
            guard PQsendPrepare(self.handle, statement.name, statement.sql, Int32(parameters.count), nil) == 1 else { throw self.broken("prepare") }
            _ = try self.collect(until: deadline)
            self.prepared.insert(statement.name)
        }
        let wires = parameters.map(\.wire)
        let buffers: [UnsafeMutablePointer<CChar>?] = wires.map { wire in
            guard let wire else { return nil }
            // Text parameters are read up to a NUL (their length is ignored); binary ones by length.
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: wire.bytes.count + 1)
            wire.bytes.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { if let base = $0.baseAddress { buffer.update(from: base, count: source.count) } }
            }
            buffer[wire.bytes.count] = 0
            return buffer
        }
        defer { buffers.forEach { $0?.deallocate() } }
        let lengths = wires.map { Int32($0?.bytes.count ?? 0) }
        let formats = wires.map { Int32(($0?.binary ?? false) ? 1 : 0) }
        let sent = buffers.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            lengths.withUnsafeBufferPointer { lengths in
                formats.withUnsafeBufferPointer { formats in
                    PQsendQueryPrepared(self.handle, statement.name, Int32(parameters.count), values.baseAddress, lengths.baseAddress, formats.baseAddress, 0)
                }
            }
        }
        guard sent == 1 else { throw self.broken("send") }
        return try self.collect(until: deadline)
    }

    private func ensureUsable() throws(PGError) {
        guard self.usable, PQstatus(self.handle) == CONNECTION_OK else {
            self.usable = false
            throw .unavailable("the connection to PostgreSQL is closed")
        }
    }

    private func broken(_ action: String) -> PGError {
        self.usable = false
        return .unavailable("PostgreSQL connection failed during \(action): \(self.errorMessage)")
    }

    /// Sends what is buffered, then reads every result of the call. The first error is thrown after
    /// all results are read, so that the connection stays in step.
    private func collect(until deadline: ContinuousClock.Instant) throws(PGError) -> PGRows {
        while true {
            let flushed = PQflush(self.handle)
            if flushed == 0 { break }
            if flushed < 0 { throw self.broken("send") }
            try self.wait(readable: false, until: deadline, doing: "send")
        }
        var rows = PGRows()
        var failure: PGError?
        while true {
            while PQisBusy(self.handle) == 1 {
                try self.wait(readable: true, until: deadline, doing: "wait for an answer")
                guard PQconsumeInput(self.handle) == 1 else { throw self.broken("read") }
            }
            guard let result = PQgetResult(self.handle) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK:
                let columns = PQnfields(result)
                for row in 0..<PQntuples(result) {
                    var cells: [[UInt8]?] = []
                    cells.reserveCapacity(Int(columns))
                    for column in 0..<columns {
                        if PQgetisnull(result, row, column) == 1 {
                            cells.append(nil)
                        } else {
                            let length = Int(PQgetlength(result, row, column))
                            let value = PQgetvalue(result, row, column)!
                            cells.append(value.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) })
                        }
                    }
                    rows.rows.append(cells)
                }
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                break
            default:
                let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
                let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
                if failure == nil {
                    // Admin shutdown, connection exceptions and cancelled statements: unavailable.
                    let unavailable = state.map { $0.hasPrefix("08") || $0.hasPrefix("57") } ?? true
                    failure = PGError(kind: unavailable ? .unavailable : .server, state: state, message: message)
                }
            }
        }
        if PQstatus(self.handle) != CONNECTION_OK { self.usable = false }
        if let failure { throw failure }
        self.answered += 1
        return rows
    }

    /// Waits until the socket is ready or the deadline passes (then the connection is given up).
    private func wait(readable: Bool, until deadline: ContinuousClock.Instant, doing action: String) throws(PGError) {
        let socket = PQsocket(self.handle)
        guard socket >= 0 else { throw self.broken(action) }
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            let milliseconds = remaining.wholeMilliseconds
            guard milliseconds > 0 else {
                self.usable = false
                throw .unavailable("PostgreSQL did not answer in time (\(action))")
            }
            var descriptor = pollfd(fd: socket, events: Int16(readable ? POLLIN : POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(milliseconds, 60_000)))
            if ready > 0 { return }
            if ready < 0, errno != EINTR { throw self.broken(action) }
        }
    }
}

/// PostgreSQL's text form of a one-dimensional text array.
enum PGArray {
    static func literal(_ strings: [String]) -> String {
        "{" + strings.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    /// Parses `{a,"b c",NULL}`; nil when malformed. NULL elements are not expected here (nil).
    static func parse(_ text: String) -> [String]? {
        var chars = Array(text.utf8)[...]
        guard chars.first == UInt8(ascii: "{"), chars.last == UInt8(ascii: "}") else { return nil }
        chars = chars.dropFirst().dropLast()
        var out: [String] = []
        var index = chars.startIndex
        while index < chars.endIndex {
            var element: [UInt8] = []
            if chars[index] == UInt8(ascii: "\"") {
                index += 1
                while index < chars.endIndex, chars[index] != UInt8(ascii: "\"") {
                    if chars[index] == UInt8(ascii: "\\") { index += 1 }
                    guard index < chars.endIndex else { return nil }
                    element.append(chars[index])
                    index += 1
                }
                guard index < chars.endIndex else { return nil }
                index += 1
            } else {
                while index < chars.endIndex, chars[index] != UInt8(ascii: ",") {
                    element.append(chars[index])
                    index += 1
                }
                if element == Array("NULL".utf8) { return nil }
            }
            out.append(String(decoding: element, as: UTF8.self))
            if index < chars.endIndex {
                guard chars[index] == UInt8(ascii: ",") else { return nil }
                index += 1
            }
        }
        return out
    }
}
