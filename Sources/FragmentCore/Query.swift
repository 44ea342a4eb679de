import CarmaJSON

/// How `POST /query` ranks.
public enum QueryMode: String, Sendable, CaseIterable {
    /// Every signal the request and the store allow, fused (the default).
    case hybrid
    /// BM25 over the fragments' whole content.
    case text
    /// Meaning alone: the built-in model's embedding of the text, or the client's vector.
    case vector
}

/// A ranking that contributed to a query's results.
public enum QuerySignal: String, Sendable {
    /// BM25 over the whole content.
    case text
    /// The built-in model's embedding of the query text against the fragments' embeddings.
    case meaning
    /// The client's vector against the vectors clients stored with their fragments.
    case clientVector = "client_vector"
}

/// How several rankings become one.
public enum QueryFusion: String, Sendable, CaseIterable {
    /// Each ranking's raw signal put on one absolute scale (`RelevanceScale`), then a weighted sum:
    /// scores mean the same in every query.
    case weighted
    /// Reciprocal rank fusion (k = 60): scores ignored, ranks summed.
    case rrf
}

public struct QueryRequest: Sendable {
    /// The namespace searched; nothing of another one is ranked.
    public var namespace: String = Namespace.default
    public var text: String?
    public var embedding: [Double]?
    public var mode: QueryMode
    public var k: Int
    /// Every one of these tags.
    public var tags: [String]
    /// Only these statuses; nil: any.
    public var statuses: Set<FragmentStatus>?
    /// Top-level metadata members that must be equal (strings, numbers, booleans, null).
    public var metadata: JSONObject
    public var fusion: QueryFusion
    /// Results scoring below this are left out.
    public var minScore: Double

    public init(
        text: String? = nil, embedding: [Double]? = nil, mode: QueryMode = .hybrid, k: Int = 10, tags: [String] = [],
        statuses: Set<FragmentStatus>? = nil, metadata: JSONObject = [:], fusion: QueryFusion = .weighted, minScore: Double = 0
    ) {
        self.minScore = minScore
        self.text = text
        self.embedding = embedding
        self.mode = mode
        self.k = k
        self.tags = tags
        self.statuses = statuses
        self.metadata = metadata
        self.fusion = fusion
    }
}

public struct QueryAnswer: Sendable {
    public var hits: [QueryHit]
    /// The rankings used, in order of weight.
    public var signals: [QuerySignal]
    /// Set when more than one ranking was fused.
    public var fusion: QueryFusion?
    /// Why a signal was missing or partial (no model; fragments still waiting for an embedding).
    public var notes: [String]
    /// The built-in model whose embeddings the `meaning` signal compared (its name), when it was used.
    public var meaningModel: String?
}

/// The built-in model's state, for `/readyz`, metrics and query responses.
public struct MeaningStatus: Sendable {
    /// The model's name; nil when carmad runs without one.
    public var model: String?
    public var dimensions: Int
    /// Fragments with an embedding of their current version.
    public var embedded: Int
    /// Fragments waiting for the embedder.
    public var backlog: Int
    /// Embeddings computed since start-up.
    public var computed: Int
    /// The model whose meanings are being replaced by this one's while the backlog lasts (the store
    /// was last run with another model); nil otherwise.
    public var replacing: String?

    package init(model: String?, dimensions: Int, embedded: Int, backlog: Int, computed: Int, replacing: String? = nil) {
        self.model = model
        self.dimensions = dimensions
        self.embedded = embedded
        self.backlog = backlog
        self.computed = computed
        self.replacing = replacing
    }
}

/// A query result.
public struct QueryHit: Sendable {
    public var id: String
    public var score: Double
    public var row: FragmentRow

    package init(id: String, score: Double, row: FragmentRow) {
        self.id = id
        self.score = score
        self.row = row
    }
}
