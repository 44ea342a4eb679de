import CarmaEmbedding
import FragmentCore
import CarmaText
import Testing

@testable import FragmentStore

@Suite("query fusion")
struct FusionTests {
    private func hits(_ pairs: [(String, Double)]) -> [TextIndex.Hit] { pairs.map { TextIndex.Hit(id: $0.0, score: $0.1) } }
    /// BM25 hits whose strength is their score over a query weight of 10.
    private func textHits(_ pairs: [(String, Double)], coverage: Double = 1) -> [TextIndex.Hit] {
        pairs.map { TextIndex.Hit(id: $0.0, score: $0.1, coverage: coverage, strength: $0.1 / 10) }
    }

    @Test("words that single out one fragment decide; words that match many, holding part of the query, leave it to meaning")
    func adaptiveWeight() {
        let meaning = self.hits([("c", 0.9), ("b", 0.5), ("a", 0.1), ("d", 0)])
        let decisive = QueryRanking.fuse([(.text, self.textHits([("a", 10), ("c", 5), ("b", 4.5), ("d", 1)])), (.meaning, meaning)], fusion: .weighted)
        #expect(decisive.first?.id == "a")
        let flat = QueryRanking.fuse([(.text, self.textHits([("a", 10), ("c", 9.95), ("b", 9.5), ("d", 9)], coverage: 0.5)), (.meaning, meaning)], fusion: .weighted)
        #expect(flat.first?.id == "c")
        #expect(flat.allSatisfy { (0...1).contains($0.score) })
        // One signal alone keeps its order; ties go by id.
        #expect(QueryRanking.fuse([(.meaning, self.hits([("z", 0.5), ("y", 0.5)]))], fusion: .weighted).map(\.id) == ["y", "z"])
    }

    @Test("a model's card places its cosines on the scale: bge-small's 0.6 is MiniLM's middling 0.45; client vectors keep the default")
    func meaningScale() {
        let bge = ModelCard.CosineScale(midpoint: 0.6, steepness: 20)
        #expect(abs(RelevanceScale.meaning(cosine: 0.6, scale: bge) - 0.5) < 1e-9)
        #expect(RelevanceScale.meaning(cosine: 0.6, scale: nil) == RelevanceScale.meaning(cosine: 0.6))
        let hits = self.hits([("a", 0.6)])
        #expect(abs(QueryRanking.fuse([(.meaning, hits)], fusion: .weighted, meaningScale: bge)[0].score - 0.5) < 1e-9)
        #expect(QueryRanking.fuse([(.clientVector, hits)], fusion: .weighted, meaningScale: bge)[0].score > 0.8)
    }

    @Test("scores are absolute: the same signals score the same in any query, and weak matches score low")
    func absoluteScores() {
        // The same best match, once among strong rivals and once alone: the same score.
        let crowded = QueryRanking.fuse([(.meaning, self.hits([("a", 0.7), ("b", 0.69), ("c", 0.68)]))], fusion: .weighted)
        let alone = QueryRanking.fuse([(.meaning, self.hits([("a", 0.7), ("z", 0.1)]))], fusion: .weighted)
        #expect(crowded.first?.score == alone.first?.score)
        // A query that matches nothing well no longer gets a top score near 1.
        let weak = QueryRanking.fuse([(.meaning, self.hits([("x", 0.2), ("y", 0.18)]))], fusion: .weighted)
        #expect((weak.first?.score ?? 1) < 0.1)
        #expect(RelevanceScale.meaning(cosine: 0.9) > 0.95 && RelevanceScale.meaning(cosine: 0) < 0.02)
        // Below what unrelated texts score, order is still kept: no ties where cosines differ.
        #expect(RelevanceScale.meaning(cosine: 0.12) > RelevanceScale.meaning(cosine: 0.11))
        #expect(RelevanceScale.text(strength: 1) > 0.6 && RelevanceScale.text(strength: 0.05) < 0.1)
    }

    @Test("reciprocal rank fusion ignores scores")
    func reciprocalRank() {
        let fused = QueryRanking.fuse(
            [(.text, self.hits([("a", 100), ("b", 1)])), (.meaning, self.hits([("b", 0.9), ("c", 0.8)]))], fusion: .rrf)
        #expect(fused.first?.id == "b")
        #expect(Set(fused.map(\.id)) == ["a", "b", "c"])
    }
}
