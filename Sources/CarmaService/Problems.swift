import CarmaJSON
import FragmentStore
import MicroHTTP

// The one mapping from errors to HTTP statuses and problem types.

extension HTTPResponse {
    /// The response for a store error. Every kind has a stable problem type.
    static func problem(for error: StoreError) -> HTTPResponse {
        switch error.code {
        case .notFound:
            return .problem(404, type: "fragment-not-found", title: "Fragment not found", detail: error.message)
        case .preconditionFailed:
            var extra: JSONObject = [:]
            if let current = error.currentVersion {
                extra["current_version"] = .number(Double(current))
            }
            return .problem(412, type: "precondition-failed", title: "Precondition failed", detail: error.message, extra: extra)
        case .invalid:
            var extra: JSONObject = [:]
            if let field = error.field {
                extra["field"] = .string(field)
            }
            return .problem(400, type: "invalid-fragment", title: "Invalid fragment", detail: error.message, extra: extra)
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
        case .locked, .previousLayout:
            return .problem(500, type: "storage-error", title: "Storage error", detail: error.message)
        }
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
        .problem(404, type: "fragment-not-found", title: "Fragment not found", detail: "no fragment '\(id)'")
    }
}

extension HTTPRequest {
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
