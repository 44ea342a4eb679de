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

    enum Match {
        case matched([String: String])
        case malformed
        case noMatch
    }

    /// Matches a raw (still percent-encoded) path, given as its UTF-8 bytes, decoding parameter values.
    /// Works on the bytes in place: a request's path is matched against every template without
    /// building strings, except for the parameter values of the template that matches.
    func match(_ bytes: UnsafeBufferPointer<UInt8>) -> Match {
        let count = bytes.count
        guard count > 0, bytes[0] == UInt8(ascii: "/") else { return .noMatch }
        var position = 1
        var parameters: [(name: String, range: Range<Int>)] = []
        for (offset, segment) in self.segments.enumerated() {
            if offset > 0 {
                guard position < count, bytes[position] == UInt8(ascii: "/") else { return .noMatch }
                position += 1
            }
            var end = position
            while end < count, bytes[end] != UInt8(ascii: "/") { end += 1 }
            switch segment {
            case .literal(let literal):
                guard end - position == literal.count else { return .noMatch }
                for index in 0..<literal.count where bytes[position + index] != literal[index] { return .noMatch }
            case .parameter(let name):
                guard end > position else { return .noMatch }
                parameters.append((name, position..<end))
            }
            position = end
        }
        guard position == count else { return .noMatch }
        var decoded: [String: String] = [:]
        for (name, range) in parameters {
            let raw = Substring(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            guard let value = PercentEncoding.decode(raw) else { return .malformed }
            decoded[name] = value
        }
        return .matched(decoded)
    }
}
