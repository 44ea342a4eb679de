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

    /// Matches raw (still percent-encoded) path segments, decoding parameter values.
    func match(_ raw: [Substring]) -> Match {
        guard raw.count == self.segments.count else { return .noMatch }
        for (segment, part) in zip(self.segments, raw) {
            switch segment {
            case .literal(let literal) where literal != part: return .noMatch
            case .parameter where part.isEmpty: return .noMatch
            default: continue
            }
        }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(self.segments, raw) {
            guard case .parameter(let name) = segment else { continue }
            guard let value = PercentEncoding.decode(part) else { return .malformed }
            parameters[name] = value
        }
        return .matched(parameters)
    }
}
