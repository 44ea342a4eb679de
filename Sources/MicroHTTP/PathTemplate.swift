/// A route path such as `/fragments/{id}/history`: literal segments and named parameters.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    enum Segment: Sendable, Hashable {
        case literal(String)
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
            return .literal(String(part))
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

    /// Matches a raw (still percent-encoded) path after its leading `/`, decoding parameter values.
    /// Walks the bytes in place: no array of segments is built for a request.
    func match(_ path: Substring) -> Match {
        let utf8 = path.utf8
        var position = utf8.startIndex
        var parameters: [(String, Substring)] = []
        for (offset, segment) in self.segments.enumerated() {
            if offset > 0 {
                // Every segment after the first starts after a slash.
                guard position < utf8.endIndex, utf8[position] == UInt8(ascii: "/") else { return .noMatch }
                position = utf8.index(after: position)
            }
            let end = utf8[position...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            let part = path[position..<end]
            switch segment {
            case .literal(let literal):
                guard part.utf8.elementsEqual(literal.utf8) else { return .noMatch }
            case .parameter(let name):
                guard !part.isEmpty else { return .noMatch }
                parameters.append((name, part))
            }
            position = end
        }
        guard position == utf8.endIndex else { return .noMatch }
        var decoded: [String: String] = [:]
        for (name, raw) in parameters {
            guard let value = PercentEncoding.decode(raw) else { return .malformed }
            decoded[name] = value
        }
        return .matched(decoded)
    }
}
