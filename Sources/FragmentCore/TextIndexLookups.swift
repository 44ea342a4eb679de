import CarmaJSON
import CarmaText

// The look-ups context and reconstruction make in a text index, the same for both backends.

extension ReadWriteLock where Value == TextIndex {
    /// A fragment's sketch, also while its text is lost.
    package func sketch(of id: String) -> Sketch? {
        self.read { $0.sketch(id) }
    }

    /// Fragments linking to `id`.
    package func backlinks(_ id: String) -> [String] {
        self.read { $0.backlinks(id) }
    }

    /// Fragments whose sketch vectors are closest to `vector`, excluding `excluded`.
    package func similar(to vector: [Int8], k: Int, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.read { $0.similar(to: vector, k: k, filter: TextIndex.Filter(excluded: excluded)).map { ($0.id, $0.score) } }
    }

    /// Fragments sharing the most characteristic terms with `sketch` (BM25 over its terms).
    package func related(to sketch: Sketch, k: Int, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        var counts: [UInt32: Int] = [:]
        for term in sketch.terms { counts[FullText.term(forSketchTerm: term.hash)] = Int(term.count) }
        return self.read { $0.search(counts, k: k, filter: TextIndex.Filter(excluded: excluded)).map { ($0.id, $0.score) } }
    }

    /// The inverse document frequency of a term hash now.
    package func idf(_ hash: UInt32) -> Double {
        self.read { $0.idf(hash) }
    }

    /// Fragments, distinct terms and fragments with a meaning.
    package var size: (fragments: Int, terms: Int, meanings: Int) {
        self.read { ($0.count, $0.termCount, $0.meaningCount) }
    }

    /// The kept meaning of a fragment (unit length), also while its text is lost.
    package func meaning(of id: String) -> [Float]? {
        self.read { $0.meaning(id) }.map(TextIndex.unit)
    }

    /// Fragments whose meanings are closest to `vector`, excluding `excluded`.
    package func nearestByMeaning(to vector: [Float], k: Int, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        let quantized = TextIndex.quantize(vector)
        return self.read { $0.nearestMeaning(to: quantized, k: k, filter: TextIndex.Filter(excluded: excluded)).map { ($0.id, $0.score) } }
    }

    /// Sketches a fragment for the registry against the index's term statistics now: its text
    /// verbatim when it is short, else its characteristic words. (A record that also holds a client
    /// vector cannot be rebuilt byte for byte from the sketch; its text still comes back word for
    /// word, as a reconstruction.)
    package func sketch(_ input: FragmentInput) -> Sketch {
        Sketch.make(fragment: input.content, metadata: FragmentRecord.metadataBytes(input.metadata), verbatimAllowed: true) { hashes in
            self.read { index in Dictionary(uniqueKeysWithValues: hashes.map { ($0, index.idf($0)) }) }
        }
    }
}

extension TextIndex.Document {
    /// What the text index keeps of a fragment: its sketch, the counts of every term of its content,
    /// its tags, links, metadata terms and client embedding, and whether it names a time.
    package static func fragment(id: String, version: UInt64, input: FragmentInput, sketch: Sketch) -> TextIndex.Document {
        let full = FullText.counts(input.content)
        return TextIndex.Document(
            id: id, version: version, sketch: sketch, terms: full.counts, words: full.terms, tags: input.tags, links: input.links,
            metadata: Self.metadataTerms(input.metadata), clientEmbedding: input.embedding?.map(Float.init),
            mentionsTime: TimeExpressions.mentionsTime(input.content))
    }

    /// One term per top-level metadata member whose value is a string, number, boolean or null.
    package static func metadataTerms(_ metadata: JSONObject) -> [UInt64] {
        metadata.compactMap { key, value in
            switch value {
            case .object, .array: nil
            default: MetadataTerm.hash(key: key, value: String(decoding: value.bytes, as: UTF8.self))
            }
        }
    }
}
