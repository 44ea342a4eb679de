import FragmentCore
import CarmaEmbedding
import CarmaJSON
import CarmaText
import Foundation

extension FragmentStore {
    /// Ranks fragments for a query. Waits (up to a second) until the text index holds every write
    /// acknowledged before the call, so that a client finds what it just stored.
    public func query(_ request: QueryRequest) throws(StoreError) -> QueryAnswer {
        let ranking = try QueryRanking.rank(
            request, index: self.text.namespace(request.namespace), encoder: self.configuration.encoder, embeddingDimension: self.embeddingDimension.withLock { $0 },
            status: { [self] id in self.state.withLock { $0[id]?.row.status } },
            beforeSearch: { [self] in self.feed.waitForSubmitted(timeout: 1) })
        let rows = self.rows(ranking.hits.map(\.id))
        return ranking.answer(rows: rows)
    }

    // MARK: Meaning for context and reconstruction


    /// The built-in model, if carmad runs with one.
    public var encoder: SentenceEncoder? { self.configuration.encoder }

    /// The kept meaning of a fragment (unit length), also while its text is lost.
    public func meaning(of id: String) -> [Float]? {
        self.text.meaning(of: id)
    }

    /// Fragments whose meanings are closest to `vector`, excluding `excluded`.
    public func nearestByMeaning(to vector: [Float], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).nearestByMeaning(to: vector, k: k, excluding: excluded)
    }

    /// The model's embedding of a text; nil without a model.
    public func embed(_ text: String) -> [Float]? {
        self.configuration.encoder?.embed(text)
    }

    public func embed(batch texts: [String]) -> [[Float]]? {
        self.configuration.encoder?.embed(batch: texts)
    }

    public var meaningStatus: MeaningStatus {
        let (dimensions, embedded) = (self.configuration.encoder?.dimensions ?? 0, self.text.meaningCount)
        let backlog = self.meanings.backlog
        return MeaningStatus(
            model: self.configuration.encoder?.name, dimensions: dimensions, embedded: embedded, backlog: backlog,
            computed: self.meanings.embedded.load(ordering: .relaxed), replacing: backlog > 0 ? self.meanings.replacing.withLock { $0 } : nil)
    }
}
