import CarmaEmbedding
import CarmaJSON
import CarmaText
import Foundation

/// How a query is ranked over a text index, the same for both backends: the signals the request and the
/// model allow, each ranking's pool, fusion and the date bonus.
public enum QueryRanking {
    /// A query ranked over a text index, before the rows are looked up.
    package struct Ranking {
        package var hits: [TextIndex.Hit]
        package var signals: [QuerySignal]
        package var fusion: QueryFusion?
        package var notes: [String]
        package var meaningModel: String?

        /// The answer, with the rows of the hits (nil rows are left out: deleted meanwhile).
        package func answer(rows: [FragmentRow?]) -> QueryAnswer {
            let hits = zip(self.hits, rows).compactMap { hit, row in row.map { QueryHit(id: hit.id, score: hit.score, row: $0) } }
            return QueryAnswer(hits: hits, signals: self.signals, fusion: self.fusion, notes: self.notes, meaningModel: self.meaningModel)
        }
    }

    /// Ranks a query over `index`: the signals the request and the model allow, each ranking's pool,
    /// then fusion. `status` answers the status filter; `beforeSearch` runs after the CPU work on the
    /// query and before the index is read (it waits for the index to catch up).
    package static func rank(
        _ request: QueryRequest, index text: ReadWriteLock<TextIndex>, encoder: SentenceEncoder?, embeddingDimension: Int?,
        status: @escaping @Sendable (String) -> FragmentStatus?, beforeSearch: () -> Void
    ) throws(StoreError) -> Ranking {
        if let embedding = request.embedding {
            if let dimension = embeddingDimension, embedding.count != dimension {
                throw .invalid(field: "embedding", "this store's embeddings have \(dimension) dimensions, not \(embedding.count)")
            }
            if !FragmentInput.fitsFloat(embedding) {
                throw .invalid(field: "embedding", "embedding values must be finite 32-bit floats")
            }
        }
        var signals: [QuerySignal] = []
        var notes: [String] = []
        switch request.mode {
        case .text:
            guard request.text != nil else { throw .invalid(field: "text", "mode text needs text") }
            signals = [.text]
        case .vector, .hybrid:
            if request.mode == .hybrid, request.text != nil { signals.append(.text) }
            if request.text != nil {
                if encoder != nil {
                    signals.append(.meaning)
                } else {
                    notes.append("no embedding model is loaded: the text was matched by its words only")
                }
            }
            if request.embedding != nil { signals.append(.clientVector) }
            guard !signals.isEmpty else {
                throw .invalid(field: "mode", "mode vector needs an embedding, or text and the built-in embedding model (not loaded)")
            }
        }
        let queryMeaning = signals.contains(.meaning) ? encoder.map { TextIndex.quantize($0.embedQuery(request.text!)) } : nil
        let counts = signals.contains(.text) ? FullText.counts(request.text ?? "").counts : [:]
        var filter = TextIndex.Filter(tags: Set(request.tags), metadata: TextIndex.Document.metadataTerms(request.metadata))
        if let statuses = request.statuses {
            filter.custom = { id in status(id).map(statuses.contains) ?? false }
        }
        let pool = max(request.k * 5, 100)
        beforeSearch()
        let (rankings, waiting): ([(QuerySignal, [TextIndex.Hit])], Int) = text.read { index in
            let rankings: [(QuerySignal, [TextIndex.Hit])] = signals.map { signal in
                switch signal {
                case .text: (signal, index.search(counts, k: pool, filter: filter))
                case .meaning: (signal, index.nearestMeaning(to: queryMeaning!, k: pool, filter: filter))
                case .clientVector: (signal, index.nearest(to: request.embedding!.map(Float.init), k: pool, filter: filter))
                }
            }
            return (rankings, index.count - index.meaningCount)
        }
        if signals.contains(.meaning), waiting > 0 {
            notes.append("\(waiting) fragments are still waiting for their embedding by \(encoder!.name) and were matched by words only")
        }
        var fused = Self.fuse(rankings, fusion: request.fusion, meaningScale: encoder?.card.meaningScale)
        if request.fusion == .weighted, let question = request.text, TimeExpressions.asksWhen(question) {
            fused = text.read { index in Self.favouringDates(fused, mentionsTime: index.mentionsTime) }
        }
        // Compared as answers show scores (4 decimals), so that a score read from one answer, sent
        // back as `min_score`, keeps that hit.
        fused = Array(fused.prefix { ($0.score * 10_000).rounded() / 10_000 >= request.minScore }.prefix(request.k))
        // Every stored meaning the index holds is this model's: the stores drop (embedded) or never
        // load (cluster) another model's, so one ranking never mixes two models' cosines.
        return Ranking(
            hits: fused, signals: signals, fusion: rankings.count > 1 ? request.fusion : nil, notes: notes,
            meaningModel: signals.contains(.meaning) ? encoder?.name : nil)
    }

    /// A question that asks when is answered by a fragment that says when: those gain
    /// `dateBonus` (measured on the agent-memory set's temporal questions: docs/retrieval.md).
    package static func favouringDates(_ hits: [TextIndex.Hit], mentionsTime: (String) -> Bool) -> [TextIndex.Hit] {
        hits.map { hit in
            mentionsTime(hit.id) ? TextIndex.Hit(id: hit.id, score: min(1, hit.score + Self.dateBonus), coverage: hit.coverage, strength: hit.strength) : hit
        }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    }

    package static let dateBonus = 0.1

    /// One ranking from several, scores in [0, 1], ties by id.
    ///
    /// `weighted`: each ranking's raw signal on the absolute scale of `RelevanceScale`. The
    /// text ranking's weight grows with how decisive it is: min(1, coverage · (1 + 2·gap)), where
    /// gap is how far its best score stands above the second, relative to the best, and coverage is
    /// the share of the query's term weight the best hit contains; the vector rankings share the
    /// rest. A query whose words single out one fragment (a phrase, rare keywords) is left to BM25;
    /// one whose words match many fragments about equally, or whose best match holds few of its
    /// words, is decided more by meaning. Chosen on the project's query sets (docs/retrieval.md,
    /// scripts/eval-retrieval.py).
    /// `meaningScale` places the built-in model's cosines (nil: `RelevanceScale`'s own, chosen for
    /// all-MiniLM-L6-v2); client vectors are always on `RelevanceScale`'s.
    package static func fuse(
        _ rankings: [(QuerySignal, [TextIndex.Hit])], fusion: QueryFusion, meaningScale: ModelCard.CosineScale? = nil
    ) -> [TextIndex.Hit] {
        var combined: [String: Double] = [:]
        let active = rankings.filter { !$0.1.isEmpty }
        switch fusion {
        case .weighted:
            let text = active.first { $0.0 == .text }?.1
            let vectors = active.count - (text == nil ? 0 : 1)
            var textWeight = 1.0 / Double(max(active.count, 1))
            if let text, vectors > 0 {
                let gap = text.count < 2 || text[0].score <= 0 ? 1 : (text[0].score - text[1].score) / text[0].score
                textWeight = min(1, (text[0].coverage ?? 1) * (1.0 + 2 * gap))
            } else if text != nil {
                textWeight = 1
            }
            for (signal, hits) in active {
                let weight = signal == .text ? textWeight : (text == nil ? 1.0 / Double(vectors) : (1 - textWeight) / Double(vectors))
                for hit in hits {
                    let absolute =
                        switch signal {
                        case .text: RelevanceScale.text(strength: hit.strength ?? 0)
                        case .meaning: RelevanceScale.meaning(cosine: hit.score, scale: meaningScale)
                        case .clientVector: RelevanceScale.meaning(cosine: hit.score)
                        }
                    combined[hit.id, default: 0] += weight * absolute
                }
            }
        case .rrf:
            for (_, hits) in active {
                for (rank, hit) in hits.enumerated() {
                    combined[hit.id, default: 0] += 61.0 / Double(60 + rank + 1) / Double(active.count)
                }
            }
        }
        return combined.map { TextIndex.Hit(id: $0.key, score: min(1, max(0, $0.value))) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    }

}

/// The absolute scale of query scores: each signal's raw value mapped to [0, 1] the same way in every
/// query, so that a score means about the same relevance whatever was asked, and a client can set a
/// cut-off (`min_score`). Both maps are strictly increasing, so each signal alone ranks as before
/// (no ties made where the raw values differ).
///
/// - Meaning: a logistic curve of the model's cosine, 0.5 at `meaningMidpoint`, rising by
///   `meaningSteepness`: unrelated texts (cosine about 0.1) score near 0.03, a paraphrase (0.8)
///   near 0.97.
/// - Words: BM25 divided by the query's term weight (`TextIndex.Hit.strength`), saturated:
///   1 − e^(−strength), so a fragment holding every query word once scores about 0.63 and one
///   holding them repeatedly up to 0.89. (A steeper curve, 1 − e^(−2·strength), squeezed the best
///   text hits together and cost 3.5 points of hit@1 on the man pages' known-item queries.)
///
/// The constants were chosen on the project's short-note evaluation (docs/retrieval.md, scripts/eval-memory.py):
/// see the score separation reported there.
public enum RelevanceScale {
    public static let meaningMidpoint = 0.45
    public static let meaningSteepness = 10.0

    public static func meaning(cosine: Double) -> Double {
        1 / (1 + exp(-(cosine - meaningMidpoint) * meaningSteepness))
    }

    /// The cosine of a model whose card places it elsewhere (`ModelCard.meaningScale`).
    public static func meaning(cosine: Double, scale: ModelCard.CosineScale?) -> Double {
        guard let scale else { return Self.meaning(cosine: cosine) }
        return 1 / (1 + exp(-(cosine - scale.midpoint) * scale.steepness))
    }

    public static func text(strength: Double) -> Double {
        1 - exp(-max(0, strength))
    }
}
