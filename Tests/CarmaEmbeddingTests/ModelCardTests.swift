import Foundation
import Testing

@testable import CarmaEmbedding

/// bge-small-en-v1.5 as scripts/install-deps.sh converts it (scripts/test.sh sets the variable).
private let bgeDirectory = ProcessInfo.processInfo.environment["CARMA_TEST_BGE_MODEL"]

/// A BERT of 1 layer, 8 dimensions and 8 tokens with deterministic weights, written as carmad reads
/// it; `carma` is the card (none when nil), `seed` changes every weight.
private func tinyModel(carma: String?, seed: Float = 1) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("carma-tiny-model-\(UUID())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try #"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 64, "vocab_size": 8}"#
        .write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
    try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nfiles\nlist\ncat\n".write(toFile: directory + "/vocab.txt", atomically: true, encoding: .utf8)
    if let carma { try carma.write(toFile: directory + "/carma.json", atomically: true, encoding: .utf8) }
    var shapes: [(String, [Int])] = [
        ("embeddings.word_embeddings.weight", [8, 8]), ("embeddings.position_embeddings.weight", [64, 8]),
        ("embeddings.token_type_embeddings.weight", [2, 8]), ("embeddings.LayerNorm.weight", [8]), ("embeddings.LayerNorm.bias", [8]),
    ]
    let p = "encoder.layer.0."
    for (name, shape) in [
        ("attention.self.query", [8, 8]), ("attention.self.key", [8, 8]), ("attention.self.value", [8, 8]),
        ("attention.output.dense", [8, 8]), ("intermediate.dense", [16, 8]), ("output.dense", [8, 16]),
    ] {
        shapes.append((p + name + ".weight", shape))
        shapes.append((p + name + ".bias", [shape[0]]))
    }
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        shapes.append((p + norm + ".weight", [8]))
        shapes.append((p + norm + ".bias", [8]))
    }
    var header: [String] = []
    var data: [UInt8] = []
    for (index, (name, shape)) in shapes.enumerated() {
        let count = shape.reduce(1, *)
        let start = data.count
        for element in 0..<count {
            let value: Float = name.hasSuffix("LayerNorm.weight") ? 1 : sin(seed * Float(index * 131 + element * 7 + 1)) * 0.5
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        header.append(#""\#(name)":{"dtype":"F32","shape":[\#(shape.map(String.init).joined(separator: ","))],"data_offsets":[\#(start),\#(data.count)]}"#)
    }
    let json = Array(("{" + header.joined(separator: ",") + "}").utf8)
    var file = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init)
    file += json + data
    try Data(file).write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
    return directory
}

private func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

@Suite("model card")
struct ModelCardTests {
    @Test("without carma.json: mean pooling, no query prefix, named after the directory")
    func defaults() throws {
        let directory = try tinyModel(carma: nil)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let encoder = try SentenceEncoder(directory: directory)
        #expect(encoder.card == ModelCard())
        #expect(encoder.name.hasPrefix("carma-tiny-model-") && encoder.name.hasSuffix(" (1 layers, 8 dimensions)"))
        #expect(encoder.embedQuery("list the files") == encoder.embed("list the files"))
    }

    @Test("carma.json names the model, pools by [CLS], puts its prefix before queries only, and places its cosines")
    func card() throws {
        let plain = try tinyModel(carma: nil)
        let directory = try tinyModel(carma: #"{"name": "tiny", "pooling": "cls", "query_prefix": "cat ", "meaning_scale": {"midpoint": 0.6, "steepness": 20}}"#)
        defer {
            try? FileManager.default.removeItem(atPath: plain)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let mean = try SentenceEncoder(directory: plain)
        let cls = try SentenceEncoder(directory: directory)
        #expect(cls.name == "tiny (1 layers, 8 dimensions)")
        #expect(cls.card.meaningScale == ModelCard.CosineScale(midpoint: 0.6, steepness: 20))
        let stored = cls.embed("list the files")
        #expect(abs(dot(stored, stored) - 1) < 1e-4)
        #expect(dot(stored, mean.embed("list the files")) < 0.999, "[CLS] pooling gives another vector than the mean")
        #expect(cls.embedQuery("list the files") == cls.embed("cat list the files"))
        #expect(cls.embedQuery("list the files") != stored)
    }

    @Test("a malformed card refuses the model")
    func malformed() throws {
        for card in [#"{"pooling": "max"}"#, #"{"name": ""}"#, #"{"query_prefix": 3}"#, #"{"meaning_scale": {"midpoint": 0.5}}"#, "[1]", "not json"] {
            let directory = try tinyModel(carma: card)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(throws: EmbeddingModelError.self, "\(card)") { _ = try SentenceEncoder(directory: directory) }
        }
    }

    @Test("the identity is the name and a fingerprint of the weights: the same for the same files, another for other weights")
    func identity() throws {
        let card = #"{"name": "tiny"}"#
        let first = try tinyModel(carma: card)
        let copy = try tinyModel(carma: card)
        let other = try tinyModel(carma: card, seed: 2)
        defer { for directory in [first, copy, other] { try? FileManager.default.removeItem(atPath: directory) } }
        let a = try SentenceEncoder(directory: first), b = try SentenceEncoder(directory: copy), c = try SentenceEncoder(directory: other)
        #expect(a.identity.hasPrefix("tiny (1 layers, 8 dimensions) #") && a.identity.count == a.name.count + 18)
        #expect(a.identity == b.identity)
        #expect(a.name == c.name && a.identity != c.identity)
    }

    @Test("bge-small embeddings match the numpy reference (scripts/minilm.py over the converted model)", .enabled(if: bgeDirectory != nil))
    func bgeMatchesReference() throws {
        // The exact path (fp32) against the reference to 2e-4; the fast path must agree with it.
        let encoder = try SentenceEncoder(directory: bgeDirectory!, precision: .fp32)
        #expect(encoder.name == "bge-small-en-v1.5 (12 layers, 384 dimensions)")
        #expect(encoder.card.pooling == .cls)
        // From scripts/minilm.py's MiniLM("<model dir>"): .embed("A man is eating food.") and
        // .embed_query("list directory contents").
        let references: [([Float], [Float])] = [
            (encoder.embed("A man is eating food."), [-0.025452, 0.05671, -0.000276, -0.066345, -0.023635, -0.020478, 0.111467, -0.042942]),
            (encoder.embedQuery("list directory contents"), [-0.019337, 0.00909, 0.045707, -0.000865, 0.027207, -0.043256, -0.014759, 0.001774]),
        ]
        for (vector, head) in references {
            #expect(vector.count == 384)
            for (got, want) in zip(vector, head) { #expect(abs(got - want) < 2e-4, "\(got) vs \(want)") }
        }
        let fast = try SentenceEncoder(directory: bgeDirectory!)
        for text in ["A man is eating food.", "list directory contents", "The lighthouse keeper logs every passing ship at dusk."] {
            let agreement = dot(fast.embed(text), encoder.embed(text))
            #expect(agreement >= 0.99, "\(fast.precision) against fp32 on '\(text)': cosine \(agreement)")
        }
        let question = encoder.embedQuery("how do I see the files in a folder")
        #expect(dot(question, encoder.embed("ls lists directory contents")) > dot(question, encoder.embed("gzip compresses files")) + 0.05)
    }
}
