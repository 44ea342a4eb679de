/// A complete request as a handler sees it: the body has been read in full.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path as sent, still percent-encoded, without the query.
    public var path: String
    /// The route template that matched, e.g. `/fragments/{id}`.
    public var route: String
    /// Values of the template's `{name}` segments, percent-decoded.
    public var pathParameters: PathParameters
    /// Query arguments in order, percent-decoded (`+` is a space).
    public var query: [(name: String, value: String)]
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(
        method: HTTPMethod,
        path: String,
        route: String = "",
        pathParameters: PathParameters = PathParameters(),
        query: [(name: String, value: String)] = [],
        headers: HTTPHeaders = [:],
        body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.route = route
        self.pathParameters = pathParameters
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The first query argument called `name`.
    public func queryValue(_ name: String) -> String? {
        self.query.first(where: { $0.name == name })?.value
    }

    /// The media type of the body without parameters, lowercased, e.g. `application/json`.
    public var mediaType: String? {
        guard let contentType = self.headers["Content-Type"] else { return nil }
        return MediaType(contentType).essence
    }
}

/// A parsed `Content-Type` value: `type/subtype; name=value`.
public struct MediaType: Sendable {
    public let essence: String
    public let parameters: [String: String]

    public init(_ text: String) {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        self.essence = parts.first.map { $0.trimmingSpaces().lowercased() } ?? ""
        var parameters: [String: String] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            var value = pair[1].trimmingSpaces()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            parameters[pair[0].trimmingSpaces().lowercased()] = value
        }
        self.parameters = parameters
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    public func trimmingSpaces() -> String {
        let utf8 = self.utf8
        guard let first = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let last = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        return String(self[first...last])
    }
}
