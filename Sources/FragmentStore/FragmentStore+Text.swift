import FragmentCore
import CarmaEmbedding
import CarmaJSON
import CarmaText
import Foundation

// The text index: what goes into it, how it is loaded at start-up and kept current, and the
// look-ups reconstruction and context use.

extension FragmentStore {
    /// Sketches a fragment against its namespace's term statistics now.
    func sketch(_ input: FragmentInput, key: String) -> Sketch {
        self.text.sketch(input, key: key)
    }

    /// What the text index keeps of a fragment: its sketch (against the term statistics now), the
    /// counts of every term of its content, tags, links, metadata terms and client embedding. CPU work,
    /// done on the caller's thread.
    func document(id: String, version: UInt64, input: FragmentInput, storedSketch: Sketch? = nil) -> TextIndex.Document {
        TextIndex.Document.fragment(id: id, version: version, input: input, sketch: storedSketch ?? self.sketch(input, key: id))
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

    // MARK: Keeping the index current

    /// Starts the indexer thread and, on a thread of its own, the start-up load: every live
    /// fragment's content read back from the log and tokenised, sketches and meanings from the
    /// registry. Until it is done, queries see only what is loaded (`textIndexReady` is false). Then
    /// the fragments without a meaning for their version go to the embedder.
    func startIndexing() {
        self.feed.start { [self] changes in
            var written: [String] = []
            // Runs of changes in one namespace go in under one lock.
            var start = changes.startIndex
            while start < changes.endIndex {
                let namespace = FragmentKey.namespace(of: changes[start].id)
                let end = changes[start...].firstIndex { FragmentKey.namespace(of: $0.id) != namespace } ?? changes.endIndex
                let partition = self.text.namespace(namespace)
                partition.write { index in
                    for change in changes[start..<end] {
                        switch change {
                        case .upsert(let document):
                            index.upsert(document)
                            written.append(document.id)
                        case .remove(let id):
                            index.remove(id)
                        }
                    }
                }
                // A deleted namespace keeps no index (dropped here, on the one thread that adds to
                // indexes, so nothing written meanwhile is lost with it).
                if namespace != Namespace.default, partition.size.fragments == 0, self.journal.entry(namespace) == nil {
                    self.text.drop(namespace)
                }
                start = end
            }
            if self.configuration.encoder != nil { self.meanings.enqueue(written) }
        }
        self.textLoader.start { [self] in
            self.loadTextIndex()
            self.textReady.store(true, ordering: .relaxed)
            guard let encoder = self.configuration.encoder else { return .finished }
            let readable = self.state.withLock { $0.rows(where: { $0.status != .blank }) }
            let missing = readable.filter { row in !self.text.of(row.id).read { $0.hasMeaning(row.id, version: row.version) } }.map(\.id)
            self.meanings.enqueue(missing)
            self.logger.info("embedding in the background", metadata: ["embedding.model": "\(encoder.name)", "embedding.backlog": "\(missing.count)"])
            self.meanings.start(threads: encoder.backgroundThreads, batch: Self.embeddingBatch) { [self] ids in
                self.embedMeanings(ids, encoder: encoder)
            }
            return .finished
        }
    }

    private func loadTextIndex() {
        let started = ContinuousClock.now
        var sketches: [String: Sketch] = [:]
        var stored: [String: (version: UInt64, vector: [Int8])] = [:]
        do {
            try self.registry.forEachSketch { id, bytes, _ in
                if let sketch = Sketch.decode(bytes) { sketches[id] = sketch }
            }
            if let encoder = self.configuration.encoder {
                switch MeaningModelChange(stored: try self.registry.meta("meaning_model"), encoder: encoder) {
                case .same:
                    try self.registry.forEachMeaning { id, version, vector in stored[id] = (version, vector) }
                case .sameUnderOldTag:
                    try self.registry.forEachMeaning { id, version, vector in stored[id] = (version, vector) }
                    self.pipeline.submit(.change(RegistryChange(apply: { try $0.setMeta("meaning_model", encoder.identity) })))
                case .replaced(let previous):
                    // Another model's vectors mean nothing to this one: forget them, embed anew in
                    // the background. Queries meanwhile rank by words and by what is embedded anew.
                    if let previous {
                        self.meanings.replacing.withLock { $0 = previous }
                        self.logger.notice(
                            "the embedding model changed: every meaning is computed again in the background",
                            metadata: ["embedding.model": "\(encoder.identity)", "embedding.previous_model": "\(previous)"])
                    }
                    self.pipeline.submit(.change(RegistryChange(apply: { registry in
                        try registry.clearMeanings()
                        try registry.setMeta("meaning_model", encoder.identity)
                    })))
                    // The saved graph links the other model's vectors: built anew (the builder has
                    // not started; it starts once the index is loaded).
                    if let path = self.text.neighbours?.path(.meaning) { try? FileManager.default.removeItem(atPath: path) }
                }
            }
        } catch {
            self.logger.error("cannot load sketches or meanings; they will be computed again", metadata: ["error": "\(error)"])
        }
        // One sequential pass over the primary log (records matched to the rows they are current
        // for), then whatever it did not find: blanks and damaged records, by their sketches.
        var pending = Dictionary(uniqueKeysWithValues: self.state.withLock { $0.rows(where: { _ in true }) }.map { ($0.id, $0) })
        var loaded = 0
        var documents: [TextIndex.Document] = []
        func flush() {
            loaded += documents.count
            for (namespace, group) in Dictionary(grouping: documents, by: { FragmentKey.namespace(of: $0.id) }) {
                self.text.namespace(namespace).write { index in
                    for document in group where index.version(document.id) == nil {
                        index.upsert(document)
                        if let meaning = stored[document.id], meaning.version == document.version {
                            index.setMeaning(document.id, version: document.version, meaning.vector)
                        }
                    }
                }
            }
            documents.removeAll(keepingCapacity: true)
        }
        self.primaryLog.readThrough { header, body, location in
            guard let row = pending[header.id], row.version == header.version, row.location == location, row.status != .blank,
                let record = FragmentRecord.decode(body)
            else { return }
            pending[header.id] = nil
            documents.append(self.document(id: row.id, version: row.version, input: record.input, storedSketch: sketches[row.id]))
            if documents.count >= 512 { flush() }
        }
        for row in pending.values {
            // Unreadable now: its sketch's terms stand in for the content.
            guard let sketch = sketches[row.id] else { continue }
            documents.append(
                TextIndex.Document(
                    id: row.id, version: row.version, sketch: sketch, terms: nil, words: sketch.words, tags: row.tags, links: row.links,
                    metadata: [], clientEmbedding: nil, mentionsTime: sketch.verbatim.map { TimeExpressions.mentionsTime($0.content) } ?? false))
            if documents.count >= 512 { flush() }
        }
        flush()
        self.logger.info(
            "text index loaded",
            metadata: ["text.fragments": "\(loaded)", "text.meanings": "\(stored.count)", "text.load_ms": "\(Int((ContinuousClock.now - started) / .milliseconds(1)))"])
    }

    /// Fragments an embedder thread takes at a time: enough for the encoder to pack whole chunks
    /// (about five man-page fragments each), few enough that a meaning is visible soon after its write.
    static let embeddingBatch = 16

    /// Embeds the current versions of fragments (embedder threads), in one call of the encoder.
    /// Blanks keep the meaning they had; a reconstruction keeps the meaning of what was lost (same
    /// version), which is what the next reconstruction aims at.
    private func embedMeanings(_ ids: [String], encoder: SentenceEncoder) {
        var pending: [(id: String, version: UInt64, content: String)] = []
        for id in ids {
            guard let row = self.storedRow(id), row.status != .blank, !self.text.of(id).read({ $0.hasMeaning(id, version: row.version) }),
                case .record(let bytes) = self.readServed(row), let record = FragmentRecord.decode(bytes)
            else { continue }
            pending.append((id, row.version, record.content))
        }
        guard !pending.isEmpty else { return }
        for (item, meaning) in zip(pending, encoder.embed(batch: pending.map(\.content))) {
            let vector = TextIndex.quantize(meaning)
            let set = self.text.of(item.id).write { $0.setMeaning(item.id, version: item.version, vector) }
            guard set else { continue }
            self.meanings.embedded.add(1, ordering: .relaxed)
            self.pipeline.submit(.change(RegistryChange(apply: { try $0.setMeaning(item.id, version: item.version, vector: vector) })))
        }
    }

    /// Whether queries see every fragment yet.
    public var textIndexReady: Bool { self.textReady.load(ordering: .relaxed) }

    // MARK: Look-ups for context and reconstruction

    public func sketch(of id: String) -> Sketch? { self.text.sketch(of: id) }
    public func backlinks(_ id: String) -> [String] { self.text.backlinks(id) }
    public func idf(_ hash: UInt32, in namespace: String) -> Double { self.text.namespace(namespace).idf(hash) }
    public var textIndexSize: (fragments: Int, terms: Int, meanings: Int) { self.text.size }
    public func textIndexSize(in namespace: String) -> (fragments: Int, terms: Int, meanings: Int) { self.text.namespace(namespace).size }

    public func similar(to vector: [Int8], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).similar(to: vector, k: k, excluding: excluded)
    }

    public func related(to sketch: Sketch, k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).related(to: sketch, k: k, excluding: excluded)
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
