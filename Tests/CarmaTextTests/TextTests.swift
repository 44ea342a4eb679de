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
            index.upsert(id: id, sketch: Sketch.make(text, idf: { _ in 1 }), tags: id == "c" ? ["archive"] : [], links: id == "a" ? ["c"] : [], embedding: nil)
        }
        func query(_ text: String) -> [UInt32: Int] {
            var counts: [UInt32: Int] = [:]
            for hash in Tokenizer.hashes(text) { counts[hash, default: 0] += 1 }
            return counts
        }
        #expect(index.search(query("remote host commands"), k: 2).first?.id == "b")
        #expect(index.search(query("files"), k: 3, accept: { _, tags in tags.contains("archive") }).map(\.id) == ["c"])
        #expect(index.backlinks("c") == ["a"])
        index.remove("b")
        #expect(index.search(query("remote host commands"), k: 2).isEmpty)
        #expect(index.count == 2)
        #expect(index.similar(to: Sketch.make("compress files with gzip", idf: { _ in 1 }).vector, k: 1).first?.id == "a")
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
