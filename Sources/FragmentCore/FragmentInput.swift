import CarmaJSON

/// What a client supplies when it stores a fragment.
public struct FragmentInput: Sendable, Equatable {
    public var content: String
    public var links: [String]
    public var tags: [String]
    public var metadata: JSONObject
    public var embedding: [Double]?
    /// When the fragment expires; nil for never. The service turns a `ttl` into this instant.
    public var expiresAt: Timestamp?

    public init(
        content: String, links: [String] = [], tags: [String] = [], metadata: JSONObject = [:], embedding: [Double]? = nil,
        expiresAt: Timestamp? = nil
    ) {
        self.content = content
        self.links = links
        self.tags = tags
        self.metadata = metadata
        self.embedding = embedding
        self.expiresAt = expiresAt
    }
}

/// Bounds on what one fragment may hold. Defaults are documented at `init`.
public struct FragmentLimits: Sendable {
    public var maxContentBytes: Int
    public var maxLinks: Int
    public var maxTags: Int
    public var maxTagLength: Int
    public var maxMetadataBytes: Int
    public var maxMetadataDepth: Int
    public var maxEmbeddingDimension: Int

    /// - Parameters:
    ///   - maxContentBytes: UTF-8 bytes of `content`; default 512 KiB.
    ///   - maxLinks: Default 256.
    ///   - maxTags: Default 64.
    ///   - maxTagLength: Default 64 characters.
    ///   - maxMetadataBytes: Serialized size of `metadata`; default 16 KiB.
    ///   - maxMetadataDepth: Nesting of `metadata` (the object itself is 1); default 8.
    ///   - maxEmbeddingDimension: Default 4096.
    public init(
        maxContentBytes: Int = 512 << 10,
        maxLinks: Int = 256,
        maxTags: Int = 64,
        maxTagLength: Int = 64,
        maxMetadataBytes: Int = 16 << 10,
        maxMetadataDepth: Int = 8,
        maxEmbeddingDimension: Int = 4096
    ) {
        self.maxContentBytes = maxContentBytes
        self.maxLinks = maxLinks
        self.maxTags = maxTags
        self.maxTagLength = maxTagLength
        self.maxMetadataBytes = maxMetadataBytes
        self.maxMetadataDepth = maxMetadataDepth
        self.maxEmbeddingDimension = maxEmbeddingDimension
    }
}

extension FragmentInput {
    /// Checks the input against the limits; the error names the field and the rule.
    /// - Parameter now: An expiry must lie after it (a write that nobody could read is a mistake).
    public func validate(_ limits: FragmentLimits, now: Timestamp = .now) throws(StoreError) {
        if let expiresAt = self.expiresAt, expiresAt <= now {
            throw .invalid(field: "expires_at", "the expiry \(expiresAt.rfc3339) is not in the future")
        }
        if self.content.utf8.count > limits.maxContentBytes {
            throw .invalid(field: "content", "content may be at most \(limits.maxContentBytes) bytes of UTF-8")
        }
        if self.links.count > limits.maxLinks {
            throw .invalid(field: "links", "at most \(limits.maxLinks) links")
        }
        for link in self.links {
            if let reason = FragmentKey.validate(link) {
                throw .invalid(field: "links", "link '\(link.prefix(64))': \(reason)")
            }
        }
        if self.tags.count > limits.maxTags {
            throw .invalid(field: "tags", "at most \(limits.maxTags) tags")
        }
        for tag in self.tags {
            if tag.isEmpty || tag.count > limits.maxTagLength {
                throw .invalid(field: "tags", "a tag has 1 to \(limits.maxTagLength) characters")
            }
            if tag.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw .invalid(field: "tags", "a tag must not contain control characters")
            }
        }
        if JSONValue.object(self.metadata).bytes.count > limits.maxMetadataBytes {
            throw .invalid(field: "metadata", "metadata may be at most \(limits.maxMetadataBytes) bytes serialized")
        }
        if JSONValue.object(self.metadata).depth > limits.maxMetadataDepth {
            throw .invalid(field: "metadata", "metadata may nest at most \(limits.maxMetadataDepth) levels")
        }
        if let embedding = self.embedding {
            if embedding.isEmpty || embedding.count > limits.maxEmbeddingDimension {
                throw .invalid(field: "embedding", "an embedding has 1 to \(limits.maxEmbeddingDimension) numbers")
            }
            if !Self.fitsFloat(embedding) {
                throw .invalid(field: "embedding", "embedding values must be finite 32-bit floats")
            }
        }
    }

    /// Whether every value survives conversion to a 32-bit float (embeddings are kept as Float).
    public static func fitsFloat(_ values: [Double]) -> Bool {
        values.allSatisfy { Float($0).isFinite }
    }
}
