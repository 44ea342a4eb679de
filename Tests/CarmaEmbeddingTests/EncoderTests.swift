import Foundation
import Testing

@testable import CarmaEmbedding

/// all-MiniLM-L6-v2's directory: CARMA_TEST_MINILM_MODEL, as the test command sets it after
/// installing the model's package (CARMA_TEST_EMBEDDING_MODEL, the default model, before there were two).
private let modelDirectory = ProcessInfo.processInfo.environment["CARMA_TEST_MINILM_MODEL"]
    ?? ProcessInfo.processInfo.environment["CARMA_TEST_EMBEDDING_MODEL"].flatMap { $0.contains("minilm") ? $0 : nil }

@Suite("sentence encoder")
struct EncoderTests {
    @Test("basic tokens: lower case, accents stripped, punctuation split")
    func basicTokens() {
        #expect(WordPieceTokenizer.basicTokens("Héllo, WORLD!  ls(1)\tfoo-bar") == ["hello", ",", "world", "!", "ls", "(", "1", ")", "foo", "-", "bar"])
        #expect(WordPieceTokenizer.basicTokens("\u{0}\u{200B}a\u{4E2D}b") == ["a", "\u{4E2D}", "b"])
    }

    @Test("a missing or malformed model is an error, not a crash")
    func malformedModel() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("carma-model-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: EmbeddingModelError.self) { _ = try SentenceEncoder(directory: directory) }
        try #"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16, "vocab_size": 8}"#
            .write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n".write(toFile: directory + "/vocab.txt", atomically: true, encoding: .utf8)
        for garbage in [Data(), Data([255, 255, 255, 255, 255, 255, 255, 127]), Data([4, 0, 0, 0, 0, 0, 0, 0]) + Data("{}xx".utf8),
            Data([60, 0, 0, 0, 0, 0, 0, 0]) + Data(#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[8,8],"data_offsets":[0,9999]}}"#.utf8)]
        {
            try garbage.write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
            #expect(throws: EmbeddingModelError.self) { _ = try SentenceEncoder(directory: directory) }
        }
    }

    @Test("fp32 embeddings match the numpy reference (scripts/minilm.py)", .enabled(if: modelDirectory != nil))
    func matchesReference() throws {
        let encoder = try SentenceEncoder(directory: modelDirectory!, precision: .fp32)
        #expect(encoder.precision == .fp32)
        #expect(encoder.dimensions == 384)
        // From `python3 scripts/minilm.py "A man is eating food." "list directory contents"`.
        let reference: [(String, Int, [Float])] = [
            ("A man is eating food.", 8, [0.033242, 0.004406, -0.006277, 0.048379, -0.138702, -0.033617, 0.101128, -0.054385]),
            ("list directory contents", 5, [0.010725, 0.029302, -0.051925, 0.026867, 0.070634, -0.012516, 0.111581, 0.097844]),
        ]
        for (text, tokens, head) in reference {
            let vector = encoder.embed(text)
            #expect(encoder.tokenCount(text) == tokens)
            #expect(vector.count == 384)
            #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
            for (got, want) in zip(vector, head) {
                #expect(abs(got - want) < 2e-4, "\(text): \(got) vs \(want)")
            }
        }
        let near = dot(encoder.embed("list directory contents"), encoder.embed("show the files in a folder"))
        let far = dot(encoder.embed("list directory contents"), encoder.embed("compress a file with gzip"))
        #expect(near > far + 0.2)
    }

    /// The agreement each precision must keep with the numpy reference, as a cosine: fp32 is the
    /// same arithmetic; bf16 measured 0.99999; int8 measured 0.998 mean, 0.997 lowest on man pages
    /// and 0.995 lowest on short notes and questions (docs/decisions.md, "Encoder precision").
    static let agreement: [EmbeddingPrecision: Float] = [.fp32: 0.99999, .bf16: 0.9999, .int8: 0.99]
    /// The empty text is [CLS] and [SEP] alone: two rows, whose rounding errors do not average out
    /// (int8 measured 0.986). It means nothing, so it is held to less.
    static let emptyAgreement: Float = 0.98

    @Test(
        "every precision this CPU runs agrees with the numpy reference's full vectors",
        .enabled(if: modelDirectory != nil), arguments: [EmbeddingPrecision.fp32, .bf16, .int8])
    func precisionAgreesWithReference(_ precision: EmbeddingPrecision) throws {
        guard precision.isAvailable else { return }
        let encoder = try SentenceEncoder(directory: modelDirectory!, precision: precision)
        #expect(encoder.precision == precision)
        var cosines: [Float] = []
        for (text, tokens, reference) in referenceVectors {
            #expect(encoder.tokenCount(text) == tokens, "\(text)")
            let vector = encoder.embed(text)
            #expect(vector.count == reference.count)
            #expect(abs(dot(vector, vector) - 1) < 1e-4)
            let cosine = dot(vector, reference)
            if text.isEmpty {
                #expect(cosine >= Self.emptyAgreement, "\(precision): the empty text's cosine \(cosine)")
            } else {
                cosines.append(cosine)
            }
        }
        #expect(cosines.min()! >= Self.agreement[precision]!, "\(precision): cosines \(cosines)")
    }

    @Test(
        "a batch, on several threads, gives each text the vector it gets alone", .enabled(if: modelDirectory != nil),
        arguments: [EmbeddingPrecision.fp32, .bf16, .int8])
    func batchEqualsSingle(_ precision: EmbeddingPrecision) throws {
        guard precision.isAvailable else { return }
        let encoder = try SentenceEncoder(directory: modelDirectory!, precision: precision)
        // Enough long texts for several chunks, so that the threads share them out.
        let texts = (0..<24).map { referenceVectors[$0 % referenceVectors.count].text + String(repeating: " more words", count: $0) }
        let batch = encoder.embed(batch: texts, threads: 3)
        #expect(batch.count == texts.count)
        for (text, vector) in zip(texts, batch) {
            let alone = encoder.embed(text)
            #expect(zip(alone, vector).allSatisfy { abs($0 - $1) < 1e-5 }, "\(precision): \(text.prefix(30))")
        }
        #expect(encoder.embed(batch: []).isEmpty)
    }

    @Test(
        "a query embedded with the helper thread, each layer split in two, gets the vector it gets alone, to the bit",
        .enabled(if: modelDirectory != nil), arguments: [EmbeddingPrecision.bf16, .int8])
    func teamEqualsAlone(_ precision: EmbeddingPrecision) throws {
        guard precision.isAvailable else { return }
        let encoder = try SentenceEncoder(directory: modelDirectory!, precision: precision)
        let team = try #require(encoder.team)
        for (text, _, _) in referenceVectors {
            let alone = encoder.embed(text)
            // This encoder's team is this test's alone, so the helper is free.
            let held = team.withHelper { held in held.map { encoder.embed(batch: [text], threads: 1, team: $0)[0] } }
            #expect(held == alone, "\(precision): \(text.prefix(30))")
        }
        // The public path, alone or not, gives the same vector too.
        #expect(encoder.embedQuery("where is the archive") == encoder.embed(encoder.card.queryPrefix + "where is the archive"))
    }

    @Test("texts are packed into chunks of about the token budget, each with at least one text")
    func chunks() {
        #expect(SentenceEncoder.chunks([100, 200, 300, 400, 50], tokens: 500) == [0..<2, 2..<3, 3..<5])
        #expect(SentenceEncoder.chunks([900, 10], tokens: 500) == [0..<1, 1..<2])
        #expect(SentenceEncoder.chunks([3], tokens: 500) == [0..<1])
    }

    @Test("auto runs int8 where the CPU has VNNI and fp32 elsewhere")
    func autoPrecision() {
        #expect(EmbeddingPrecision.auto.resolved == (EmbeddingPrecision.int8.isAvailable ? .int8 : .fp32))
        #expect(EmbeddingPrecision.fp32.isAvailable)
    }

    @Test("long text is cut at the token limit", .enabled(if: modelDirectory != nil))
    func longText() throws {
        let encoder = try SentenceEncoder(directory: modelDirectory!, maxTokens: 32)
        let text = String(repeating: "directory contents are listed ", count: 200)
        #expect(encoder.tokenCount(text) == 32)
        let vector = encoder.embed(text)
        #expect(vector.allSatisfy { $0.isFinite })
        #expect(encoder.embed("").count == 384)
    }

    @Test("stopping the basic pass early gives the same tokens as cutting them afterwards", .enabled(if: modelDirectory != nil))
    func earlyStop() throws {
        let tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory! + "/vocab.txt")
        let text = (0..<200).map { "word\($0),  with\n\n(punctuation)-and   Ünïcödé;" }.joined(separator: " \t ")
        for limit in [8, 32, 256] {
            var full = [tokenizer.classify]
            for word in WordPieceTokenizer.basicTokens(text) { full.append(contentsOf: tokenizer.wordPieces(word)) }
            let expected = Array(full.prefix(limit - 1)) + [tokenizer.separator]
            #expect(tokenizer.tokenIDs(text, maxTokens: limit) == expected)
        }
    }
}

private func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
