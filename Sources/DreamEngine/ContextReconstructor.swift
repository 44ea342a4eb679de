import CarmaText
import FragmentCore

/// Rebuilds a lost fragment from the fragments still alive around it, guided by its sketch.
///
/// Sources, in order of trust: the fragments it linked to, those linking to it, those two links away,
/// and the most similar fragments by sketch vector and by characteristic terms. Their text is cut into
/// sentences, and sentences are picked greedily for how much of the lost fragment's weighted terms
/// they add (with diminishing returns for terms already covered), until the original length is
/// reached. Only `ok` fragments serve as sources, never other reconstructions.
///
/// Confidence is the mean of two measures against the sketch: the share of the sketch's term weight
/// the text contains, and the cosine between the text's sketch vector and the lost one's.
/// Deterministic for the same store contents; bounded by `maxSources` and `maxSentences`.
///
/// Words no surviving sentence says still come back: the sketch keeps the lost text's
/// characteristic words as written and in order, and those the chosen sentences lack are added as a
/// last line (`keptWords`). Confidence is measured before that line is added, so it does not count
/// words it did not earn from context. With no surviving sentence at all, those words alone are the
/// reconstruction, with a confidence of their share of the original's words.
public struct ContextReconstructor: Reconstructor {
    public let method = "context-extractive-v1"
    public let maxSources: Int
    public let maxSentences: Int

    public init(maxSources: Int = 24, maxSentences: Int = 2000) {
        self.maxSources = maxSources
        self.maxSentences = maxSentences
    }

    struct Candidate {
        var id: String
        var prior: Double
    }

    struct Sentence {
        var source: Int
        var position: Int
        var text: String
        var terms: Set<UInt32>
        var bytes: Int
    }

    public func reconstruct(_ target: RepairTarget, from store: any ContextSource) -> RebuiltFragment? {
        guard let sketch = store.sketch(of: target.id), !sketch.terms.isEmpty else { return nil }
        if let verbatim = Self.verbatim(sketch) { return verbatim }
        let weights = self.termWeights(sketch, namespace: target.namespace, store: store)
        let totalWeight = weights.values.reduce(0, +)
        guard totalWeight > 0 else { return nil }
        let (sources, sentences) = self.sentences(of: self.candidates(for: target, sketch: sketch, store: store), store: store)
        guard !sentences.isEmpty else { return Self.keptWordsOnly(sketch) }

        // Greedy selection by marginal weighted coverage per square root of length.
        var remaining = weights
        var chosen: [Int] = []
        var used = Set<Int>()
        var seenTexts = Set<String>()
        var bytes = 0
        let budget = max(sketch.bytes, 1)
        while bytes < budget {
            var best: (index: Int, gain: Double)?
            for (index, sentence) in sentences.enumerated() where !used.contains(index) {
                var covered = 0.0
                for term in sentence.terms { covered += remaining[term] ?? 0 }
                guard covered > 0 else { continue }
                let gain = covered * sources[sentence.source].prior / Double(sentence.bytes + 20).squareRoot()
                if best == nil || gain > best!.gain { best = (index, gain) }
            }
            guard let pick = best, pick.gain > 1e-6 else { break }
            used.insert(pick.index)
            let sentence = sentences[pick.index]
            // The same line often appears in several pages (shared options, notices): keep one.
            guard seenTexts.insert(sentence.text).inserted else { continue }
            if bytes > 0, bytes + sentence.bytes > budget + budget / 4 { break }
            chosen.append(pick.index)
            bytes += sentence.bytes + 1
            for term in sentence.terms where remaining[term] != nil { remaining[term]! *= 0.25 }
        }
        guard !chosen.isEmpty else { return nil }
        let (text, contributors) = Self.assemble(chosen, sentences: sentences, sources: sources)
        let coverage = Self.coverage(of: text, weights: weights, total: totalWeight)
        let rebuilt = Sketch.make(text, idf: { store.idf($0, in: target.namespace) })
        let cosine = max(0, Sketch.cosine(rebuilt.vector, sketch.vector))
        let confidence = min(1, max(0, 0.5 * coverage + 0.5 * cosine))
        return RebuiltFragment(content: Self.addingKeptWords(to: text, sketch: sketch), confidence: confidence, sources: contributors, method: self.method)
    }

    /// A sketch that holds the whole text (verified) rebuilds it word for word. The exact tier uses
    /// it first; this serves when the record cannot be rebuilt byte for byte (its row changed).
    static func verbatim(_ sketch: Sketch) -> RebuiltFragment? {
        guard let verbatim = sketch.verbatim, verbatim.verifies else { return nil }
        return RebuiltFragment(content: verbatim.content, confidence: 0.99, sources: [], method: "sketch-verbatim-v1")
    }

    /// `text` with a last line of the sketch's kept words that it does not contain, in their order.
    static func addingKeptWords(to text: String, sketch: Sketch) -> String {
        let present = Set(Tokenizer.hashes(text))
        let missing = sketch.surface.filter { !present.contains($0.hash) }.map(\.word)
        guard !missing.isEmpty else { return text }
        return text.isEmpty ? missing.joined(separator: " ") : text + "\n" + missing.joined(separator: " ")
    }

    /// The kept words alone, when nothing around the lost fragment survives to quote.
    static func keptWordsOnly(_ sketch: Sketch) -> RebuiltFragment? {
        guard !sketch.surface.isEmpty else { return nil }
        let share = Double(sketch.surface.count) / Double(max(sketch.words, sketch.surface.count))
        return RebuiltFragment(
            content: sketch.surface.map(\.word).joined(separator: " "), confidence: (0.5 * share * 1000).rounded() / 1000, sources: [],
            method: "sketch-words-v1")
    }

    /// The chosen sentences as one text, each source's in their own order, sources in order of
    /// trust; and the sources that contributed.
    static func assemble(_ chosen: [Int], sentences: [Sentence], sources: [(id: String, prior: Double)]) -> (text: String, sources: [String]) {
        let ordered = chosen.sorted { (sentences[$0].source, sentences[$0].position) < (sentences[$1].source, sentences[$1].position) }
        var contributors: [String] = []
        for index in ordered where !contributors.contains(sources[sentences[index].source].id) {
            contributors.append(sources[sentences[index].source].id)
        }
        return (ordered.map { sentences[$0].text }.joined(separator: "\n"), contributors)
    }

    /// The share of the sketch's term weight a text contains.
    static func coverage(of text: String, weights: [UInt32: Double], total: Double) -> Double {
        let present = Set(Tokenizer.hashes(text))
        return weights.filter { present.contains($0.key) }.values.reduce(0, +) / total
    }

    /// The sketch's terms weighted by count and inverse document frequency.
    func termWeights(_ sketch: Sketch, namespace: String, store: any ContextSource) -> [UInt32: Double] {
        var weights: [UInt32: Double] = [:]
        for term in sketch.terms { weights[term.hash] = Double(term.count) * max(store.idf(term.hash, in: namespace), 0.05) }
        return weights
    }

    /// The sentences of the `ok` candidates, in order of trust, within `maxSources` and `maxSentences`.
    func sentences(of candidates: [Candidate], store: any ContextSource) -> (sources: [(id: String, prior: Double)], sentences: [Sentence]) {
        var sources: [(id: String, prior: Double)] = []
        var sentences: [Sentence] = []
        for candidate in candidates {
            guard sources.count < self.maxSources, sentences.count < self.maxSentences else { break }
            guard let (content, status) = store.content(candidate.id), status == .ok else { continue }
            let index = sources.count
            sources.append((candidate.id, candidate.prior))
            for (position, text) in Tokenizer.sentences(content).enumerated() where sentences.count < self.maxSentences {
                let terms = Set(Tokenizer.hashes(text))
                guard !terms.isEmpty else { continue }
                sentences.append(Sentence(source: index, position: position, text: text, terms: terms, bytes: text.utf8.count))
            }
        }
        return (sources, sentences)
    }

    /// Candidate sources with a prior weight, deduplicated (highest prior wins), most trusted first.
    func candidates(for target: RepairTarget, sketch: Sketch, store: any ContextSource) -> [Candidate] {
        var priors: [String: Double] = [:]
        // Only the target's namespace: the searches below stay in it, and links cannot leave it;
        // this guard keeps it so whatever a store returns.
        func offer(_ id: String, _ prior: Double) {
            guard id != target.id, prior > 0, FragmentKey.belongs(id, to: target.namespace) else { return }
            priors[id] = max(priors[id] ?? 0, prior)
        }
        let links = target.row.links
        for id in links { offer(id, 1.0) }
        let backlinks = store.backlinks(target.id)
        for id in backlinks { offer(id, 0.9) }
        for row in store.rows(links + backlinks).compactMap({ $0 }) {
            for id in row.links.prefix(16) { offer(id, 0.5) }
        }
        let excluded: Set<String> = [target.id]
        for hit in store.similar(to: sketch.vector, k: 8, in: target.namespace, excluding: excluded) where hit.score > 0.2 {
            offer(hit.id, 0.8 * hit.score)
        }
        let related = store.related(to: sketch, k: 8, in: target.namespace, excluding: excluded)
        if let top = related.first?.score, top > 0 {
            for hit in related { offer(hit.id, 0.8 * hit.score / top) }
        }
        return priors.map { Candidate(id: $0.key, prior: $0.value) }
            .sorted { $0.prior != $1.prior ? $0.prior > $1.prior : $0.id < $1.id }
    }
}
