import CarmaJSON
import FragmentCore
import MicroHTTP

/// Reads a `POST /import` body: NDJSON lines as `GET /export` writes them. Every line is checked
/// before anything is written, so a bad line changes nothing; its problem names the line.
enum ImportJSON {
    /// Most fragment lines one request may carry.
    static let maxFragments = 1000

    private static let fragmentFields: Set<String> = [
        "id", "version", "content", "links", "tags", "metadata", "embedding", "size", "created_at", "updated_at", "status", "checksum",
        "confidence", "sources", "method", "reconstructed_at", "rebuild_needed", "reason", "lost_at", "expires_at", "namespace",
    ]

    /// The kinds of line an export writes besides fragments (`{"carma_export": KIND, …}`).
    private static let exportLineKinds: Set<String> = ["header", "end"]

    /// The fragments of the body and the line each came from.
    static func fragments(from body: [UInt8]) throws(HTTPError) -> (fragments: [ImportedFragment], lines: [Int]) {
        var fragments: [ImportedFragment] = []
        var lines: [Int] = []
        var seen: [String: UInt32?] = [:]
        var lineNumber = 0
        for line in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(Array(bytes), maxDepth: 32, maxValues: HTTPRequest.maxJSONValues)
            } catch {
                throw Self.invalid(lineNumber, "line", "not JSON: \(error)")
            }
            guard let object = value.objectValue else { throw Self.invalid(lineNumber, "line", "a line is a JSON object") }
            // An export's header and closing lines may come along; they carry nothing to write.
            if let kind = object["carma_export"] {
                guard let name = kind.stringValue, Self.exportLineKinds.contains(name) else {
                    throw Self.invalid(lineNumber, "carma_export", "unknown export line \(kind.serialized.prefix(64)): an export writes only 'header' and 'end'")
                }
                continue
            }
            let fragment = try Self.fragment(object, line: lineNumber)
            // The same id and version twice in one body with other content: a conflict, as against
            // the store (a version names one content).
            let key = "\(fragment.version) \(fragment.id)"
            let checksum = fragment.record.map { CRC32C.checksum($0.encode()) }
            if let earlier = seen[key] {
                if let checksum, let first = earlier, first != checksum {
                    throw HTTPError(.problem(for: .importConflict(fragment.id, version: fragment.version, index: fragments.count), line: lineNumber))
                }
            } else {
                seen[key] = checksum
            }
            fragments.append(fragment)
            lines.append(lineNumber)
            if fragments.count > Self.maxFragments {
                throw Self.invalid(lineNumber, "body", "at most \(Self.maxFragments) fragments per request")
            }
        }
        guard !fragments.isEmpty else { throw Self.invalid(lineNumber, "body", "no fragment lines") }
        return (fragments, lines)
    }

    private static func fragment(_ object: JSONObject, line: Int) throws(HTTPError) -> ImportedFragment {
        for key in object.keys where !Self.fragmentFields.contains(key) {
            throw Self.invalid(line, key, "unknown field '\(key)'")
        }
        guard let id = object["id"]?.stringValue else { throw Self.invalid(line, "id", "id is required and must be a string") }
        if let reason = FragmentID.validate(id) { throw Self.invalid(line, "id", reason) }
        // Exactly the integer written, or refused: a double would turn 2^53 + 1 into 2^53.
        guard let number = object["version"]?.exactInteger, number >= 1, UInt64(number) < FragmentRecord.versionCeiling else {
            throw Self.invalid(
                line, "version", "version is a positive integer below 2^62, written without a fraction or an exponent (exactly representable)")
        }
        let created = try Self.timestamp(object, "created_at", line: line)
        let updated = try Self.timestamp(object, "updated_at", line: line)
        let status = object["status"]?.stringValue ?? "ok"
        let payload: ImportedFragment.Payload
        switch status {
        case "ok":
            payload = .exact(try Self.input(object, line: line))
        case "reconstructed":
            guard let confidence = object["confidence"]?.doubleValue, (0...1).contains(confidence) else {
                throw Self.invalid(line, "confidence", "a reconstruction has a confidence from 0 to 1")
            }
            guard let method = object["method"]?.stringValue else { throw Self.invalid(line, "method", "a reconstruction names its method") }
            let reconstruction = Reconstruction(
                confidence: confidence, sources: try Self.strings(object, "sources", line: line), method: method,
                at: object["reconstructed_at"] == nil ? updated : try Self.timestamp(object, "reconstructed_at", line: line))
            payload = .reconstructed(try Self.input(object, line: line), reconstruction)
        case "blank":
            guard let reason = object["reason"]?.stringValue.flatMap(BlankReason.init(rawValue:)) else {
                throw Self.invalid(line, "reason", "a blank's reason is missing, checksum_mismatch or unreadable")
            }
            let size = object["size"]?.intValue ?? 0
            let lostAt: Timestamp? = object["lost_at"].map { $0 == .null } ?? true ? nil : try Self.timestamp(object, "lost_at", line: line)
            payload = .blank(
                links: try Self.strings(object, "links", line: line), tags: try Self.strings(object, "tags", line: line), size: max(0, size),
                reason: reason, lostAt: lostAt)
        default:
            throw Self.invalid(line, "status", "status is ok, reconstructed or blank")
        }
        let fragment = ImportedFragment(id: id, version: UInt64(number), createdAt: created, updatedAt: updated, payload: payload)
        // The exported checksum is of the record these fields encode to: a mismatch means the line
        // was altered, and importing it would not be the exported fragment.
        // The line's namespace is part of the record it was exported from (the import's route
        // decides where it goes).
        var exported = Namespace.default
        if let named = object["namespace"] {
            guard let name = named.stringValue, Namespace.validate(name) == nil else { throw Self.invalid(line, "namespace", "namespace is a namespace name") }
            exported = name
        }
        if let expected = object["checksum"]?.stringValue, let record = Self.recordBytes(fragment.qualified(in: exported)),
            expected != CRC32C.format(CRC32C.checksum(record))
        {
            throw Self.invalid(line, "checksum", "the checksum does not match the fragment's fields")
        }
        return fragment
    }

    private static func recordBytes(_ fragment: ImportedFragment) -> [UInt8]? {
        switch fragment.payload {
        case .exact(let input):
            return FragmentRecord(id: fragment.id, version: fragment.version, input: input, createdAt: fragment.createdAt, updatedAt: fragment.updatedAt).encode()
        case .reconstructed(let input, let reconstruction):
            return FragmentRecord(
                id: fragment.id, version: fragment.version, input: input, createdAt: fragment.createdAt, updatedAt: fragment.updatedAt,
                reconstruction: reconstruction
            ).encode()
        case .blank:
            return nil
        }
    }

    private static func input(_ object: JSONObject, line: Int) throws(HTTPError) -> FragmentInput {
        guard let content = object["content"]?.stringValue else { throw Self.invalid(line, "content", "content is required and must be a string") }
        var input = FragmentInput(content: content, links: try Self.strings(object, "links", line: line), tags: try Self.strings(object, "tags", line: line))
        if object["expires_at"] != nil, object["expires_at"] != .null {
            input.expiresAt = try Self.timestamp(object, "expires_at", line: line)
        }
        switch object["metadata"] {
        case nil, .null?: break
        case .object(let metadata)?: input.metadata = metadata
        default: throw Self.invalid(line, "metadata", "metadata must be an object")
        }
        switch object["embedding"] {
        case nil, .null?: break
        case .array(let numbers)?:
            var embedding: [Double] = []
            for number in numbers {
                guard let value = number.doubleValue else { throw Self.invalid(line, "embedding", "an embedding is an array of numbers") }
                embedding.append(value)
            }
            input.embedding = embedding
        default: throw Self.invalid(line, "embedding", "an embedding is an array of numbers")
        }
        return input
    }

    private static func strings(_ object: JSONObject, _ field: String, line: Int) throws(HTTPError) -> [String] {
        switch object[field] {
        case nil, .null?: return []
        case .array(let items)?:
            var strings: [String] = []
            for item in items {
                guard let string = item.stringValue else { throw Self.invalid(line, field, "\(field) must be an array of strings") }
                // Links and sources are ids of the line's own namespace.
                if field == "links" || field == "sources", let reason = FragmentID.validate(string) {
                    throw Self.invalid(line, field, "'\(string.prefix(64))': \(reason)")
                }
                strings.append(string)
            }
            return strings
        default: throw Self.invalid(line, field, "\(field) must be an array of strings")
        }
    }

    private static func timestamp(_ object: JSONObject, _ field: String, line: Int) throws(HTTPError) -> Timestamp {
        guard let text = object[field]?.stringValue, let timestamp = Timestamp(rfc3339: text) else {
            throw Self.invalid(line, field, "\(field) is a time as the store writes it (YYYY-MM-DDTHH:MM:SS.mmmZ)")
        }
        return timestamp
    }

    static func invalid(_ line: Int, _ field: String, _ detail: String) -> HTTPError {
        HTTPError(.badRequest("invalid-import", "Invalid import", detail: "line \(line): \(detail)", extra: ["line": .exact(Int64(line)), "field": .string(field)]))
    }
}
