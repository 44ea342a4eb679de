/// A JSON document as a value: what the parser produces and the writer prints.
///
/// Objects keep their members in the order they were written, so that what a client stored is what it
/// reads back. Numbers are finite doubles, except integers from 2^53 on (where doubles have gaps):
/// the parser reads such an integer literal that fits in Int64 as `.integer`,
/// so that counters such as versions survive a round trip exactly. Every other number stays
/// `.number`, so code that matches `.number` sees what it saw before. Build integers with
/// `JSONValue.exact(_:)`, which picks the representation the parser would.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    /// An integer of magnitude 2^53 or more, held exactly (smaller ones are `.number`).
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// An ordered JSON object with unique keys.
///
/// Small objects (most of them) find a key by a linear scan; past `indexThreshold` members a hash
/// index from key to position is kept too, so that building or parsing an object of n members costs
/// O(n) instead of O(n²): 80,000 distinct keys took 10 s to parse with the scan alone.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var members: [(key: String, value: JSONValue)]
    /// Position of each key in `members`, kept only once the object has more than `indexThreshold`
    /// members (below that a scan is cheaper than hashing).
    private var index: [String: Int]?

    /// Members up to which lookups scan instead of hashing.
    static let indexThreshold = 8

    public init() {
        self.members = []
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.members = []
        for (key, value) in elements {
            self[key] = value
        }
    }

    /// An object from key/value pairs; a repeated key keeps its last value.
    public init(_ pairs: [(String, JSONValue)]) {
        self.members = []
        for (key, value) in pairs {
            self[key] = value
        }
    }

    public var count: Int { self.members.count }
    public var isEmpty: Bool { self.members.isEmpty }
    public var keys: [String] { self.members.map(\.key) }

    /// The member named `key`; setting `nil` removes it, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            self.position(of: key).map { self.members[$0].value }
        }
        set {
            switch (self.position(of: key), newValue) {
            case let (position?, value?):
                self.members[position].value = value
            case let (position?, nil):
                self.members.remove(at: position)
                // Positions after the removed member shift; rebuilding is O(n), and removal is rare.
                self.rebuildIndex()
            case let (nil, value?):
                self.appendNew(key, value)
            case (nil, nil):
                break
            }
        }
    }

    /// Appends `key` unless the object already has it.
    /// - Returns: false, changing nothing, when `key` is already a member.
    public mutating func insertNew(_ key: String, _ value: JSONValue) -> Bool {
        guard self.position(of: key) == nil else { return false }
        self.appendNew(key, value)
        return true
    }

    private func position(of key: String) -> Int? {
        if let index = self.index {
            return index[key]
        }
        return self.members.firstIndex(where: { $0.key == key })
    }

    /// Appends a key known to be absent.
    private mutating func appendNew(_ key: String, _ value: JSONValue) {
        self.members.append((key, value))
        if self.index != nil {
            self.index![key] = self.members.count - 1
        } else if self.members.count > Self.indexThreshold {
            self.rebuildIndex()
        }
    }

    private mutating func rebuildIndex() {
        guard self.members.count > Self.indexThreshold else {
            self.index = nil
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(self.members.count)
        for (position, member) in self.members.enumerated() {
            index[member.key] = position
        }
        self.index = index
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        self.members.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (l, r) in zip(lhs.members, rhs.members) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.members.count)
        for member in self.members {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}

extension JSONValue {
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .number(let n): return n
        case .integer(let i): return Double(i)
        default: return nil
        }
    }

    /// The number as an integer, if it is one exactly.
    public var intValue: Int? {
        self.exactInteger.map { Int($0) }
    }

    /// The number as an integer if it is known exactly: an integral double below 2^53 in magnitude
    /// (from 2^53 on a double may stand for several integer literals), or an `.integer`.
    public var exactInteger: Int64? {
        switch self {
        case .number(let n):
            guard n.rounded() == n, abs(n) < Self.exactDoubleLimit else { return nil }
            return Int64(n)
        case .integer(let i): return i
        default: return nil
        }
    }

    /// 2^53: every integer below it in magnitude is one double, and no other literal reads as it.
    public static let exactDoubleLimit: Double = 9_007_199_254_740_992

    /// An integer, exactly: `.number` below 2^53 in magnitude, `.integer` from there on.
    public static func exact(_ value: Int64) -> JSONValue {
        value.magnitude < UInt64(exactDoubleLimit) ? .number(Double(value)) : .integer(value)
    }

    /// An unsigned integer (a version, a count), exactly; nil past Int64.max.
    public static func exact(_ value: UInt64) -> JSONValue {
        value <= UInt64(Int64.max) ? .exact(Int64(value)) : .number(Double(value))
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member `key` of an object, or nil for anything else.
    public subscript(key: String) -> JSONValue? {
        self.objectValue?[key]
    }

    /// How deep the value nests: 0 for a scalar, 1 for a flat array or object.
    public var depth: Int {
        switch self {
        case .array(let a): return 1 + (a.map(\.depth).max() ?? 0)
        case .object(let o): return 1 + (o.members.map(\.value.depth).max() ?? 0)
        default: return 0
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral, ExpressibleByDictionaryLiteral
{
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    public init(_ value: Int) { self = .number(Double(value)) }
    public init(_ value: Double) { self = .number(value) }
    public init(_ value: String) { self = .string(value) }
    public init(_ strings: [String]) { self = .array(strings.map(JSONValue.string)) }
}
