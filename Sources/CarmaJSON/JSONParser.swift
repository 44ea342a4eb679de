/// Why a document is not acceptable JSON, with the byte offset where the parser gave up.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    /// Which of the parser's bounds a document exceeded.
    public enum Limit: Sendable, Hashable {
        /// Nesting deeper than `maxDepth`.
        case depth
        /// More values in total than `maxValues`.
        case values
    }

    public let message: String
    public let offset: Int
    /// The bound the document exceeded, or nil when it is not well-formed JSON at all.
    public let limit: Limit?

    init(message: String, offset: Int, limit: Limit? = nil) {
        self.message = message
        self.offset = offset
        self.limit = limit
    }

    public var description: String { "\(self.message) at byte \(self.offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Stricter than most on purpose, because what it accepts is stored and served back: invalid UTF-8,
/// lone surrogate escapes, duplicate object keys, non-finite numbers and nesting deeper than
/// `maxDepth` are all errors, never silently repaired.
///
/// Its work is linear in the size of the document (objects keep a hash index of their keys past a
/// few members), and `maxValues` bounds it further for callers that take documents from strangers.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    /// Parses one JSON document; whitespace may surround it, nothing else may follow it.
    /// - Parameters:
    ///   - bytes: The document, UTF-8.
    ///   - maxDepth: Deepest nesting of arrays and objects accepted.
    ///   - maxValues: Most values in the whole document (every scalar, array, object and member value
    ///     counts one); the default has no bound beyond the document's size.
    public static func parse(
        _ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth, maxValues: Int = .max
    ) throws(JSONParseError) -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var parser = Scanner(bytes: buffer, maxDepth: maxDepth, maxValues: maxValues)
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            guard parser.index == buffer.count else {
                throw parser.error("unexpected data after the document")
            }
            return value
        }
    }

    public static func parse(_ string: String, maxDepth: Int = defaultMaxDepth, maxValues: Int = .max) throws(JSONParseError) -> JSONValue {
        try parse(Array(string.utf8), maxDepth: maxDepth, maxValues: maxValues)
    }
}

private struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    let maxValues: Int
    var index = 0
    var values = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, maxValues: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.maxValues = maxValues
    }

    func error(_ message: String) -> JSONParseError {
        JSONParseError(message: message, offset: self.index)
    }

    mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x09, 0x0A, 0x0D: self.index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard self.index < self.bytes.count else { throw self.error("unexpected end of document") }
        self.values += 1
        guard self.values <= self.maxValues else {
            throw JSONParseError(message: "more than \(self.maxValues) values", offset: self.index, limit: .values)
        }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"): try self.expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try self.expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try self.expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try self.parseNumber()
        default: throw self.error("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.error("invalid literal") }
        let start = literal.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != start[offset] {
            throw self.error("invalid literal")
        }
        self.index += count
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= self.maxDepth else {
            throw JSONParseError(message: "nesting deeper than \(self.maxDepth)", offset: self.index, limit: .depth)
        }
        self.index += 1
        var object = JSONObject()
        self.skipWhitespace()
        if self.peek(UInt8(ascii: "}")) {
            self.index += 1
            return .object(object)
        }
        while true {
            self.skipWhitespace()
            guard self.peek(UInt8(ascii: "\"")) else { throw self.error("expected a string key") }
            let keyOffset = self.index
            let key = try self.parseString()
            self.skipWhitespace()
            guard self.peek(UInt8(ascii: ":")) else { throw self.error("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            let value = try self.parseValue(depth: depth)
            guard object.insertNew(key, value) else {
                throw JSONParseError(message: "duplicate key \"\(key)\"", offset: keyOffset)
            }
            self.skipWhitespace()
            if self.peek(UInt8(ascii: ",")) {
                self.index += 1
                continue
            }
            if self.peek(UInt8(ascii: "}")) {
                self.index += 1
                return .object(object)
            }
            throw self.error("expected ',' or '}'")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= self.maxDepth else {
            throw JSONParseError(message: "nesting deeper than \(self.maxDepth)", offset: self.index, limit: .depth)
        }
        self.index += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if self.peek(UInt8(ascii: "]")) {
            self.index += 1
            return .array(elements)
        }
        while true {
            self.skipWhitespace()
            elements.append(try self.parseValue(depth: depth))
            self.skipWhitespace()
            if self.peek(UInt8(ascii: ",")) {
                self.index += 1
                continue
            }
            if self.peek(UInt8(ascii: "]")) {
                self.index += 1
                return .array(elements)
            }
            throw self.error("expected ',' or ']'")
        }
    }

    func peek(_ byte: UInt8) -> Bool {
        self.index < self.bytes.count && self.bytes[self.index] == byte
    }

    /// A number: `.number`, or `.integer` for an integer literal of 2^53 or more in magnitude that
    /// fits in Int64 (a double would round it to a neighbour).
    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = self.index
        if self.peek(UInt8(ascii: "-")) { self.index += 1 }
        guard self.index < self.bytes.count else { throw self.error("invalid number") }
        if self.bytes[self.index] == UInt8(ascii: "0") {
            self.index += 1
        } else if self.isDigit() {
            while self.isDigit() { self.index += 1 }
        } else {
            throw self.error("invalid number")
        }
        let integral = !self.peek(UInt8(ascii: ".")) && !self.peek(UInt8(ascii: "e")) && !self.peek(UInt8(ascii: "E"))
        if self.peek(UInt8(ascii: ".")) {
            self.index += 1
            guard self.isDigit() else { throw self.error("invalid number") }
            while self.isDigit() { self.index += 1 }
        }
        if self.peek(UInt8(ascii: "e")) || self.peek(UInt8(ascii: "E")) {
            self.index += 1
            if self.peek(UInt8(ascii: "+")) || self.peek(UInt8(ascii: "-")) { self.index += 1 }
            guard self.isDigit() else { throw self.error("invalid number") }
            while self.isDigit() { self.index += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(message: "number out of range", offset: start)
        }
        // From 2^53 on a double stands for several integers (2^53 + 1 reads as 2^53): keep the literal's.
        if integral, abs(value) >= JSONValue.exactDoubleLimit, let exact = Int64(text) {
            return .integer(exact)
        }
        return .number(value)
    }

    func isDigit() -> Bool {
        self.index < self.bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index])
    }

    mutating func parseString() throws(JSONParseError) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes, so the bytes between the quotes are the string.
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])
                guard let string = String(validating: raw, as: UTF8.self) else {
                    throw JSONParseError(message: "invalid UTF-8 in string", offset: start)
                }
                self.index += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.error("unescaped control character in string") }
            self.index += 1
        }
        var buffer = Array(UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]))
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = String(validating: buffer, as: UTF8.self) else {
                    throw JSONParseError(message: "invalid UTF-8 in string", offset: start)
                }
                self.index += 1
                return string
            case UInt8(ascii: "\\"):
                self.index += 1
                guard self.index < self.bytes.count else { throw self.error("unterminated escape") }
                let escape = self.bytes[self.index]
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""): buffer.append(0x22)
                case UInt8(ascii: "\\"): buffer.append(0x5C)
                case UInt8(ascii: "/"): buffer.append(0x2F)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    let scalar = try self.parseUnicodeEscape()
                    buffer.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw self.error("invalid escape")
                }
            default:
                if byte < 0x20 { throw self.error("unescaped control character in string") }
                buffer.append(byte)
                self.index += 1
            }
        }
        throw self.error("unterminated string")
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.error("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw self.error("invalid \\u escape")
            }
            value = value << 4 | digit
            self.index += 1
        }
        return value
    }

    mutating func parseUnicodeEscape() throws(JSONParseError) -> Unicode.Scalar {
        let first = try self.parseHex4()
        if (0xD800...0xDBFF).contains(first) {
            guard self.peek(UInt8(ascii: "\\")), self.index + 1 < self.bytes.count,
                self.bytes[self.index + 1] == UInt8(ascii: "u")
            else { throw self.error("lone surrogate in \\u escape") }
            self.index += 2
            let second = try self.parseHex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw self.error("lone surrogate in \\u escape") }
            let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            guard let scalar = Unicode.Scalar(combined) else { throw self.error("invalid \\u escape") }
            return scalar
        }
        guard let scalar = Unicode.Scalar(first) else { throw self.error("lone surrogate in \\u escape") }
        return scalar
    }
}
