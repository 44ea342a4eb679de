#if canImport(Glibc)
import Glibc
#endif

/// The in-memory retrieval index over every fragment's sketch: an inverted index from term hashes to
/// fragments (for ranked text queries, BM25 over the sketch's term counts), the sketch vectors (for
/// "most similar"), client embeddings (for vector queries), and the reverse of the link graph.
///
/// Documents live in parallel arrays indexed by a slot number, so that the scoring loops read flat
/// numbers (word counts, liveness, vector bytes) and never copy a document.
///
/// Not thread-safe: the store keeps it behind a lock.
public struct TextIndex: Sendable {
    struct Posting: Sendable {
        var document: UInt32
        var count: UInt8
    }

    private var ids: [String] = []
    private var sketches: [Sketch] = []
    private var tags: [[String]] = []
    private var links: [[String]] = []
    private var embeddings: [[Float]?] = []
    private var words: [Int32] = []
    private var alive: [Bool] = []
    /// Every document's sketch vector, `Sketch.dimensions` bytes each, one after the other.
    private var vectors: [Int8] = []
    /// The Euclidean norm of each document's sketch vector (0 for an empty one).
    private var norms: [Double] = []

    private var slots: [String: UInt32] = [:]
    private var postings: [UInt32: [Posting]] = [:]
    private var documentFrequency: [UInt32: Int32] = [:]
    private var backlinks: [String: Set<String>] = [:]
    private var dead = 0
    private var totalWords = 0

    public init() {}

    /// Fragments indexed.
    public var count: Int { self.slots.count }
    /// Distinct terms indexed.
    public var termCount: Int { self.documentFrequency.count }

    /// BM25's inverse document frequency of a term hash, given the fragments indexed now.
    public func idf(_ hash: UInt32) -> Double {
        let n = Double(self.count)
        let df = Double(self.documentFrequency[hash] ?? 0)
        return log(1 + (n - df + 0.5) / (df + 0.5))
    }

    // MARK: Maintenance

    /// Adds or replaces a fragment.
    public mutating func upsert(id: String, sketch: Sketch, tags: [String], links: [String], embedding: [Float]?) {
        self.remove(id)
        let slot = UInt32(self.ids.count)
        self.ids.append(id)
        self.sketches.append(sketch)
        self.tags.append(tags)
        self.links.append(links)
        self.embeddings.append(embedding)
        self.words.append(Int32(clamping: sketch.words))
        self.alive.append(true)
        var vector = sketch.vector
        if vector.count != Sketch.dimensions { vector = [Int8](repeating: 0, count: Sketch.dimensions) }
        self.vectors.append(contentsOf: vector)
        self.norms.append(Double(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot())
        self.slots[id] = slot
        for term in sketch.terms {
            self.postings[term.hash, default: []].append(Posting(document: slot, count: term.count))
            self.documentFrequency[term.hash, default: 0] += 1
        }
        for link in Set(links) where link != id {
            self.backlinks[link, default: []].insert(id)
        }
        self.totalWords += sketch.words
    }

    /// Forgets a fragment (deleted on purpose, or about to be replaced).
    public mutating func remove(_ id: String) {
        guard let slot = self.slots.removeValue(forKey: id) else { return }
        let index = Int(slot)
        self.alive[index] = false
        self.embeddings[index] = nil
        for term in self.sketches[index].terms {
            let remaining = (self.documentFrequency[term.hash] ?? 1) - 1
            self.documentFrequency[term.hash] = remaining > 0 ? remaining : nil
        }
        for link in Set(self.links[index]) {
            self.backlinks[link]?.remove(id)
            if self.backlinks[link]?.isEmpty == true { self.backlinks[link] = nil }
        }
        self.totalWords -= self.sketches[index].words
        self.dead += 1
        if self.dead > 1024, self.dead * 4 > self.ids.count {
            self.compact()
        }
    }

    /// Drops removed documents from the arrays and the postings.
    private mutating func compact() {
        var renumber = [UInt32](repeating: .max, count: self.ids.count)
        var next: UInt32 = 0
        for index in self.ids.indices where self.alive[index] {
            renumber[index] = next
            next += 1
        }
        func keep<T>(_ array: [T]) -> [T] { array.indices.filter { self.alive[$0] }.map { array[$0] } }
        var vectors: [Int8] = []
        vectors.reserveCapacity(Int(next) * Sketch.dimensions)
        for index in self.ids.indices where self.alive[index] {
            vectors.append(contentsOf: self.vectors[(index * Sketch.dimensions)..<((index + 1) * Sketch.dimensions)])
        }
        for (term, list) in self.postings {
            let filtered = list.compactMap { posting -> Posting? in
                let slot = renumber[Int(posting.document)]
                return slot == .max ? nil : Posting(document: slot, count: posting.count)
            }
            self.postings[term] = filtered.isEmpty ? nil : filtered
        }
        self.ids = keep(self.ids)
        self.sketches = keep(self.sketches)
        self.tags = keep(self.tags)
        self.links = keep(self.links)
        self.embeddings = keep(self.embeddings)
        self.words = keep(self.words)
        self.norms = keep(self.norms)
        self.alive = [Bool](repeating: true, count: Int(next))
        self.vectors = vectors
        self.slots = Dictionary(uniqueKeysWithValues: self.ids.enumerated().map { ($0.element, UInt32($0.offset)) })
        self.dead = 0
    }

    // MARK: Look-ups

    public func sketch(_ id: String) -> Sketch? {
        self.slots[id].map { self.sketches[Int($0)] }
    }

    /// Fragments that link to `id`, sorted.
    public func backlinks(_ id: String) -> [String] {
        (self.backlinks[id] ?? []).sorted()
    }

    public struct Hit: Sendable, Equatable {
        public var id: String
        public var score: Double
    }

    /// Ranks fragments by BM25 over their sketch terms.
    /// - Parameters:
    ///   - query: Term hashes with their counts in the query.
    ///   - k: How many to return.
    ///   - accept: Filter on (id, tags).
    public func search(_ query: [UInt32: Int], k: Int, accept: (String, [String]) -> Bool = { _, _ in true }) -> [Hit] {
        guard self.count > 0, k > 0 else { return [] }
        let averageWords = max(1, Double(self.totalWords) / Double(self.count))
        // One accumulator per slot, and the slots touched, instead of a dictionary of scores.
        var scores = [Double](repeating: 0, count: self.ids.count)
        var touched: [UInt32] = []
        self.words.withUnsafeBufferPointer { words in
            self.alive.withUnsafeBufferPointer { alive in
                scores.withUnsafeMutableBufferPointer { scores in
                    for (term, queryCount) in query {
                        guard let list = self.postings[term] else { continue }
                        let weight = self.idf(term) * Double(queryCount)
                        for posting in list {
                            let slot = Int(posting.document)
                            guard alive[slot] else { continue }
                            let tf = Double(posting.count)
                            let norm = 1.2 * (0.25 + 0.75 * Double(words[slot]) / averageWords)
                            if scores[slot] == 0 { touched.append(posting.document) }
                            scores[slot] += weight * tf * 2.2 / (tf + norm)
                        }
                    }
                }
            }
        }
        return self.top(touched.lazy.map { ($0, scores[Int($0)]) }, k: k, accept: accept)
    }

    /// The fragments whose sketch vectors are closest to `vector` (cosine).
    public func similar(to vector: [Int8], k: Int, accept: (String, [String]) -> Bool = { _, _ in true }) -> [Hit] {
        guard vector.count == Sketch.dimensions else { return [] }
        var scored: [(UInt32, Double)] = []
        scored.reserveCapacity(self.count)
        let queryNorm = Double(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
        guard queryNorm > 0 else { return [] }
        self.vectors.withUnsafeBufferPointer { vectors in
            vector.withUnsafeBufferPointer { query in
                for index in self.ids.indices where self.alive[index] && self.norms[index] > 0 {
                    let base = index * Sketch.dimensions
                    var dot = 0
                    for d in 0..<Sketch.dimensions {
                        dot += Int(vectors[base + d]) * Int(query[d])
                    }
                    scored.append((UInt32(index), Double(dot) / (self.norms[index] * queryNorm)))
                }
            }
        }
        return self.top(scored, k: k, accept: accept)
    }

    /// The fragments whose client embeddings are closest to `embedding` (cosine).
    public func nearest(to embedding: [Float], k: Int, accept: (String, [String]) -> Bool = { _, _ in true }) -> [Hit] {
        var scored: [(UInt32, Double)] = []
        let norm = embedding.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0 else { return [] }
        for index in self.ids.indices where self.alive[index] {
            guard let other = self.embeddings[index], other.count == embedding.count else { continue }
            var dot = 0.0, otherNorm = 0.0
            for i in 0..<other.count {
                dot += Double(embedding[i]) * Double(other[i])
                otherNorm += Double(other[i]) * Double(other[i])
            }
            guard otherNorm > 0 else { continue }
            scored.append((UInt32(index), dot / (norm * otherNorm.squareRoot())))
        }
        return self.top(scored, k: k, accept: accept)
    }

    /// The `k` best accepted documents, ties broken by id so that results are deterministic. Keeps a
    /// small sorted window instead of sorting every candidate.
    private func top(_ scored: some Sequence<(UInt32, Double)>, k: Int, accept: (String, [String]) -> Bool) -> [Hit] {
        var best: [(slot: UInt32, score: Double)] = []
        best.reserveCapacity(k + 1)
        func better(_ a: (slot: UInt32, score: Double), _ b: (slot: UInt32, score: Double)) -> Bool {
            a.score != b.score ? a.score > b.score : self.ids[Int(a.slot)] < self.ids[Int(b.slot)]
        }
        for (slot, score) in scored {
            let candidate = (slot: slot, score: score)
            guard self.alive[Int(slot)] else { continue }
            if best.count == k, let last = best.last, !better(candidate, last) { continue }
            guard accept(self.ids[Int(slot)], self.tags[Int(slot)]) else { continue }
            var low = 0, high = best.count
            while low < high {
                let middle = (low + high) / 2
                if better(best[middle], candidate) { low = middle + 1 } else { high = middle }
            }
            best.insert(candidate, at: low)
            if best.count > k { best.removeLast() }
        }
        return best.map { Hit(id: self.ids[Int($0.slot)], score: $0.score) }
    }
}
