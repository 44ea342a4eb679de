/// The in-memory retrieval index over every fragment's sketch: an inverted index from term hashes to
/// fragments (for ranked text queries, BM25 over the sketch's term counts), the sketch vectors (for
/// "most similar"), client embeddings (for vector queries), and the reverse of the link graph.
///
/// Not thread-safe: the store keeps it behind a lock.
public struct TextIndex: Sendable {
    struct Document: Sendable {
        var id: String
        var sketch: Sketch
        var tags: [String]
        var links: [String]
        var embedding: [Float]?
        var alive: Bool
    }

    struct Posting: Sendable {
        var document: UInt32
        var count: UInt8
    }

    private var documents: [Document] = []
    private var slots: [String: UInt32] = [:]
    private var postings: [UInt32: [Posting]] = [:]
    private var documentFrequency: [UInt32: Int32] = [:]
    private var backlinks: [String: Set<String>] = [:]
    private var dead = 0
    private var totalWords = 0
    public private(set) var embeddingDimension: Int?

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
        let slot = UInt32(self.documents.count)
        self.documents.append(Document(id: id, sketch: sketch, tags: tags, links: links, embedding: embedding, alive: true))
        self.slots[id] = slot
        for term in sketch.terms {
            self.postings[term.hash, default: []].append(Posting(document: slot, count: term.count))
            self.documentFrequency[term.hash, default: 0] += 1
        }
        for link in Set(links) where link != id {
            self.backlinks[link, default: []].insert(id)
        }
        self.totalWords += sketch.words
        if let embedding, self.embeddingDimension == nil {
            self.embeddingDimension = embedding.count
        }
    }

    /// Forgets a fragment (deleted on purpose).
    public mutating func remove(_ id: String) {
        guard let slot = self.slots.removeValue(forKey: id) else { return }
        let document = self.documents[Int(slot)]
        self.documents[Int(slot)].alive = false
        self.documents[Int(slot)].embedding = nil
        for term in document.sketch.terms {
            let remaining = (self.documentFrequency[term.hash] ?? 1) - 1
            self.documentFrequency[term.hash] = remaining > 0 ? remaining : nil
        }
        for link in Set(document.links) {
            self.backlinks[link]?.remove(id)
            if self.backlinks[link]?.isEmpty == true { self.backlinks[link] = nil }
        }
        self.totalWords -= document.sketch.words
        self.dead += 1
        if self.dead > 1024, self.dead * 4 > self.documents.count {
            self.compact()
        }
    }

    /// Drops removed documents from the arrays and the postings.
    private mutating func compact() {
        var renumber = [UInt32](repeating: .max, count: self.documents.count)
        var kept: [Document] = []
        kept.reserveCapacity(self.slots.count)
        for (index, document) in self.documents.enumerated() where document.alive {
            renumber[index] = UInt32(kept.count)
            kept.append(document)
        }
        for (term, list) in self.postings {
            let filtered = list.compactMap { posting -> Posting? in
                let slot = renumber[Int(posting.document)]
                return slot == .max ? nil : Posting(document: slot, count: posting.count)
            }
            self.postings[term] = filtered.isEmpty ? nil : filtered
        }
        self.documents = kept
        self.slots = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($0.element.id, UInt32($0.offset)) })
        self.dead = 0
    }

    // MARK: Look-ups

    public func sketch(_ id: String) -> Sketch? {
        self.slots[id].map { self.documents[Int($0)].sketch }
    }

    public func embedding(_ id: String) -> [Float]? {
        self.slots[id].flatMap { self.documents[Int($0)].embedding }
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
        var scores: [UInt32: Double] = [:]
        for (term, queryCount) in query {
            guard let list = self.postings[term] else { continue }
            let weight = self.idf(term) * Double(queryCount)
            for posting in list {
                let document = self.documents[Int(posting.document)]
                guard document.alive else { continue }
                let tf = Double(posting.count)
                let norm = 1.2 * (0.25 + 0.75 * Double(document.sketch.words) / averageWords)
                scores[posting.document, default: 0] += weight * tf * 2.2 / (tf + norm)
            }
        }
        return self.top(scores.map { ($0.key, $0.value) }, k: k, accept: accept)
    }

    /// The fragments whose sketch vectors are closest to `vector` (cosine).
    public func similar(to vector: [Int8], k: Int, accept: (String, [String]) -> Bool = { _, _ in true }) -> [Hit] {
        var scored: [(UInt32, Double)] = []
        scored.reserveCapacity(self.count)
        for (index, document) in self.documents.enumerated() where document.alive {
            scored.append((UInt32(index), Sketch.cosine(vector, document.sketch.vector)))
        }
        return self.top(scored, k: k, accept: accept)
    }

    /// The fragments whose client embeddings are closest to `embedding` (cosine).
    public func nearest(to embedding: [Float], k: Int, accept: (String, [String]) -> Bool = { _, _ in true }) -> [Hit] {
        var scored: [(UInt32, Double)] = []
        let norm = embedding.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0 else { return [] }
        for (index, document) in self.documents.enumerated() where document.alive {
            guard let other = document.embedding, other.count == embedding.count else { continue }
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
    private func top(_ scored: [(UInt32, Double)], k: Int, accept: (String, [String]) -> Bool) -> [Hit] {
        var best: [Hit] = []
        best.reserveCapacity(k + 1)
        func better(_ a: Hit, _ b: Hit) -> Bool { a.score != b.score ? a.score > b.score : a.id < b.id }
        for (slot, score) in scored {
            let document = self.documents[Int(slot)]
            guard document.alive else { continue }
            if best.count == k, let last = best.last, !better(Hit(id: document.id, score: score), last) { continue }
            guard accept(document.id, document.tags) else { continue }
            let hit = Hit(id: document.id, score: score)
            var low = 0, high = best.count
            while low < high {
                let middle = (low + high) / 2
                if better(best[middle], hit) { low = middle + 1 } else { high = middle }
            }
            best.insert(hit, at: low)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

#if canImport(Glibc)
import Glibc
#endif
