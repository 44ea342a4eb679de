import CarmaVectors

#if canImport(Glibc)
import Glibc
#endif

/// The in-memory retrieval index: an inverted index over every fragment's whole content (BM25), the
/// sketch vectors (the fallback "most similar"), the built-in model's embeddings ("meaning",
/// quantised to int8), client embeddings (vector queries with the client's own vectors), per-fragment
/// tags and metadata terms for filters, and the reverse of the link graph.
///
/// Documents live in parallel arrays indexed by a slot number, so that the scoring loops read flat
/// numbers (word counts, liveness, vector bytes) and never copy a document.
///
/// Not thread-safe: the store keeps it behind a read-write lock.
public struct TextIndex: Sendable {
    struct Posting: Sendable {
        var document: UInt32
        var count: UInt16
    }

    /// What the index keeps of one fragment version.
    public struct Document: Sendable {
        public var id: String
        public var version: UInt64
        public var sketch: Sketch
        /// Full-text terms of the whole content with their counts (`FullText.counts`); nil: only the
        /// sketch's terms are known (a fragment whose content could not be read).
        public var terms: [UInt32: Int]?
        /// Full-text terms in the whole content (BM25's document length).
        public var words: Int
        public var tags: [String]
        public var links: [String]
        public var metadata: [UInt64]
        public var clientEmbedding: [Float]?
        /// Whether the content says when something happens (`TimeExpressions.mentionsTime`).
        public var mentionsTime: Bool

        public init(
            id: String, version: UInt64, sketch: Sketch, terms: [UInt32: Int]?, words: Int, tags: [String], links: [String],
            metadata: [UInt64], clientEmbedding: [Float]?, mentionsTime: Bool = false
        ) {
            self.mentionsTime = mentionsTime
            self.id = id
            self.version = version
            self.sketch = sketch
            self.terms = terms
            self.words = words
            self.tags = tags
            self.links = links
            self.metadata = metadata
            self.clientEmbedding = clientEmbedding
        }
    }

    /// Which documents a ranking may return.
    public struct Filter: Sendable {
        /// Every one of these tags.
        public var tags: Set<String>
        /// Every one of these metadata terms (`MetadataTerm.hash`).
        public var metadata: [UInt64]
        public var excluded: Set<String>
        /// A last test on the id (the store's statuses), run only for candidates that passed the rest.
        public var custom: (@Sendable (String) -> Bool)?

        public init(tags: Set<String> = [], metadata: [UInt64] = [], excluded: Set<String> = [], custom: (@Sendable (String) -> Bool)? = nil) {
            self.tags = tags
            self.metadata = metadata
            self.excluded = excluded
            self.custom = custom
        }

        public static let none = Filter()
    }

    // Internal, not private: TextIndex+Neighbours.swift reads these.
    var ids: [String] = []
    private var versions: [UInt64] = []
    private var sketches: [Sketch] = []
    private var termLists: [[UInt32]] = []
    private var tags: [[String]] = []
    private var links: [[String]] = []
    private var metadata: [[UInt64]] = []
    var embeddings: [[Float]?] = []
    private var timed: [Bool] = []
    private var words: [Int32] = []
    var alive: [Bool] = []
    /// Every document's sketch vector, `Sketch.dimensions` bytes each, one after the other.
    private var vectors: [Int8] = []
    /// The Euclidean norm of each document's sketch vector (0 for an empty one).
    private var norms: [Double] = []
    /// Every document's meaning (the built-in model's embedding, int8), `meaningDimensions` each.
    var meanings: [Int8] = []
    /// The norm of each document's meaning; 0 while it has none yet.
    var meaningNorms: [Float] = []
    public private(set) var meaningDimensions = 0
    public private(set) var meaningCount = 0

    var slots: [String: UInt32] = [:]
    private var postings: [UInt32: [Posting]] = [:]
    /// The slots carrying each tag, ascending (removed ones stay until a compaction, as in the
    /// postings): a vector ranking filtered by a tag few fragments carry scores only those.
    private var tagged: [String: [UInt32]] = [:]
    private var documentFrequency: [UInt32: Int32] = [:]
    private var backlinks: [String: Set<String>] = [:]
    private var dead = 0
    private var totalWords = 0
    /// The approximate nearest-neighbour graphs of the vectors (nil: every vector query scans).
    public let neighbours: NeighbourIndexes?

    /// - Parameters:
    ///   - meaningDimensions: The built-in model's dimensions, 0 without a model.
    ///   - neighbours: Graphs for vector search in a large store; default nil (exact scans only).
    public init(meaningDimensions: Int = 0, neighbours: NeighbourIndexes? = nil) {
        self.meaningDimensions = meaningDimensions
        self.neighbours = neighbours
    }

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

    /// Adds or replaces a fragment. A new version starts without a meaning until `setMeaning`.
    public mutating func upsert(_ document: Document) {
        self.remove(document.id)
        let slot = UInt32(self.ids.count)
        let terms = document.terms ?? Dictionary(document.sketch.terms.map { (FullText.term(forSketchTerm: $0.hash), Int($0.count)) }, uniquingKeysWith: +)
        self.ids.append(document.id)
        self.versions.append(document.version)
        self.sketches.append(document.sketch)
        self.termLists.append(Array(terms.keys))
        self.tags.append(document.tags)
        for tag in Set(document.tags) { self.tagged[tag, default: []].append(slot) }
        self.links.append(document.links)
        self.metadata.append(document.metadata)
        self.embeddings.append(document.clientEmbedding)
        self.timed.append(document.mentionsTime)
        let words = document.terms == nil ? document.sketch.words : document.words
        self.words.append(Int32(clamping: words))
        self.alive.append(true)
        var vector = document.sketch.vector
        if vector.count != Sketch.dimensions { vector = [Int8](repeating: 0, count: Sketch.dimensions) }
        self.vectors.append(contentsOf: vector)
        self.norms.append(Double(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot())
        self.meanings.append(contentsOf: repeatElement(0, count: self.meaningDimensions))
        self.meaningNorms.append(0)
        self.slots[document.id] = slot
        self.neighbours?.placed(document.id, slot: slot, clientVector: document.clientEmbedding)
        for (hash, count) in terms {
            self.postings[hash, default: []].append(Posting(document: slot, count: UInt16(clamping: count)))
            self.documentFrequency[hash, default: 0] += 1
        }
        for link in Set(document.links) where link != document.id {
            self.backlinks[link, default: []].insert(document.id)
        }
        self.totalWords += words
    }

    /// Sets the meaning of a fragment's version; ignored if the index holds another version (a newer
    /// write overtook the embedding) or the vector has the wrong size.
    /// - Returns: Whether it was set.
    @discardableResult
    public mutating func setMeaning(_ id: String, version: UInt64, _ vector: [Int8]) -> Bool {
        guard vector.count == self.meaningDimensions, self.meaningDimensions > 0, let slot = self.slots[id].map(Int.init),
            self.versions[slot] == version
        else { return false }
        let norm = Float(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
        if self.meaningNorms[slot] == 0, norm > 0 { self.meaningCount += 1 }
        let base = slot * self.meaningDimensions
        self.meanings.replaceSubrange(base..<(base + self.meaningDimensions), with: vector)
        self.meaningNorms[slot] = norm
        if norm > 0 { self.neighbours?.meaningSet(id, vector) }
        return norm > 0
    }

    /// Whether a fragment's content says when something happens.
    public func mentionsTime(_ id: String) -> Bool {
        self.slots[id].map { self.timed[Int($0)] } ?? false
    }

    /// Forgets a fragment (deleted on purpose, or about to be replaced).
    public mutating func remove(_ id: String) {
        guard let slot = self.slots.removeValue(forKey: id) else { return }
        let index = Int(slot)
        self.neighbours?.removed(id, hadClientVector: self.embeddings[index] != nil)
        self.alive[index] = false
        self.embeddings[index] = nil
        if self.meaningNorms[index] > 0 { self.meaningCount -= 1 }
        self.meaningNorms[index] = 0
        for hash in self.termLists[index] {
            let remaining = (self.documentFrequency[hash] ?? 1) - 1
            self.documentFrequency[hash] = remaining > 0 ? remaining : nil
        }
        self.termLists[index] = []
        for link in Set(self.links[index]) {
            self.backlinks[link]?.remove(id)
            if self.backlinks[link]?.isEmpty == true { self.backlinks[link] = nil }
        }
        self.totalWords -= Int(self.words[index])
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
        func keepRows(_ array: [Int8], width: Int) -> [Int8] {
            var kept: [Int8] = []
            kept.reserveCapacity(Int(next) * width)
            for index in self.ids.indices where self.alive[index] {
                kept.append(contentsOf: array[(index * width)..<((index + 1) * width)])
            }
            return kept
        }
        for (term, list) in self.postings {
            let filtered = list.compactMap { posting -> Posting? in
                let slot = renumber[Int(posting.document)]
                return slot == .max ? nil : Posting(document: slot, count: posting.count)
            }
            self.postings[term] = filtered.isEmpty ? nil : filtered
        }
        self.vectors = keepRows(self.vectors, width: Sketch.dimensions)
        self.meanings = keepRows(self.meanings, width: self.meaningDimensions)
        self.ids = keep(self.ids)
        self.versions = keep(self.versions)
        self.sketches = keep(self.sketches)
        self.termLists = keep(self.termLists)
        self.tags = keep(self.tags)
        self.tagged = [:]
        for (slot, tags) in self.tags.enumerated() {
            for tag in Set(tags) { self.tagged[tag, default: []].append(UInt32(slot)) }
        }
        self.links = keep(self.links)
        self.metadata = keep(self.metadata)
        self.embeddings = keep(self.embeddings)
        self.timed = keep(self.timed)
        self.words = keep(self.words)
        self.norms = keep(self.norms)
        self.meaningNorms = keep(self.meaningNorms)
        self.alive = [Bool](repeating: true, count: Int(next))
        self.slots = Dictionary(uniqueKeysWithValues: self.ids.enumerated().map { ($0.element, UInt32($0.offset)) })
        self.neighbours?.renumbered(self.slots)
        self.dead = 0
    }

    // MARK: Look-ups

    public func sketch(_ id: String) -> Sketch? {
        self.slots[id].map { self.sketches[Int($0)] }
    }

    /// The version indexed for `id`.
    public func version(_ id: String) -> UInt64? {
        self.slots[id].map { self.versions[Int($0)] }
    }

    /// The meaning kept for `id` (int8), if it has one.
    public func meaning(_ id: String) -> [Int8]? {
        guard let slot = self.slots[id].map(Int.init), self.meaningNorms[slot] > 0 else { return nil }
        let base = slot * self.meaningDimensions
        return Array(self.meanings[base..<(base + self.meaningDimensions)])
    }

    /// Whether `id`'s indexed version has a meaning.
    public func hasMeaning(_ id: String, version: UInt64) -> Bool {
        guard let slot = self.slots[id].map(Int.init) else { return false }
        return self.versions[slot] == version && self.meaningNorms[slot] > 0
    }

    /// Fragments that link to `id`, sorted.
    public func backlinks(_ id: String) -> [String] {
        (self.backlinks[id] ?? []).sorted()
    }

    public struct Hit: Sendable, Equatable {
        public var id: String
        public var score: Double
        /// BM25 hits only: the share of the query's term weight (idf × count) this fragment contains.
        public var coverage: Double?
        /// BM25 hits only: the score divided by the query's term weight, so that it does not grow
        /// with the query's length (1 is about every query term once in a fragment of average length).
        public var strength: Double?

        public init(id: String, score: Double, coverage: Double? = nil, strength: Double? = nil) {
            self.id = id
            self.score = score
            self.coverage = coverage
            self.strength = strength
        }
    }

    /// Ranks fragments by BM25 (k1 1.2, b 0.75) over their whole content.
    ///
    /// Exact, but not exhaustive (MaxScore): terms are taken rarest first, every fragment holding
    /// one gaining an accumulator, until the terms left could add less than the k-th best score so
    /// far (each adds at most 2.2 × its weight). From then on no fragment outside the accumulators
    /// can reach the top k, so the common words' long postings are only looked up for the
    /// accumulated fragments that still could (their score plus what is left ≥ the k-th best).
    /// The answer is the exhaustive one's; `TextIndexSearchTests` compares them.
    /// - Parameters:
    ///   - query: Term hashes with their counts in the query.
    ///   - k: How many to return.
    public func search(_ query: [UInt32: Int], k: Int, filter: Filter = .none) -> [Hit] {
        guard self.count > 0, k > 0 else { return [] }
        let averageWords = max(1, Double(self.totalWords) / Double(self.count))
        // Highest weight first; ties by hash, so that the sums are added in the same order every run.
        let terms = query.map { (hash: $0.key, weight: self.idf($0.key) * Double($0.value)) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.hash < $1.hash }
        let total = terms.reduce(0) { $0 + $1.weight }
        // What the terms from each position on could still add to a fragment's score.
        var remaining = [Double](repeating: 0, count: terms.count + 1)
        for index in terms.indices.reversed() { remaining[index] = remaining[index + 1] + 2.2 * terms[index].weight }
        // One accumulator per slot, and the slots touched, instead of a dictionary of scores.
        var scores = [Double](repeating: 0, count: self.ids.count)
        var matched = [Double](repeating: 0, count: self.ids.count)
        var touched: [UInt32] = []
        // Set once no fragment outside it can reach the top k: the slots still in the running, ascending.
        var candidates: [UInt32]?
        self.words.withUnsafeBufferPointer { words in
            self.alive.withUnsafeBufferPointer { alive in
                scores.withUnsafeMutableBufferPointer { scores in
                    matched.withUnsafeMutableBufferPointer { matched in
                        var best = 0.0
                        // The k-th best accepted score at the last look: it only grows, so the next
                        // look waits until what is left falls below it (at most two looks in all).
                        var lastThreshold = 0.0
                        // Cleared when fewer than k accumulated fragments pass the filter: then
                        // the filter is selective and every posting is read.
                        var prunable = true
                        for (position, term) in terms.enumerated() {
                            guard let list = self.postings[term.hash] else { continue }
                            func add(_ posting: Posting) {
                                let slot = Int(posting.document)
                                let tf = Double(posting.count)
                                let norm = 1.2 * (0.25 + 0.75 * Double(words[slot]) / averageWords)
                                scores[slot] += term.weight * tf * 2.2 / (tf + norm)
                                matched[slot] += term.weight
                            }
                            let left = remaining[position + 1]
                            if let running = candidates {
                                Self.merge(running, into: list) { add($0) }
                                // Never nil here: the k best so far stay among them and only gain.
                                candidates = self.stillRunning(running, scores: scores, left: left, k: k, filter: filter).slots ?? running
                                continue
                            }
                            for posting in list where alive[Int(posting.document)] {
                                if scores[Int(posting.document)] == 0 { touched.append(posting.document) }
                                add(posting)
                                best = max(best, scores[Int(posting.document)])
                            }
                            // Only worth a look when the best so far already outweighs what is left.
                            if prunable, left < best, left < lastThreshold || lastThreshold == 0, touched.count >= k {
                                let look = self.stillRunning(touched, scores: scores, left: left, k: k, filter: filter)
                                candidates = look.slots
                                prunable = look.threshold != nil
                                lastThreshold = look.threshold ?? 0
                            }
                        }
                    }
                }
            }
        }
        return self.top((candidates ?? touched).lazy.map { ($0, scores[Int($0)]) }, k: k, filter: filter).map { hit in
            var hit = hit
            hit.coverage = total > 0 ? min(1, matched[Int(self.slots[hit.id]!)] / total) : 0
            hit.strength = total > 0 ? hit.score / total : 0
            return hit
        }
    }

    /// The slots of `running` that can still reach the top `k` when the terms left add at most
    /// `left`, ascending; nil while fragments outside them still could (`left` not below the k-th
    /// best accepted score, `threshold`, or fewer than `k` accepted: `threshold` nil).
    private func stillRunning(
        _ running: [UInt32], scores: UnsafeMutableBufferPointer<Double>, left: Double, k: Int, filter: Filter
    ) -> (slots: [UInt32]?, threshold: Double?) {
        let kept = self.top(running.lazy.map { ($0, scores[Int($0)]) }, k: k, filter: filter)
        guard kept.count == k, let threshold = kept.last?.score else { return (nil, nil) }
        guard left < threshold else { return (nil, threshold) }
        return (running.filter { scores[Int($0)] + left >= threshold }.sorted(), threshold)
    }

    /// Calls `visit` with each posting of `list` whose document is in `slots`; both ascending.
    /// Gallops through the list, which may be far longer than the slots.
    private static func merge(_ slots: [UInt32], into list: [Posting], visit: (Posting) -> Void) {
        var at = 0
        for slot in slots {
            // Exponential then binary search for the first posting ≥ slot.
            var step = 1
            var high = at
            while high < list.count, list[high].document < slot {
                at = high + 1
                high += step
                step *= 2
            }
            high = min(high, list.count)
            while at < high {
                let middle = (at + high) / 2
                if list[middle].document < slot { at = middle + 1 } else { high = middle }
            }
            guard at < list.count else { return }
            if list[at].document == slot { visit(list[at]) }
        }
    }

    /// The fragments whose sketch vectors are closest to `vector` (cosine).
    public func similar(to vector: [Int8], k: Int, filter: Filter = .none) -> [Hit] {
        guard vector.count == Sketch.dimensions else { return [] }
        let queryNorm = Double(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
        guard queryNorm > 0 else { return [] }
        let norms = self.norms
        let scored = self.dots(vector, in: self.vectors, width: Sketch.dimensions) { slot in
            norms[slot] > 0 ? queryNorm * norms[slot] : nil
        }
        return self.top(scored, k: k, filter: filter)
    }

    /// The fragments whose meanings are closest to `vector` (cosine; `vector` quantised by
    /// `TextIndex.quantize`).
    public func nearestMeaning(to vector: [Int8], k: Int, filter: Filter = .none) -> [Hit] {
        guard vector.count == self.meaningDimensions, self.meaningCount > 0 else { return [] }
        let queryNorm = Double(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
        guard queryNorm > 0 else { return [] }
        if let hits = self.approximateMeaning(to: vector, queryNorm: queryNorm, k: k, filter: filter) { return hits }
        return self.exactMeaning(to: vector, queryNorm: queryNorm, k: k, filter: filter)
    }

    /// `nearestMeaning` by scanning every meaning (also the measure of the graph's recall); with a
    /// tag filter that few fragments pass, only the fragments carrying that tag.
    public func exactMeaning(to vector: [Int8], queryNorm: Double, k: Int, filter: Filter = .none) -> [Hit] {
        if let slots = self.taggedSlots(filter) {
            return self.top(self.scoredMeanings(vector, queryNorm: queryNorm, slots: slots), k: k, filter: filter)
        }
        let norms = self.meaningNorms
        let scored = self.dots(vector, in: self.meanings, width: self.meaningDimensions) { slot in
            norms[slot] > 0 ? queryNorm * Double(norms[slot]) : nil
        }
        return self.top(scored, k: k, filter: filter)
    }

    /// The cosine of `vector` with the meanings of `slots` (live ones with a meaning): the scan's
    /// arithmetic, for the tag lists and the graph's candidates.
    func scoredMeanings(_ vector: [Int8], queryNorm: Double, slots: [UInt32]) -> [(UInt32, Double)] {
        let norms = self.meaningNorms
        return self.dots(vector, in: self.meanings, width: self.meaningDimensions, slots: slots) { slot in
            norms[slot] > 0 ? queryNorm * Double(norms[slot]) : nil
        }
    }

    /// The slots of the filter's rarest tag, when it is on less than a quarter of the fragments
    /// (then scoring only those beats the scan of every row); nil: scan them all.
    func taggedSlots(_ filter: Filter) -> [UInt32]? {
        guard !filter.tags.isEmpty else { return nil }
        let rarest = filter.tags.map { self.tagged[$0] ?? [] }.min { $0.count < $1.count }!
        return rarest.count * 4 < self.ids.count ? rarest : nil
    }

    /// Cosine of `query` with the live rows `slots` of `matrix` that `divisor` gives a norm product for.
    private func dots(_ query: [Int8], in matrix: [Int8], width: Int, slots: [UInt32], divisor: (Int) -> Double?) -> [(UInt32, Double)] {
        var scored: [(UInt32, Double)] = []
        scored.reserveCapacity(slots.count)
        var product: Int32 = 0
        matrix.withUnsafeBufferPointer { matrix in
            query.withUnsafeBufferPointer { query in
                for slot in slots where self.alive[Int(slot)] {
                    guard let norms = divisor(Int(slot)) else { continue }
                    VectorIndex.dots(query, rows: matrix.baseAddress! + Int(slot) * width, count: 1, into: &product)
                    scored.append((slot, Double(product) / norms))
                }
            }
        }
        return scored
    }

    /// Cosine of `query` with every live row of `matrix` that `divisor` gives a norm product for.
    private func dots(_ query: [Int8], in matrix: [Int8], width: Int, divisor: (Int) -> Double?) -> [(UInt32, Double)] {
        let rows = min(self.ids.count, matrix.count / max(width, 1))
        guard query.count == width, rows > 0 else { return [] }
        var products = [Int32](repeating: 0, count: rows)
        matrix.withUnsafeBufferPointer { matrix in
            query.withUnsafeBufferPointer { query in
                products.withUnsafeMutableBufferPointer { VectorIndex.dots(query, rows: matrix.baseAddress!, count: rows, into: $0.baseAddress!) }
            }
        }
        var scored: [(UInt32, Double)] = []
        scored.reserveCapacity(self.count)
        for slot in 0..<rows where self.alive[slot] {
            guard let product = divisor(slot) else { continue }
            scored.append((UInt32(slot), Double(products[slot]) / product))
        }
        return scored
    }

    /// The fragments whose client embeddings are closest to `embedding` (cosine).
    public func nearest(to embedding: [Float], k: Int, filter: Filter = .none) -> [Hit] {
        let norm = embedding.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0 else { return [] }
        if let hits = self.approximateClient(to: embedding, norm: norm, k: k, filter: filter) { return hits }
        return self.exactClient(to: embedding, norm: norm, k: k, filter: filter)
    }

    /// `nearest(to:)` by scanning every client vector.
    public func exactClient(to embedding: [Float], norm: Double, k: Int, filter: Filter = .none) -> [Hit] {
        var scored: [(UInt32, Double)] = []
        func score(_ slot: Int) {
            if let cosine = self.clientCosine(embedding, norm: norm, slot: slot) { scored.append((UInt32(slot), cosine)) }
        }
        if let slots = self.taggedSlots(filter) {
            slots.forEach { score(Int($0)) }
        } else {
            self.ids.indices.forEach(score)
        }
        return self.top(scored, k: k, filter: filter)
    }

    /// The cosine of `embedding` (of norm `norm`) with the client vector of `slot`, in doubles; nil
    /// when the slot is removed or has no vector of that size. The scan's arithmetic, also for the
    /// graph's candidates, so that both give the same score to the bit.
    func clientCosine(_ embedding: [Float], norm: Double, slot: Int) -> Double? {
        guard self.alive[slot], let other = self.embeddings[slot], other.count == embedding.count else { return nil }
        var dot = 0.0, otherNorm = 0.0
        for i in 0..<other.count {
            dot += Double(embedding[i]) * Double(other[i])
            otherNorm += Double(other[i]) * Double(other[i])
        }
        return otherNorm > 0 ? dot / (norm * otherNorm.squareRoot()) : nil
    }

    func accepts(_ slot: Int, _ filter: Filter) -> Bool {
        let id = self.ids[slot]
        if !filter.excluded.isEmpty, filter.excluded.contains(id) { return false }
        // Not `isSubset(of:)`, which makes a set of the fragment's tags at each call: the graph's
        // search asks this of every candidate it meets.
        if !filter.tags.isEmpty, !filter.tags.allSatisfy(self.tags[slot].contains) { return false }
        if !filter.metadata.isEmpty, !filter.metadata.allSatisfy(self.metadata[slot].contains) { return false }
        return filter.custom?(id) ?? true
    }

    /// The `k` best accepted documents, ties broken by id so that results are deterministic. Keeps a
    /// small sorted window instead of sorting every candidate.
    func top(_ scored: some Sequence<(UInt32, Double)>, k: Int, filter: Filter) -> [Hit] {
        var best: [(slot: UInt32, score: Double)] = []
        best.reserveCapacity(k + 1)
        func better(_ a: (slot: UInt32, score: Double), _ b: (slot: UInt32, score: Double)) -> Bool {
            a.score != b.score ? a.score > b.score : self.ids[Int(a.slot)] < self.ids[Int(b.slot)]
        }
        for (slot, score) in scored {
            let candidate = (slot: slot, score: score)
            guard self.alive[Int(slot)], score.isFinite else { continue }
            if best.count == k, let last = best.last, !better(candidate, last) { continue }
            guard self.accepts(Int(slot), filter) else { continue }
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

    /// A unit vector as int8: scaled so that its largest magnitude is 127.
    public static func quantize(_ vector: [Float]) -> [Int8] {
        let largest = vector.reduce(0) { max($0, abs($1)) }
        guard largest > 0, largest.isFinite else { return [Int8](repeating: 0, count: vector.count) }
        let scale = 127 / largest
        return vector.map { Int8(clamping: Int(($0 * scale).rounded())) }
    }

    /// An int8 vector back as floats of unit length.
    public static func unit(_ vector: [Int8]) -> [Float] {
        let norm = Float(vector.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot()
        guard norm > 0 else { return vector.map { _ in 0 } }
        return vector.map { Float($0) / norm }
    }
}

/// Metadata equality terms: one hash per top-level member (key and canonical JSON value), so that a
/// filter `{"lang": "en"}` is a set test, not a read of each record.
public enum MetadataTerm {
    /// FNV-1a over the key, a zero byte and the value's canonical JSON text.
    public static func hash(key: String, value canonicalJSON: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash = (hash ^ 0) &* 0x100_0000_01b3
        for byte in canonicalJSON.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }
}
