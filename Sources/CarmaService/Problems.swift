import CarmaJSON
import FragmentCore
import MicroHTTP

// The one mapping from errors to HTTP statuses and problem types.

extension HTTPResponse {
    /// The response for a store error. Every kind has a stable problem type.
    /// - Parameter line: The line of the request body (an import) the error is about, if any: named
    ///   in the detail and as `line`, as the body's own checks do.
    static func problem(for error: StoreError, line: Int? = nil) -> HTTPResponse {
        var fieldAndLine: JSONObject = [:]
        if let field = error.field {
            fieldAndLine["field"] = .string(field)
        }
        if let line {
            fieldAndLine["line"] = .exact(Int64(line))
        }
        let lineDetail = line.map { "line \($0): \(error.message)" } ?? error.message
        switch error.code {
        case .notFound:
            return .problem(404, type: "fragment-not-found", title: "Fragment not found", detail: error.message)
        case .preconditionFailed:
            var extra: JSONObject = [:]
            if let current = error.currentVersion {
                extra["current_version"] = .exact(current)
            }
            return .problem(412, type: "precondition-failed", title: "Precondition failed", detail: error.message, extra: extra)
        case .invalid:
            return .problem(400, type: "invalid-fragment", title: "Invalid fragment", detail: lineDetail, extra: fieldAndLine)
        case .diskFull:
            return .problem(507, type: "insufficient-storage", title: "Insufficient storage", detail: error.message)
        case .readOnly:
            return .problem(503, type: "read-only-storage", title: "Storage is read-only", detail: error.message, headers: ["Retry-After": "60"])
        case .io:
            return .problem(500, type: "storage-error", title: "Storage error", detail: error.message)
        case .closed:
            return .problem(503, type: "shutting-down", title: "Shutting down", detail: error.message, headers: ["Retry-After": "5"])
        case .unavailable:
            return .problem(503, type: "temporarily-unavailable", title: "Temporarily unavailable", detail: error.message, headers: ["Retry-After": "1"])
        case .conflict:
            return .problem(409, type: "import-conflict", title: "Import conflict", detail: lineDetail, extra: fieldAndLine)
        case .quotaExceeded:
            var extra = fieldAndLine
            if let (limit, usage) = error.quota {
                extra["quota"] = limit.json
                extra["usage"] = ["fragments": .exact(Int64(usage.fragments)), "bytes": .exact(usage.bytes)]
            }
            return .problem(403, type: "quota-exceeded", title: "Quota exceeded", detail: lineDetail, extra: extra)
        case .namespaceNotFound:
            return .namespaceNotFound
        case .locked, .previousLayout:
            return .problem(500, type: "storage-error", title: "Storage error", detail: error.message)
        }
    }

    /// What a request about a namespace gets when the namespace does not exist or the caller's token
    /// belongs to another one: the same bytes either way, so existence does not leak.
    static let namespaceNotFound = HTTPResponse.problem(
        404, type: "namespace-not-found", title: "Namespace not found", detail: "no such namespace, or not one this token may use")

    /// A namespace token on a route only the admin token may use.
    static let adminOnly = HTTPResponse.problem(403, type: "forbidden", title: "Forbidden", detail: "this request needs the admin token")

    /// The response for a request body that is not acceptable JSON: 400, or 413 when the document
    /// holds more values than a request may (`HTTPRequest.maxJSONValues`).
    static func problem(for error: JSONParseError) -> HTTPResponse {
        if error.limit == .values {
            return .problem(
                413, type: "json-too-complex", title: "JSON document too complex", detail: error.description,
                extra: ["max_values": .number(Double(HTTPRequest.maxJSONValues))])
        }
        return .badRequest("malformed-json", "Malformed JSON", detail: error.description)
    }

    static func badRequest(_ type: String, _ title: String, detail: String, extra: JSONObject = [:]) -> HTTPResponse {
        .problem(400, type: type, title: title, detail: detail, extra: extra)
    }

    /// A query parameter that must be a plain decimal integer ("+5", " 5" and "5.0" are not).
    static func strictInteger(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return Int(text)
    }

    static func notFound(_ id: String) -> HTTPResponse {
        .problem(404, type: "fragment-not-found", title: "Fragment not found", detail: "no fragment '\(FragmentKey.local(id))'")
    }
}

extension HTTPRequest {
    /// Most JSON values one request body may hold. The largest valid PUT (a 4,096-dimension embedding,
    /// 256 links, 64 tags and 16 KiB of metadata) holds under 13,000; the bound keeps a body of tiny
    /// values (80,000 keys fit in 1 MiB) from costing more than a real one.
    static let maxJSONValues = 50_000

    /// The body parsed as JSON, or the 400/413 problem saying why it is not acceptable.
    func jsonBody(maxDepth: Int) throws(HTTPError) -> JSONValue {
        do {
            return try JSONParser.parse(self.body, maxDepth: maxDepth, maxValues: Self.maxJSONValues)
        } catch {
            throw HTTPError(.problem(for: error))
        }
    }

    /// An integer query parameter within `range`, or `defaultValue` when absent; a 400 otherwise.
    func integer(_ name: String, in range: ClosedRange<Int>, default defaultValue: Int) throws(HTTPError) -> Int {
        guard let raw = self.queryValue(name) else { return defaultValue }
        guard let value = HTTPResponse.strictInteger(raw), range.contains(value) else {
            throw HTTPError(.badRequest(
                "invalid-query", "Invalid query", detail: "\(name) is an integer from \(range.lowerBound) to \(range.upperBound)",
                extra: ["field": .string(name)]))
        }
        return value
    }
}
