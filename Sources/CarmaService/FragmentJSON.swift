import CarmaJSON
import FragmentCore
import MicroHTTP

/// The JSON shapes of the fragment API: the PUT body in, stubs, summaries and histories out.
enum FragmentJSON {
    /// Fields a client may send back unchanged from a GET; they are ignored (the server keeps them).
    static let readOnlyFields: Set<String> = [
        "version", "checksum", "status", "size", "created_at", "updated_at", "confidence", "sources", "method",
        "reconstructed_at", "rebuild_needed", "namespace",
    ]

    static let inputFields: Set<String> = ["id", "content", "links", "tags", "metadata", "embedding", "ttl", "expires_at"]

    /// Longest `ttl`: 100 years, in seconds (far from any overflow of the millisecond clock).
    static let maxTTLSeconds = 100 * 365 * 86_400

    /// Parses and type-checks a PUT body. Limits are checked by the store.
    /// - Parameter now: What a `ttl` counts from.
    static func input(from request: HTTPRequest, id: String, namespace: String, now: Timestamp = .now) throws(HTTPError) -> FragmentInput {
        let value = try request.jsonBody(maxDepth: 32)
        guard let object = value.objectValue else {
            throw .invalid("body", "the body must be a JSON object")
        }
        return try Self.input(object, id: id, namespace: namespace, now: now)
    }

    /// Type-checks one fragment's JSON object (a PUT body, or an item of a batch with `extraFields`
    /// of its own); its links are local ids (turned into keys by the caller).
    static func input(_ object: JSONObject, id: String, namespace: String, extraFields: Set<String> = [], now: Timestamp = .now) throws(HTTPError) -> FragmentInput {
        for key in object.keys where !inputFields.contains(key) && !readOnlyFields.contains(key) && !extraFields.contains(key) {
            throw .invalid(key, "unknown field '\(key)'")
        }
        if let bodyID = object["id"], bodyID.stringValue != id {
            throw .invalid("id", "the body's id does not match the path")
        }
        if let bodyNamespace = object["namespace"], bodyNamespace.stringValue != namespace {
            throw .invalid("namespace", "the body's namespace does not match the path")
        }
        guard let content = object["content"]?.stringValue else {
            throw .invalid("content", "content is required and must be a string")
        }
        // A memory with no text cannot be found, shown or rebuilt: refused rather than kept silently.
        guard !content.isEmpty else {
            throw .invalid("content", "content must not be empty")
        }
        var input = FragmentInput(content: content)
        input.links = try strings(object["links"], field: "links")
        // Links are ids of the same namespace; a key of another one is not an id.
        for link in input.links {
            if let reason = FragmentID.validate(link) { throw .invalid("links", "link '\(link.prefix(64))': \(reason)") }
        }
        input.tags = try strings(object["tags"], field: "tags")
        switch object["metadata"] {
        case nil, .null?: break
        case .object(let metadata)?: input.metadata = metadata
        default: throw .invalid("metadata", "metadata must be an object")
        }
        switch object["embedding"] {
        case nil, .null?: break
        case .array(let numbers)?:
            input.embedding = try numbers.map { (number) throws(HTTPError) -> Double in
                guard let value = number.doubleValue else { throw .invalid("embedding", "an embedding is an array of numbers") }
                return value
            }
        default: throw .invalid("embedding", "an embedding is an array of numbers")
        }
        input.expiresAt = try expiry(ttl: object["ttl"], expiresAt: object["expires_at"], now: now)
        return input
    }

    /// The instant a PUT asks its fragment to expire at: `ttl` (whole seconds from `now`) or
    /// `expires_at` (RFC 3339), not both; nil (or JSON null) for never. Whether it lies in the future
    /// is the store's rule.
    static func expiry(ttl: JSONValue?, expiresAt: JSONValue?, now: Timestamp) throws(HTTPError) -> Timestamp? {
        let ttl = ttl == .null ? nil : ttl
        let expiresAt = expiresAt == .null ? nil : expiresAt
        if ttl != nil, expiresAt != nil {
            throw .invalid("ttl", "give ttl or expires_at, not both")
        }
        if let ttl {
            guard let seconds = ttl.doubleValue, seconds.rounded() == seconds, seconds >= 1, seconds <= Double(maxTTLSeconds) else {
                throw .invalid("ttl", "ttl is a whole number of seconds from 1 to \(maxTTLSeconds)")
            }
            return now.adding(milliseconds: Int64(seconds) * 1000)
        }
        if let expiresAt {
            guard let text = expiresAt.stringValue, let instant = Timestamp(parsingRFC3339: text) else {
                throw .invalid("expires_at", "expires_at is an RFC 3339 date-time, e.g. 2030-01-31T12:00:00Z")
            }
            return instant
        }
        return nil
    }

    private static func strings(_ value: JSONValue?, field: String) throws(HTTPError) -> [String] {
        switch value {
        case nil, .null?: return []
        case .array(let items)?:
            return try items.map { (item) throws(HTTPError) -> String in
                guard let string = item.stringValue else { throw .invalid(field, "\(field) must be an array of strings") }
                return string
            }
        default: throw .invalid(field, "\(field) must be an array of strings")
        }
    }

    /// The blank stub: what the registry still knows, minus the lost content, and where its repair
    /// stands: `state` is `queued` until an attempt fails, then `failed` (with `last_error`); the
    /// next attempt's time and `eta_seconds` appear only when one is planned (`etaSeconds`).
    static func stub(_ blank: BlankFragment, etaSeconds: Int?, now: Timestamp = .now) -> JSONValue {
        let row = blank.row.localized
        var object: JSONObject = [
            "id": .string(row.id),
            "status": "blank",
            "rebuild_needed": true,
            "version": .exact(row.version),
            "links": JSONValue(row.links),
            "tags": JSONValue(row.tags),
            "lost_at": row.lostAt.map { .string($0.rfc3339) } ?? .null,
            "reason": .string(row.blankReason?.rawValue ?? "missing"),
            "detected_by": row.detectedBy.map { .string($0.rawValue) } ?? .null,
        ]
        var rebuild: JSONObject = [
            "state": .string(blank.queuedAt == nil ? "not_queued" : blank.progress.attempts > 0 ? "failed" : "queued"),
            "queued_at": blank.queuedAt.map { .string($0.rfc3339) } ?? .null,
            "attempts": .number(Double(blank.progress.attempts)),
        ]
        if let error = blank.progress.lastError { rebuild["last_error"] = .string(error) }
        if let etaSeconds {
            rebuild["next_attempt_at"] = .string(now.adding(milliseconds: Int64(etaSeconds) * 1000).rfc3339)
            rebuild["eta_seconds"] = .number(Double(etaSeconds))
        }
        object["rebuild"] = .object(rebuild)
        return .object(Self.namespaced(object, key: blank.row.id))
    }

    /// The stub for a fragment nothing is known of just now because the database does not answer
    /// (cluster mode): flagged blank, reason `backend_unavailable`, nothing queued.
    static func unavailableStub(_ key: String, retryAfter: Int) -> JSONValue {
        [
            "id": .string(FragmentKey.local(key)), "status": "blank", "rebuild_needed": false, "version": .null, "links": [], "tags": [],
            "lost_at": .null, "reason": "backend_unavailable", "detected_by": .null,
            "rebuild": ["state": "backend_unavailable", "queued_at": .null, "attempts": 0, "eta_seconds": .number(Double(retryAfter))],
        ]
    }

    /// A fragment in a listing: everything but the content.
    static func summary(_ key: FragmentRow) -> JSONValue {
        let row = key.localized
        var object: JSONObject = [
            "id": .string(row.id),
            "version": .exact(row.version),
            "status": .string(row.status.rawValue),
            "size": .number(Double(row.size)),
            "checksum": .string(CRC32C.format(row.checksum)),
            "links": JSONValue(row.links),
            "tags": JSONValue(row.tags),
            "created_at": .string(row.createdAt.rfc3339),
            "updated_at": .string(row.updatedAt.rfc3339),
        ]
        if let expiresAt = row.expiresAt {
            object["expires_at"] = .string(expiresAt.rfc3339)
        }
        if row.status == .blank {
            object["reason"] = .string(row.blankReason?.rawValue ?? "missing")
        }
        if let confidence = row.confidence, row.status == .reconstructed {
            object["confidence"] = .number(confidence)
        }
        return .object(Self.namespaced(object, key: key.id))
    }

    static func event(_ event: FragmentEvent) -> JSONValue {
        var object: JSONObject = [
            "at": .string(event.at.rfc3339),
            "kind": .string(event.kind),
        ]
        for (key, value) in event.detail {
            object[key] = value
        }
        return .object(object)
    }
}

extension FragmentJSON {
    /// `object` with the namespace of `key` after its id, as records have it (nothing for `default`).
    static func namespaced(_ object: JSONObject, key: String) -> JSONObject {
        let namespace = FragmentKey.namespace(of: key)
        guard namespace != Namespace.default else { return object }
        var result: JSONObject = [:]
        for (name, value) in object {
            result[name] = value
            if name == "id" { result["namespace"] = .string(namespace) }
        }
        return result
    }
}

/// A handler's early exit with a ready response.
struct HTTPError: Error {
    let response: HTTPResponse

    init(_ response: HTTPResponse) {
        self.response = response
    }

    static func invalid(_ field: String, _ detail: String) -> HTTPError {
        HTTPError(.badRequest("invalid-fragment", "Invalid fragment", detail: detail, extra: ["field": .string(field)]))
    }
}
