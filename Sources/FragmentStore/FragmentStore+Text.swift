import CarmaJSON
import CarmaText
import Foundation

// Sketches, retrieval and the context around a fragment.

extension FragmentStore {
    /// Sketches a text against the store's term statistics now.
    func sketch(_ content: String) -> Sketch {
        let counted = Sketch.count(content)
        let idf: [UInt32: Double] = self.text.withLock { index in
            Dictionary(uniqueKeysWithValues: counted.counts.keys.map { ($0, index.idf($0)) })
        }
        return Sketch.make(counts: counted.counts, words: counted.words, bytes: content.utf8.count, idf: { idf[$0] ?? 1 })
    }

    /// Checks an embedding's dimension against the store's, fixing it on first use (log thread only).
    func acceptEmbeddingDimension(_ dimension: Int) -> StoreError? {
        let (current, fixedNow): (Int?, Bool) = self.embeddingDimension.withLock { stored in
            if let stored { return (stored, false) }
            stored = dimension
            return (dimension, true)
        }
        if fixedNow {
            self.pipeline.submit(.change(RegistryChange(apply: { try $0.setMeta("embedding_dimension", String(dimension)) })))
            return nil
        }
        guard current == dimension else {
            return .invalid(field: "embedding", "this store's embeddings have \(current!) dimensions, not \(dimension)")
        }
        return nil
    }

    static func encodeEmbedding(_ values: [Double]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for value in values {
            let bits = Float(value).bitPattern
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
        }
        return bytes
    }

    static func decodeEmbedding(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { at in
            Float(bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
        }
    }

    /// Loads every stored sketch into the text index on a thread of its own, so that start-up does
    /// not wait for it; until it is done, queries see only what is loaded (`textIndexReady` is false).
    func loadTextIndexInBackground() {
        let thread = Thread { [self] in
            let started = ContinuousClock.now
            var loaded: [(String, Sketch, [Float]?)] = []
            do {
                try self.registry.forEachSketch { id, bytes, embedding in
                    if let sketch = Sketch.decode(bytes) {
                        loaded.append((id, sketch, embedding.map(Self.decodeEmbedding)))
                    }
                }
            } catch {
                self.logger.error("cannot load sketches; queries and reconstruction will see only new fragments", metadata: ["error": "\(error)"])
            }
            // Rows give tags and links; fragments written since start-up are already indexed (newer).
            let rows = self.rows(loaded.map(\.0))
            self.text.withLock { index in
                for ((id, sketch, embedding), row) in zip(loaded, rows) {
                    guard let row, index.sketch(id) == nil else { continue }
                    index.upsert(id: id, sketch: sketch, tags: row.tags, links: row.links, embedding: embedding)
                }
            }
            self.textReady.store(true, ordering: .relaxed)
            self.logger.info(
                "text index loaded",
                metadata: ["text.fragments": "\(loaded.count)", "text.load_ms": "\(Int((ContinuousClock.now - started) / .milliseconds(1)))"])
        }
        thread.name = "carma-text-index"
        thread.start()
    }

    /// Whether queries see every fragment yet.
    public var textIndexReady: Bool { self.textReady.load(ordering: .relaxed) }

    // MARK: Retrieval

    /// A query result.
    public struct QueryHit: Sendable {
        public var id: String
        public var score: Double
        public var row: FragmentRow
    }

    /// Top-k fragments for a text and/or an embedding, optionally restricted to fragments carrying
    /// every tag in `tags`. With both, scores are the mean of the two, each scaled to its best.
    public func query(text: String?, embedding: [Double]?, k: Int, tags: [String]) throws(StoreError) -> [QueryHit] {
        if let embedding, let dimension = self.embeddingDimension.withLock({ $0 }), embedding.count != dimension {
            throw .invalid(field: "embedding", "this store's embeddings have \(dimension) dimensions, not \(embedding.count)")
        }
        if let embedding, !FragmentInput.fitsFloat(embedding) {
            throw .invalid(field: "embedding", "embedding values must be finite 32-bit floats")
        }
        let required = Set(tags)
        let accept: (String, [String]) -> Bool = { _, fragmentTags in required.isEmpty || required.isSubset(of: fragmentTags) }
        let pool = max(k * 4, 50)
        let (textHits, vectorHits): ([TextIndex.Hit], [TextIndex.Hit]) = self.text.withLock { index in
            var textHits: [TextIndex.Hit] = []
            var vectorHits: [TextIndex.Hit] = []
            if let text {
                var counts: [UInt32: Int] = [:]
                for hash in Tokenizer.hashes(text) { counts[hash, default: 0] += 1 }
                textHits = index.search(counts, k: pool, accept: accept)
            }
            if let embedding {
                vectorHits = index.nearest(to: embedding.map(Float.init), k: pool, accept: accept)
            }
            return (textHits, vectorHits)
        }
        // Scores end up in [0, 1]: BM25 scaled by the best text score, cosine mapped from [-1, 1].
        var combined: [String: Double] = [:]
        let parts = [
            textHits.map { ($0.id, $0.score / max(textHits.first?.score ?? 1, 1e-12)) },
            vectorHits.map { ($0.id, ($0.score + 1) / 2) },
        ].filter { !$0.isEmpty }
        for hits in parts {
            for (id, score) in hits where score.isFinite {
                combined[id, default: 0] += min(1, max(0, score)) / Double(parts.count)
            }
        }
        let ranked = combined.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(k)
        let rows = self.rows(ranked.map(\.key))
        return zip(ranked, rows).compactMap { hit, row in row.map { QueryHit(id: hit.key, score: hit.value, row: $0) } }
    }

    /// A fragment's sketch, also while its text is lost.
    public func sketch(of id: String) -> Sketch? {
        self.text.withLock { $0.sketch(id) }
    }

    /// Fragments linking to `id`.
    public func backlinks(_ id: String) -> [String] {
        self.text.withLock { $0.backlinks(id) }
    }

    /// Fragments whose sketch vectors are closest to `vector`, excluding `excluded`.
    public func similar(to vector: [Int8], k: Int, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.withLock { index in
            index.similar(to: vector, k: k, accept: { id, _ in !excluded.contains(id) }).map { ($0.id, $0.score) }
        }
    }

    /// Fragments sharing the most characteristic terms with `sketch` (BM25 over its terms).
    public func related(to sketch: Sketch, k: Int, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        var counts: [UInt32: Int] = [:]
        for term in sketch.terms { counts[term.hash] = Int(term.count) }
        return self.text.withLock { index in
            index.search(counts, k: k, accept: { id, _ in !excluded.contains(id) }).map { ($0.id, $0.score) }
        }
    }

    /// The inverse document frequency of a term hash now.
    public func idf(_ hash: UInt32) -> Double {
        self.text.withLock { $0.idf(hash) }
    }

    /// Text index size: fragments and distinct terms.
    public var textIndexSize: (fragments: Int, terms: Int) {
        self.text.withLock { ($0.count, $0.termCount) }
    }

    /// The content of a readable fragment (ok or reconstructed) and its status; nil for blanks and
    /// unknown ids.
    public func content(_ id: String) -> (content: String, status: FragmentStatus)? {
        guard case .fragment(let fragment) = self.read(id),
            let json = try? JSONParser.parse(fragment.body, maxDepth: 128), let content = json["content"]?.stringValue
        else { return nil }
        return (content, fragment.status)
    }
}
