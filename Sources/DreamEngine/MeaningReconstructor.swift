import CarmaText
import FragmentCore

/// Rebuilds a lost fragment aimed at its meaning: the sentences of the surviving fragments around it
/// (linked, linking, nearest in meaning and by sketch) are chosen and ordered so that their
/// combination's embedding comes closest to the lost fragment's kept embedding, with the sketch's
/// terms as a second aim. Without a kept embedding (no model, or lost before it was embedded) it
/// falls back to the sketch-guided `ContextReconstructor`.
///
/// Cost bound: only the `maxEmbedded` sentences that cover the sketch best are embedded (each cut to
/// `sentenceTokens` tokens by the model), plus the final text once.
///
/// Confidence estimates the rebuilt text's token F1 against the lost original, from the final
/// text's cosine to the kept embedding and its coverage of the sketch's term weight; the formula's
/// constants were fitted on a held-out set (scripts/calibrate-confidence.py, docs/benchmarks.md).
public struct MeaningReconstructor: Reconstructor {
    public let method = "context-meaning-v1"
    public let fallback: ContextReconstructor
    public let maxEmbedded: Int

    public init(fallback: ContextReconstructor = ContextReconstructor(), maxEmbedded: Int = 40) {
        self.fallback = fallback
        self.maxEmbedded = maxEmbedded
    }

    /// Calibrated confidence (see scripts/calibrate-confidence.py).
    static func confidence(cosine: Double, coverage: Double) -> Double {
        min(1, max(0, Calibration.intercept + Calibration.cosine * cosine + Calibration.coverage * coverage))
    }

    /// Fitted by scripts/calibrate-confidence.py on bench/reconstruction.sh's run of 2026-11-30 (74
    /// reconstructions fitted, 69 held out: mean |confidence − token F1| 0.241 before, 0.073 after).
    enum Calibration {
        static let intercept = -0.3593
        static let cosine = 0.5669
        static let coverage = 0.5669
    }

    public func reconstruct(_ target: RepairTarget, from store: any ContextSource) -> RebuiltFragment? {
        guard let goal = store.meaning(of: target.id), let sketch = store.sketch(of: target.id), !sketch.terms.isEmpty else {
            return self.fallback.reconstruct(target, from: store)
        }
        if let verbatim = ContextReconstructor.verbatim(sketch) { return verbatim }
        let weights = self.fallback.termWeights(sketch, namespace: target.namespace, store: store)
        let totalWeight = weights.values.reduce(0, +)
        guard totalWeight > 0 else { return self.fallback.reconstruct(target, from: store) }
        var candidates = self.fallback.candidates(for: target, sketch: sketch, store: store)
        var known = Set(candidates.map(\.id))
        for hit in store.nearestByMeaning(to: goal, k: 8, in: target.namespace, excluding: [target.id])
            where hit.score > 0.3 && FragmentKey.belongs(hit.id, to: target.namespace) && known.insert(hit.id).inserted {
            candidates.append(ContextReconstructor.Candidate(id: hit.id, prior: 0.9 * hit.score))
        }
        candidates.sort { $0.prior != $1.prior ? $0.prior > $1.prior : $0.id < $1.id }
        let (sources, sentences) = self.fallback.sentences(of: candidates, store: store)
        guard !sentences.isEmpty else { return ContextReconstructor.keptWordsOnly(sketch) }

        // The sentences worth embedding: best term coverage per length, weighted by source trust.
        let ranked = sentences.indices.map { index -> (Int, Double) in
            let sentence = sentences[index]
            let covered = sentence.terms.reduce(0) { $0 + (weights[$1] ?? 0) }
            return (index, (covered + 0.01) * sources[sentence.source].prior / Double(sentence.bytes + 20).squareRoot())
        }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var chosenForEmbedding: [Int] = []
        var seen = Set<String>()
        for (index, _) in ranked where chosenForEmbedding.count < self.maxEmbedded {
            if seen.insert(sentences[index].text).inserted { chosenForEmbedding.append(index) }
        }
        // One call for all of them: the encoder packs the short sentences into shared products.
        guard let vectors = store.embed(batch: chosenForEmbedding.map { sentences[$0].text }), vectors.count == chosenForEmbedding.count,
            !vectors.isEmpty
        else { return self.fallback.reconstruct(target, from: store) }
        let pool = zip(chosenForEmbedding, vectors).map { index, vector in
            (index: index, vector: vector, tokens: Float(max(1, sentences[index].terms.count)))
        }

        // Greedy: add the sentence that most raises 0.7·cosine(sum of chosen, goal) + 0.3·coverage.
        let budget = max(sketch.bytes, 1)
        var sum = [Float](repeating: 0, count: goal.count)
        var covered = Set<UInt32>()
        var chosen: [Int] = []
        var bytes = 0
        var current = 0.0
        var available = Array(pool.indices)
        while !available.isEmpty, bytes < budget {
            var best: (slot: Int, score: Double)?
            for slot in available {
                let entry = pool[slot]
                let cosine = Self.cosine(zip(sum, entry.vector).map { $0 + $1 * entry.tokens }, goal)
                let coverage = covered.union(sentences[entry.index].terms).reduce(0) { $0 + (weights[$1] ?? 0) } / totalWeight
                let score = 0.7 * cosine + 0.3 * coverage
                if best == nil || score > best!.score { best = (slot, score) }
            }
            guard let pick = best, chosen.isEmpty || pick.score > current + 1e-4 else { break }
            let entry = pool[pick.slot]
            let sentence = sentences[entry.index]
            if bytes > 0, bytes + sentence.bytes > budget + budget / 4 { break }
            available.removeAll { $0 == pick.slot }
            chosen.append(entry.index)
            for d in sum.indices { sum[d] += entry.vector[d] * entry.tokens }
            covered.formUnion(sentence.terms)
            bytes += sentence.bytes + 1
            current = pick.score
        }
        guard !chosen.isEmpty else { return nil }
        let (text, contributors) = ContextReconstructor.assemble(chosen, sentences: sentences, sources: sources)
        let coverage = ContextReconstructor.coverage(of: text, weights: weights, total: totalWeight)
        let cosine = store.embed(text).map { Self.cosine($0, goal) } ?? 0
        return RebuiltFragment(
            content: ContextReconstructor.addingKeptWords(to: text, sketch: sketch), confidence: Self.confidence(cosine: max(0, cosine), coverage: coverage),
            sources: contributors, method: self.method)
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
    }
}
