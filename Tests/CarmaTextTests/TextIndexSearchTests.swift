import Foundation
import Testing

@testable import CarmaText

/// BM25 with MaxScore pruning (`TextIndex.search`) against the formula summed over every posting:
/// the same fragments with the same scores, whatever the query mixes of rare and common words, the
/// filter, k, removals and the compaction they set off.
@Suite("BM25 search against the exhaustive sum")
struct TextIndexSearchTests {
    /// A corpus whose words follow a Zipf-like law (word w about 1/(w+1) as often), so that a few
    /// words are in nearly every fragment and most in a handful: what man pages and notes look like.
    struct Corpus {
        var terms: [String: [UInt32: Int]] = [:]
        var rare: Set<String> = []
        var index = TextIndex()
        var random = SplitMix64(seed: 26)

        mutating func put(_ id: String) {
            var counts: [UInt32: Int] = [:]
            for _ in 0..<Int.random(in: 3...60, using: &self.random) {
                counts[self.word(), default: 0] += 1
            }
            let tags = [Self.third(id) ? "third" : nil, Int.random(in: 0..<50, using: &self.random) == 0 ? "rare" : nil].compactMap { $0 }
            self.terms[id] = counts
            if tags.contains("rare") { self.rare.insert(id) } else { self.rare.remove(id) }
            self.index.upsert(TextIndex.Document(
                id: id, version: 1, sketch: Sketch.make("x", idf: { _ in 1 }), terms: counts, words: counts.values.reduce(0, +), tags: tags,
                links: [], metadata: [], clientEmbedding: nil))
        }

        static func third(_ id: String) -> Bool { Int(id.dropFirst())! % 3 == 0 }

        mutating func remove(_ id: String) {
            self.terms[id] = nil
            self.rare.remove(id)
            self.index.remove(id)
        }

        mutating func word() -> UInt32 {
            // Inverse of the Zipf CDF over 5,000 words, roughly.
            let u = Double.random(in: 0..<1, using: &self.random)
            return UInt32(min(4_999, Int(exp(u * log(5_000.0))) - 1))
        }

        /// Every accepted fragment's score for `query`, by the formula, best first, with coverage and strength.
        func exhaustive(_ query: [UInt32: Int], accept: (String) -> Bool) -> [TextIndex.Hit] {
            let average = max(1, Double(self.terms.values.reduce(0) { $0 + $1.values.reduce(0, +) }) / Double(self.terms.count))
            let total = query.reduce(0.0) { $0 + self.index.idf($1.key) * Double($1.value) }
            var hits: [TextIndex.Hit] = []
            for (id, counts) in self.terms where accept(id) {
                var score = 0.0, matched = 0.0
                let length = Double(counts.values.reduce(0, +))
                for (term, queryCount) in query {
                    guard let tf = counts[term].map(Double.init) else { continue }
                    let weight = self.index.idf(term) * Double(queryCount)
                    score += weight * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))
                    matched += weight
                }
                if score > 0 { hits.append(TextIndex.Hit(id: id, score: score, coverage: min(1, matched / total), strength: score / total)) }
            }
            return hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        }
    }

    @Test("pruned and exhaustive rankings agree on rare, common and mixed queries, with and without filters")
    func agreesWithExhaustive() {
        var corpus = Corpus()
        for n in 0..<4_000 { corpus.put("f\(n)") }
        // Removed fragments stay in the postings until a compaction; rewritten ones move to new slots.
        for n in stride(from: 0, to: 4_000, by: 7) { corpus.remove("f\(n)") }
        for n in stride(from: 1, to: 4_000, by: 11) { corpus.put("f\(n)") }
        self.compare(&corpus, queries: 150)
        // Enough removals for the index to compact its slots and postings.
        for n in stride(from: 2, to: 4_000, by: 3) { corpus.remove("f\(n)") }
        self.compare(&corpus, queries: 150)
    }

    private func compare(_ corpus: inout Corpus, queries: Int) {
        let rare = corpus.rare
        let filters: [(TextIndex.Filter, (String) -> Bool)] = [
            (.none, { _ in true }),
            (TextIndex.Filter(tags: ["third"]), Corpus.third),
            (TextIndex.Filter(tags: ["rare"]), { rare.contains($0) }),
            (TextIndex.Filter(excluded: ["f1", "f12", "f23"]), { !["f1", "f12", "f23"].contains($0) }),
        ]
        for q in 0..<queries {
            var query: [UInt32: Int] = [:]
            for _ in 0..<Int.random(in: 1...14, using: &corpus.random) {
                // Half the queries lean on common words, half on any.
                let word = q % 2 == 0 ? UInt32(Int.random(in: 0..<40, using: &corpus.random)) : corpus.word()
                query[word, default: 0] += 1
            }
            let k = [1, 10, 100][q % 3]
            for (filter, accept) in filters {
                let got = corpus.index.search(query, k: k, filter: filter)
                let all = corpus.exhaustive(query, accept: accept)
                let want = all.prefix(k)
                let byID = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
                #expect(got.count == want.count, "query \(q): \(got.count) hits, \(want.count) expected")
                for (a, b) in zip(got, want) {
                    // Sums taken in another order may differ in the last bits: the same score at
                    // each rank, and each hit's own score, coverage and strength the formula's; a
                    // fragment in another place only where scores tie.
                    #expect(abs(a.score - b.score) < 1e-9, "query \(q): \(a.id) \(a.score) against \(b.id) \(b.score)")
                    let reference = byID[a.id]
                    #expect(reference.map { abs($0.score - a.score) < 1e-9 && abs($0.coverage! - a.coverage!) < 1e-9 && abs($0.strength! - a.strength!) < 1e-9 } == true, "query \(q): \(a.id)")
                }
            }
        }
    }
}

/// A vector ranking filtered by a tag scores only the fragments carrying it (when few do): the same
/// answer as scoring every fragment and keeping those the filter passes.
@Suite("vector rankings filtered by a tag")
struct TaggedScanTests {
    @Test("meanings and client vectors, for tags on few, some and most fragments, through removals and a compaction")
    func taggedEqualsFilteredScan() {
        var random = SplitMix64(seed: 27)
        var index = TextIndex(meaningDimensions: 16)
        func vector() -> [Float] { (0..<16).map { _ in Float.random(in: -1...1, using: &random) } }
        // Which fragments carry each tag, by number.
        let carriers: [String: (Int) -> Bool] = ["rare": { $0 % 50 == 0 }, "some": { $0 % 5 == 0 }, "most": { $0 % 10 != 0 }]
        func put(_ n: Int, version: UInt64) {
            let tags = carriers.keys.sorted().filter { carriers[$0]!(n) }
            index.upsert(TextIndex.Document(
                id: "f\(n)", version: version, sketch: Sketch.make("x", idf: { _ in 1 }), terms: [1: 1], words: 1, tags: tags, links: [],
                metadata: [], clientEmbedding: vector()))
            index.setMeaning("f\(n)", version: version, TextIndex.quantize(vector()))
        }
        for n in 0..<3_000 { put(n, version: 1) }
        func check() {
            for _ in 0..<20 {
                let query = vector()
                let meaning = TextIndex.quantize(query)
                let norm = Double(meaning.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
                let clientNorm = query.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                let everyMeaning = index.exactMeaning(to: meaning, queryNorm: norm, k: index.count)
                let everyClient = index.exactClient(to: query, norm: clientNorm, k: index.count)
                for tag in ["rare", "some", "most"] {
                    let filter = TextIndex.Filter(tags: [tag])
                    let passes = { (hit: TextIndex.Hit) in carriers[tag]!(Int(hit.id.dropFirst())!) }
                    #expect(index.exactMeaning(to: meaning, queryNorm: norm, k: 10, filter: filter) == Array(everyMeaning.filter(passes).prefix(10)), "\(tag)")
                    #expect(index.exactClient(to: query, norm: clientNorm, k: 10, filter: filter) == Array(everyClient.filter(passes).prefix(10)), "\(tag)")
                }
            }
        }
        #expect(index.taggedSlots(TextIndex.Filter(tags: ["rare"]))?.count == 60)
        #expect(index.taggedSlots(TextIndex.Filter(tags: ["most"])) == nil, "a tag most carry is scanned whole")
        check()
        // Rewritten fragments move to new slots; removed ones stay in the lists until a compaction.
        for n in stride(from: 0, to: 3_000, by: 3) { put(n, version: 2) }
        for n in stride(from: 1, to: 3_000, by: 4) { index.remove("f\(n)") }
        check()
        for n in stride(from: 2, to: 3_000, by: 2) { index.remove("f\(n)") }
        check()
    }
}
