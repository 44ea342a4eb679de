@testable import CarmaText
import Testing

@Suite("Tokenizer and sketches")
struct TextTests {
    @Test("terms are lowercased, stemmed lightly, without stop words or single characters")
    func terms() {
        #expect(Tokenizer.terms("The Files were filed; a file, FILING!") == ["fil", "fil", "fil", "fil"])
        #expect(Tokenizer.terms("x y zz 42 Ünïcode") == ["zz", "42", "ünïcode"])
        #expect(Tokenizer.terms("") == [])
        #expect(Tokenizer.stem("classes") == "class")
        #expect(Tokenizer.stem("pass") == "pass")
        #expect(Tokenizer.stem("copies") == "copy")
        #expect(Tokenizer.stem("makes") == Tokenizer.stem("making"))
        #expect(Tokenizer.stem("status") == "status")
    }

    @Test("sentences split at line breaks and sentence ends, joining fragments that are too short")
    func sentences() {
        let units = Tokenizer.sentences("First sentence is here. Second one follows! Short.\nA new line starts here and goes on.", minimumLength: 10)
        #expect(units == ["First sentence is here.", "Second one follows!", "Short. A new line starts here and goes on."])
    }

    @Test("a sketch survives encoding and stays small")
    func sketchEncoding() throws {
        let text = String(repeating: "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat. ", count: 12)
        let sketch = Sketch.make(text, idf: { _ in 1 })
        let bytes = sketch.encode()
        #expect(try #require(Sketch.decode(bytes)) == sketch)
        #expect(bytes.count <= 2 + Sketch.maxTerms * 5 + Sketch.dimensions + 8)
        #expect(Double(bytes.count) / Double(text.utf8.count) < 0.2)
        #expect(Sketch.decode(Array(bytes.dropLast())) == nil)
    }

    @Test("sketch vectors of similar texts are closer than those of unrelated texts")
    func vectors() {
        let a = Sketch.make("compress files with gzip and decompress them again with gunzip", idf: { _ in 1 })
        let b = Sketch.make("gzip compresses files; gunzip decompresses the compressed files", idf: { _ in 1 })
        let c = Sketch.make("the secure shell client logs into a remote machine over the network", idf: { _ in 1 })
        #expect(Sketch.cosine(a.vector, a.vector) > 0.999)
        #expect(Sketch.cosine(a.vector, b.vector) > Sketch.cosine(a.vector, c.vector) + 0.2)
    }

    @Test("the index ranks the matching fragment first, honours filters, and forgets removed ones")
    func index() {
        var index = TextIndex()
        let texts = [
            "a": "gzip compresses files using Lempel-Ziv coding",
            "b": "ssh connects to a remote host and runs commands there",
            "c": "tar archives many files into one archive file",
        ]
        for (id, text) in texts.sorted(by: { $0.key < $1.key }) {
            index.upsert(document(id, text, tags: id == "c" ? ["archive"] : [], links: id == "a" ? ["c"] : []))
        }
        func query(_ text: String) -> [UInt32: Int] {
            FullText.counts(text).counts
        }
        #expect(index.search(query("remote host commands"), k: 2).first?.id == "b")
        #expect(index.search(query("files"), k: 3, filter: TextIndex.Filter(tags: ["archive"])).map(\.id) == ["c"])
        #expect(index.search(query("files"), k: 3, filter: TextIndex.Filter(excluded: ["c"])).map(\.id) == ["a"])
        #expect(index.backlinks("c") == ["a"])
        index.remove("b")
        #expect(index.search(query("remote host commands"), k: 2).isEmpty)
        #expect(index.count == 2)
        #expect(index.similar(to: Sketch.make("compress files with gzip", idf: { _ in 1 }).vector, k: 1).first?.id == "a")
    }

    @Test("BM25 reaches every word of the content, not only the sketch's")
    func wholeContent() {
        var index = TextIndex()
        // A long text whose rare closing word is far from the sketch's most characteristic terms.
        let filler = (0..<400).map { "word\($0 % 97) common text here" }.joined(separator: " ")
        index.upsert(document("long", filler + " zanzibar"))
        index.upsert(document("short", "nothing of the kind"))
        #expect(index.search(FullText.counts("zanzibar").counts, k: 1).first?.id == "long")
    }

    @Test("meanings: nearest by cosine, only for the indexed version, filters by metadata terms")
    func meanings() {
        var index = TextIndex(meaningDimensions: 4)
        let ops = MetadataTerm.hash(key: "team", value: "\"ops\"")
        index.upsert(document("a", "alpha", version: 1, metadata: [ops]))
        index.upsert(document("b", "beta", version: 2))
        index.upsert(document("c", "gamma", version: 3))
        let set = [
            index.setMeaning("a", version: 1, TextIndex.quantize([1, 0, 0, 0])),
            index.setMeaning("b", version: 2, TextIndex.quantize([0.9, 0.1, 0, 0])),
            index.setMeaning("c", version: 2, TextIndex.quantize([0, 1, 0, 0])),
            index.setMeaning("c", version: 3, [1, 2]),
        ]
        // Another version's meaning and a vector of the wrong size are refused.
        #expect(set == [true, true, false, false])
        #expect(index.meaningCount == 2)
        let query = TextIndex.quantize([0.95, 0.05, 0, 0])
        #expect(index.nearestMeaning(to: query, k: 3).map(\.id) == ["a", "b"] || index.nearestMeaning(to: query, k: 3).map(\.id) == ["b", "a"])
        #expect(index.nearestMeaning(to: query, k: 3, filter: TextIndex.Filter(metadata: [ops])).map(\.id) == ["a"])
        index.upsert(document("a", "alpha again", version: 4))
        #expect(!index.hasMeaning("a", version: 4), "a new version waits for its own embedding")
        #expect(index.meaningCount == 1)
        #expect(TextIndex.unit(TextIndex.quantize([3, 4])).map { ($0 * 100).rounded() } == [60, 80])
    }

    @Test("similarity measures are 1 for identical texts and 0 for disjoint ones")
    func similarity() {
        let text = "rsync copies files efficiently between hosts"
        #expect(TextSimilarity.tokenF1(text, text) == 1)
        #expect(TextSimilarity.rougeL(text, text) == 1)
        #expect(TextSimilarity.tokenF1(text, "banana orange") == 0)
        let partial = TextSimilarity.rougeL("rsync copies files", text)
        #expect(partial > 0.5 && partial < 1)
    }
}

private func document(_ id: String, _ text: String, version: UInt64 = 1, tags: [String] = [], links: [String] = [], metadata: [UInt64] = []) -> TextIndex.Document {
    let counted = FullText.counts(text)
    return TextIndex.Document(
        id: id, version: version, sketch: Sketch.make(text, idf: { _ in 1 }), terms: counted.counts, words: counted.terms, tags: tags, links: links,
        metadata: metadata, clientEmbedding: nil)
}
