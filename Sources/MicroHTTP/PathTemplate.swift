/// A route path such as `/fragments/{id}/history`: literal segments and named parameters.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    enum Segment: Sendable, Hashable {
        /// The segment's bytes, compared byte for byte with the raw path.
        case literal([UInt8])
        case parameter(String)
    }

    let segments: [Segment]
    public let description: String

    /// - Parameter template: Starts with `/`; a segment written `{name}` matches any one segment.
    public init(_ template: String) {
        precondition(template.hasPrefix("/"), "a path template starts with /")
        self.description = template
        self.segments = template.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { part in
            if part.hasPrefix("{"), part.hasSuffix("}") {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(Array(part.utf8))
        }
    }

    var parameterCount: Int {
        self.segments.reduce(0) { count, segment in
            if case .parameter = segment { return count + 1 }
            return count
        }
    }

    /// How many segments a path has and how long its first one is: enough to rule most templates out.
    struct Shape {
        var segments: Int
        /// The first segment's length; -1 in a template whose first segment is a parameter.
        var firstLength: Int

        /// The shape of a raw path.
        init(path bytes: UnsafeBufferPointer<UInt8>) {
            var slashes = 0
            var firstEnd = -1
            for index in bytes.indices where bytes[index] == UInt8(ascii: "/") {
                slashes += 1
                if slashes == 2 { firstEnd = index }
            }
            self.segments = slashes
            self.firstLength = (firstEnd < 0 ? bytes.count : firstEnd) - 1
        }

        init(segments: Int, firstLength: Int) {
            self.segments = segments
            self.firstLength = firstLength
        }

        /// Whether a path of shape `path` can match a template of this shape.
        func admits(_ path: Shape) -> Bool {
            path.segments == self.segments && (self.firstLength < 0 || path.firstLength == self.firstLength)
        }
    }

    var shape: Shape {
        guard case .literal(let first) = self.segments.first else { return Shape(segments: self.segments.count, firstLength: -1) }
        return Shape(segments: self.segments.count, firstLength: first.count)
    }

    enum Match {
        case matched(PathParameters)
        case malformed
        case noMatch
    }

    /// Matches a raw (still percent-encoded) path, given as its UTF-8 bytes, decoding parameter values.
    /// Works on the bytes in place: literals are compared without building strings, and only the
    /// parameter values of a template that matches become strings.
    func match(_ bytes: UnsafeBufferPointer<UInt8>) -> Match {
        let count = bytes.count
        guard count > 0, bytes[0] == UInt8(ascii: "/") else { return .noMatch }
        // Literals first, so that a path that does not match costs no decoding at all.
        var position = 1
        for index in self.segments.indices {
            if index > 0 {
                guard position < count, bytes[position] == UInt8(ascii: "/") else { return .noMatch }
                position += 1
            }
            let end = Self.segmentEnd(bytes, from: position)
            switch self.segments[index] {
            case .literal(let literal):
                guard end - position == literal.count else { return .noMatch }
                for offset in 0..<literal.count where bytes[position + offset] != literal[offset] { return .noMatch }
            case .parameter:
                guard end > position else { return .noMatch }
            }
            position = end
        }
        guard position == count else { return .noMatch }
        var parameters = PathParameters()
        position = 1
        for index in self.segments.indices {
            if index > 0 { position += 1 }
            let end = Self.segmentEnd(bytes, from: position)
            if case .parameter(let name) = self.segments[index] {
                guard let value = PercentEncoding.decode(UnsafeBufferPointer(rebasing: bytes[position..<end])) else { return .malformed }
                parameters.append(name, value)
            }
            position = end
        }
        return .matched(parameters)
    }

    private static func segmentEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "/") { end += 1 }
        return end
    }
}

/// The values of a route's `{name}` segments, percent-decoded, in template order.
public struct PathParameters: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        self.fields = elements.map { (name: $0.0, value: $0.1) }
    }

    public subscript(name: String) -> String? {
        self.fields.first(where: { $0.name == name })?.value
    }

    mutating func append(_ name: String, _ value: String) {
        self.fields.append((name, value))
    }
}
