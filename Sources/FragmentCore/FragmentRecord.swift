import CarmaJSON

/// A fragment as its log record holds it: the client's fields plus what the server keeps.
///
/// The record is stored as JSON, and that JSON (with `status` and `checksum` appended) is exactly
/// what a GET returns, so a read never re-encodes anything.
///
/// In memory, `id`, `links` and the reconstruction's `sources` are keys (`FragmentKey`); the JSON
/// holds them local, with the namespace in a member of its own after the id (left out for
/// `default`, so records from before namespaces read as theirs).
public struct FragmentRecord: Sendable, Equatable {
    /// The highest version a store hands out: far above anything a store reaches (2^62), far below
    /// where the counter would wrap.
    package static let versionCeiling: UInt64 = 1 << 62

    public var id: String
    public var version: UInt64
    public var content: String
    public var links: [String]
    public var tags: [String]
    public var metadata: JSONObject
    public var embedding: [Double]?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// When the fragment expires; nil for never. In the record, so that a registry rebuilt from the
    /// logs honours it too.
    public var expiresAt: Timestamp?
    /// Set on a record rebuilt from context instead of recovered exactly.
    public var reconstruction: Reconstruction?

    public var size: Int { self.content.utf8.count }

    public init(
        id: String, version: UInt64, input: FragmentInput, createdAt: Timestamp, updatedAt: Timestamp,
        reconstruction: Reconstruction? = nil
    ) {
        self.id = id
        self.version = version
        self.content = input.content
        self.links = input.links
        self.tags = input.tags
        self.metadata = input.metadata
        self.embedding = input.embedding
        self.expiresAt = input.expiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.reconstruction = reconstruction
    }

    public var input: FragmentInput {
        FragmentInput(
            content: self.content, links: self.links, tags: self.tags, metadata: self.metadata, embedding: self.embedding,
            expiresAt: self.expiresAt)
    }

    /// The canonical JSON of the record, written directly (no intermediate JSON tree: this runs for
    /// every PUT).
    public func encode() -> [UInt8] {
        var writer = JSONWriter(capacity: self.content.utf8.count + 256)
        let (namespace, id) = FragmentKey.split(self.id)
        writer.writeRaw("{\"id\":")
        writer.writeString(id)
        if namespace != Namespace.default {
            writer.writeRaw(",\"namespace\":")
            writer.writeString(namespace)
        }
        writer.writeRaw(",\"version\":")
        writer.writeInteger(self.version)
        writer.writeRaw(",\"content\":")
        writer.writeString(self.content)
        writer.writeRaw(",\"links\":")
        writer.write(JSONValue(self.links.map(FragmentKey.local)))
        writer.writeRaw(",\"tags\":")
        writer.write(JSONValue(self.tags))
        writer.writeRaw(",\"metadata\":")
        writer.write(.object(self.metadata))
        if let embedding = self.embedding {
            writer.writeRaw(",\"embedding\":")
            writer.write(.array(embedding.map(JSONValue.number)))
        }
        writer.writeRaw(",\"size\":")
        writer.writeNumber(Double(self.size))
        writer.writeRaw(",\"created_at\":")
        writer.writeString(self.createdAt.rfc3339)
        writer.writeRaw(",\"updated_at\":")
        writer.writeString(self.updatedAt.rfc3339)
        if let expiresAt = self.expiresAt {
            writer.writeRaw(",\"expires_at\":")
            writer.writeString(expiresAt.rfc3339)
        }
        if let reconstruction = self.reconstruction {
            writer.writeRaw(",\"confidence\":")
            writer.writeNumber((reconstruction.confidence * 1000).rounded() / 1000)
            writer.writeRaw(",\"sources\":")
            writer.write(JSONValue(reconstruction.sources.map(FragmentKey.local)))
            writer.writeRaw(",\"method\":")
            writer.writeString(reconstruction.method)
            writer.writeRaw(",\"reconstructed_at\":")
            writer.writeString(reconstruction.at.rfc3339)
        }
        writer.writeRaw("}")
        return writer.bytes
    }

    /// A record's version: an exact integer (records written before versions were printed exactly
    /// may hold a double in exponent form; it is taken as it reads).
    private static func version(_ value: JSONValue?) -> UInt64? {
        if let exact = value?.exactInteger { return exact > 0 ? UInt64(exact) : nil }
        guard let double = value?.doubleValue, double >= 1, double < 1.8e19 else { return nil }
        return UInt64(double)
    }

    /// Parses a record read back from a log; its id, links and sources come back as keys.
    public static func decode(_ bytes: [UInt8]) -> FragmentRecord? {
        guard let value = try? JSONParser.parse(bytes, maxDepth: 128), let object = value.objectValue,
            let local = object["id"]?.stringValue, let version = Self.version(object["version"]),
            let content = object["content"]?.stringValue,
            let created = object["created_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
            let updated = object["updated_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
        else { return nil }
        let namespace: String
        switch object["namespace"] {
        case nil: namespace = Namespace.default
        case .string(let name) where name != Namespace.default && Namespace.validate(name) == nil: namespace = name
        default: return nil
        }
        let id = FragmentKey.make(namespace, local)
        let strings: (String) -> [String] = { key in object[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let keys: (String) -> [String] = { key in strings(key).map { FragmentKey.make(namespace, $0) } }
        let input = FragmentInput(
            content: content, links: keys("links"), tags: strings("tags"),
            metadata: object["metadata"]?.objectValue ?? [:],
            embedding: object["embedding"]?.arrayValue?.compactMap(\.doubleValue),
            expiresAt: object["expires_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)))
        var reconstruction: Reconstruction?
        if let confidence = object["confidence"]?.doubleValue, let method = object["method"]?.stringValue {
            reconstruction = Reconstruction(
                confidence: confidence, sources: keys("sources"), method: method,
                at: object["reconstructed_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) ?? updated)
        }
        return FragmentRecord(id: id, version: version, input: input, createdAt: created, updatedAt: updated, reconstruction: reconstruction)
    }
}

/// How a reconstructed record came to be.
public struct Reconstruction: Sendable, Equatable {
    /// Between 0 and 1: how much of the lost fragment's sketch the rebuilt text recovers.
    public var confidence: Double
    /// Ids of the fragments the text was assembled from.
    public var sources: [String]
    /// A short name of the method, e.g. `context-extractive-v1`.
    public var method: String
    public var at: Timestamp

    public init(confidence: Double, sources: [String], method: String, at: Timestamp) {
        self.confidence = confidence
        self.sources = sources
        self.method = method
        self.at = at
    }
}

extension Timestamp {
    /// Parses the RFC 3339 form this store writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    public init?(rfc3339 text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[23] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for i in range {
                guard (48...57).contains(bytes[i]) else { return nil }
                value = value * 10 + Int64(bytes[i] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            let millis = number(20..<23)
        else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = (month + 9) % 12
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        self.init(milliseconds: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
    }
}
