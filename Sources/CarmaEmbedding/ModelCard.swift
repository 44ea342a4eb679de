import CarmaJSON

/// What a model directory's optional `carma.json` adds to `config.json`: the model's name, how its
/// token vectors become one sentence vector, and the text put before a query. Without the file, the
/// sentence-transformers defaults of all-MiniLM-L6-v2: mean pooling, no prefix, the name taken from
/// the directory. scripts/convert-model.py writes one for bge-small-en-v1.5 (CLS pooling, BGE's
/// retrieval instruction before queries).
public struct ModelCard: Sendable, Equatable {
    public enum Pooling: String, Sendable {
        /// The mean of every token's vector (sentence-transformers' default).
        case mean
        /// The first token's ([CLS]) vector, as BGE was trained.
        case cls
    }

    /// The model's name; nil: named after its directory.
    public var name: String?
    public var pooling: Pooling
    /// Put before a query's text, never before a stored fragment's (asymmetric retrieval models).
    public var queryPrefix: String
    /// Where this model's cosines sit on the query scores' absolute scale (`RelevanceScale`); nil:
    /// the scale chosen for all-MiniLM-L6-v2. Models differ: bge-small's cosines of unrelated texts
    /// are about 0.6, MiniLM's about 0.1.
    public var meaningScale: CosineScale?

    /// A logistic curve of the cosine: 0.5 at `midpoint`, rising by `steepness`.
    public struct CosineScale: Sendable, Equatable {
        public var midpoint: Double
        public var steepness: Double

        public init(midpoint: Double, steepness: Double) {
            self.midpoint = midpoint
            self.steepness = steepness
        }
    }

    public init(name: String? = nil, pooling: Pooling = .mean, queryPrefix: String = "", meaningScale: CosineScale? = nil) {
        self.name = name
        self.pooling = pooling
        self.queryPrefix = queryPrefix
        self.meaningScale = meaningScale
    }

    /// Reads `carma.json` from `directory`; the defaults when there is none.
    public init(directory: String) throws(EmbeddingModelError) {
        let path = directory + "/carma.json"
        let text: String
        do {
            text = try ModelFile.text(path, maxBytes: 1 << 20)
        } catch {
            if case .missingFile = error {
                self.init()
                return
            }
            throw error
        }
        guard let object = (try? JSONParser.parse(text, maxDepth: 8))?.objectValue else { throw .malformed(path, "not a JSON object") }
        var card = ModelCard()
        if let raw = object["name"] {
            guard let name = raw.stringValue, !name.isEmpty, name.utf8.count <= 128, !name.contains("/") else {
                throw .malformed(path, "name is not a string of 1 to 128 bytes without '/'")
            }
            card.name = name
        }
        if let raw = object["pooling"] {
            guard let pooling = raw.stringValue.flatMap(Pooling.init(rawValue:)) else { throw .malformed(path, "pooling is not mean or cls") }
            card.pooling = pooling
        }
        if let raw = object["query_prefix"] {
            guard let prefix = raw.stringValue, prefix.utf8.count <= 1024 else { throw .malformed(path, "query_prefix is not a string of at most 1024 bytes") }
            card.queryPrefix = prefix
        }
        if let raw = object["meaning_scale"] {
            guard let midpoint = raw["midpoint"]?.doubleValue, let steepness = raw["steepness"]?.doubleValue, (-1...1).contains(midpoint),
                steepness > 0, steepness <= 1000
            else { throw .malformed(path, "meaning_scale is not {midpoint: -1...1, steepness: 0...1000}") }
            card.meaningScale = CosineScale(midpoint: midpoint, steepness: steepness)
        }
        self = card
    }

    /// One vector from the `tokens` × `dimensions` row-major output of the last layer (not yet
    /// normalised).
    func pool(_ x: [Float], tokens: Int, dimensions: Int) -> [Float] {
        switch self.pooling {
        case .cls:
            return Array(x[0..<dimensions])
        case .mean:
            var pooled = [Float](repeating: 0, count: dimensions)
            for row in 0..<tokens {
                for d in 0..<dimensions { pooled[d] += x[row * dimensions + d] }
            }
            return pooled
        }
    }
}
