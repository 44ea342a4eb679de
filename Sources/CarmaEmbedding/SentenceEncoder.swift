import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// A sentence-transformers BERT encoder (all-MiniLM-L6-v2, bge-small-en-v1.5 and their kin) run on
/// the CPU: WordPiece tokens through the transformer layers with OpenBLAS's single-precision GEMM,
/// pooling over the tokens as the model's card says (mean, or [CLS]), then L2 normalisation.
/// Stateless after loading, so any thread may call `embed`.
public final class SentenceEncoder: Sendable {
    /// The model directory's name and shape, for logs, `/readyz` and the stored vectors' tag.
    public let name: String
    /// Dimensions of the vectors produced.
    public let dimensions: Int
    /// Longest input in tokens ([CLS] and [SEP] included); longer text is cut.
    public let maxTokens: Int
    /// The directory's `carma.json`: name, pooling, query prefix, meaning scale.
    public let card: ModelCard
    /// The name and a fingerprint of the weights (`ModelFingerprint`): stored with the meanings, so
    /// that those of another model are recomputed.
    public let identity: String

    private let configuration: BertConfiguration
    private let tokenizer: WordPieceTokenizer
    private let wordEmbeddings: [Float]
    private let positionEmbeddings: [Float]
    private let typeEmbedding: [Float]
    private let embeddingNorm: Norm
    private let layers: [Layer]

    struct Norm {
        var gamma: [Float]
        var beta: [Float]
    }

    struct Layer {
        /// Query, key and value weights stacked into one (3·hidden)×hidden matrix, for one GEMM.
        var qkv: [Float]
        var qkvBias: [Float]
        var attentionOutput: [Float]
        var attentionOutputBias: [Float]
        var attentionNorm: Norm
        var intermediate: [Float]
        var intermediateBias: [Float]
        var output: [Float]
        var outputBias: [Float]
        var outputNorm: Norm
    }

    /// Loads a sentence-transformers model directory: `config.json`, `vocab.txt`, `model.safetensors`,
    /// and `carma.json` if there is one.
    public init(directory: String, maxTokens: Int = 256) throws(EmbeddingModelError) {
        let configuration = try BertConfiguration(file: directory + "/config.json")
        let card = try ModelCard(directory: directory)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
        guard tokenizer.vocabularySize <= configuration.vocabulary else {
            throw .malformed(directory + "/vocab.txt", "\(tokenizer.vocabularySize) tokens, the model has \(configuration.vocabulary)")
        }
        let tensors = try SafeTensors(path: directory + "/model.safetensors")
        let h = configuration.hidden
        func norm(_ prefix: String) throws(EmbeddingModelError) -> Norm {
            Norm(gamma: try tensors.floats(prefix + ".weight", shape: [h]), beta: try tensors.floats(prefix + ".bias", shape: [h]))
        }
        self.wordEmbeddings = try tensors.floats("embeddings.word_embeddings.weight", shape: [configuration.vocabulary, h])
        self.positionEmbeddings = try tensors.floats("embeddings.position_embeddings.weight", shape: [configuration.positions, h])
        self.typeEmbedding = Array(try tensors.floats("embeddings.token_type_embeddings.weight", shape: [2, h]).prefix(h))
        self.embeddingNorm = try norm("embeddings.LayerNorm")
        var layers: [Layer] = []
        for index in 0..<configuration.layers {
            let p = "encoder.layer.\(index)."
            let i = configuration.intermediate
            layers.append(Layer(
                qkv: try tensors.floats(p + "attention.self.query.weight", shape: [h, h])
                    + tensors.floats(p + "attention.self.key.weight", shape: [h, h])
                    + tensors.floats(p + "attention.self.value.weight", shape: [h, h]),
                qkvBias: try tensors.floats(p + "attention.self.query.bias", shape: [h])
                    + tensors.floats(p + "attention.self.key.bias", shape: [h])
                    + tensors.floats(p + "attention.self.value.bias", shape: [h]),
                attentionOutput: try tensors.floats(p + "attention.output.dense.weight", shape: [h, h]),
                attentionOutputBias: try tensors.floats(p + "attention.output.dense.bias", shape: [h]),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try tensors.floats(p + "intermediate.dense.weight", shape: [i, h]),
                intermediateBias: try tensors.floats(p + "intermediate.dense.bias", shape: [i]),
                output: try tensors.floats(p + "output.dense.weight", shape: [h, i]),
                outputBias: try tensors.floats(p + "output.dense.bias", shape: [h]),
                outputNorm: try norm(p + "output.LayerNorm")))
        }
        self.configuration = configuration
        self.tokenizer = tokenizer
        self.layers = layers
        self.dimensions = h
        self.maxTokens = min(max(8, maxTokens), configuration.positions)
        let base = card.name ?? directory.split(separator: "/").last(where: { $0 != "model" }).map(String.init) ?? "model"
        self.name = "\(base) (\(configuration.layers) layers, \(h) dimensions)"
        self.card = card
        self.identity = "\(self.name) #\(try ModelFingerprint.of(directory: directory))"
        // One thread per call: carmad runs embeddings on a background thread and query embeddings on
        // the HTTP threads; a BLAS pool of its own would fight them for the same cores.
        openblas_set_num_threads(1)
    }

    /// Token ids, for tests and for the budget of a text.
    public func tokenCount(_ text: String) -> Int {
        self.tokenizer.tokenIDs(text, maxTokens: self.maxTokens).count
    }

    /// The unit-length embedding of `text`.
    public func embed(_ text: String) -> [Float] {
        let ids = self.tokenizer.tokenIDs(text, maxTokens: self.maxTokens)
        let n = ids.count
        let h = self.dimensions
        var x = [Float](repeating: 0, count: n * h)
        for (row, id) in ids.enumerated() {
            let word = Int(id) * h, position = row * h
            for d in 0..<h {
                x[position + d] = self.wordEmbeddings[word + d] + self.positionEmbeddings[position + d] + self.typeEmbedding[d]
            }
        }
        self.layerNorm(&x, rows: n, self.embeddingNorm)
        var scratch = Scratch(tokens: n, configuration: self.configuration)
        for layer in self.layers {
            self.encode(&x, tokens: n, layer: layer, scratch: &scratch)
        }
        let pooled = self.card.pool(x, tokens: n, dimensions: h)
        let length = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return pooled.map { $0 / max(length, 1e-12) }
    }

    /// Buffers reused by every layer of one call.
    private struct Scratch {
        var qkv: [Float]
        var scores: [Float]
        var context: [Float]
        var projected: [Float]
        var intermediate: [Float]

        init(tokens n: Int, configuration c: BertConfiguration) {
            self.qkv = [Float](repeating: 0, count: n * 3 * c.hidden)
            self.scores = [Float](repeating: 0, count: n * n)
            self.context = [Float](repeating: 0, count: n * c.hidden)
            self.projected = [Float](repeating: 0, count: n * c.hidden)
            self.intermediate = [Float](repeating: 0, count: n * c.intermediate)
        }
    }

    private func encode(_ x: inout [Float], tokens n: Int, layer: Layer, scratch s: inout Scratch) {
        let h = self.dimensions
        let heads = self.configuration.heads
        let headSize = h / heads
        let inner = self.configuration.intermediate
        // Q, K and V for every token in one GEMM: [n × h] · [3h × h]ᵀ.
        Self.linear(x, rows: n, inputs: h, weights: layer.qkv, bias: layer.qkvBias, outputs: 3 * h, into: &s.qkv)
        let scale = 1 / Float(headSize).squareRoot()
        for head in 0..<heads {
            s.qkv.withUnsafeBufferPointer { qkv in
                s.scores.withUnsafeMutableBufferPointer { scores in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(headSize), scale,
                        qkv.baseAddress! + head * headSize, Int32(3 * h),
                        qkv.baseAddress! + h + head * headSize, Int32(3 * h), 0, scores.baseAddress!, Int32(n))
                }
            }
            s.scores.withUnsafeMutableBufferPointer { VectorMath.softmaxRows($0, rows: n, columns: n) }
            s.qkv.withUnsafeBufferPointer { qkv in
                s.scores.withUnsafeBufferPointer { scores in
                    s.context.withUnsafeMutableBufferPointer { context in
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(headSize), Int32(n), 1,
                            scores.baseAddress!, Int32(n), qkv.baseAddress! + 2 * h + head * headSize, Int32(3 * h), 0,
                            context.baseAddress! + head * headSize, Int32(h))
                    }
                }
            }
        }
        Self.linear(s.context, rows: n, inputs: h, weights: layer.attentionOutput, bias: layer.attentionOutputBias, outputs: h, into: &s.projected)
        for index in 0..<(n * h) { x[index] += s.projected[index] }
        self.layerNorm(&x, rows: n, layer.attentionNorm)
        Self.linear(x, rows: n, inputs: h, weights: layer.intermediate, bias: layer.intermediateBias, outputs: inner, into: &s.intermediate)
        s.intermediate.withUnsafeMutableBufferPointer { VectorMath.gelu(UnsafeMutableBufferPointer(rebasing: $0[0..<(n * inner)])) }
        Self.linear(s.intermediate, rows: n, inputs: inner, weights: layer.output, bias: layer.outputBias, outputs: h, into: &s.projected)
        for index in 0..<(n * h) { x[index] += s.projected[index] }
        self.layerNorm(&x, rows: n, layer.outputNorm)
    }

    /// `output = input · weightsᵀ + bias`, with `weights` stored [outputs × inputs] as PyTorch does.
    private static func linear(_ input: [Float], rows: Int, inputs: Int, weights: [Float], bias: [Float], outputs: Int, into output: inout [Float]) {
        output.withUnsafeMutableBufferPointer { out in
            for row in 0..<rows {
                (out.baseAddress! + row * outputs).update(from: bias, count: outputs)
            }
            input.withUnsafeBufferPointer { a in
                weights.withUnsafeBufferPointer { b in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(inputs), 1,
                        a.baseAddress!, Int32(inputs), b.baseAddress!, Int32(inputs), 1, out.baseAddress!, Int32(outputs))
                }
            }
        }
    }

    private func layerNorm(_ x: inout [Float], rows: Int, _ norm: Norm) {
        let h = self.dimensions
        let epsilon = self.configuration.layerNormEpsilon
        x.withUnsafeMutableBufferPointer { x in
            for row in 0..<rows {
                let base = row * h
                var mean: Float = 0
                for d in 0..<h { mean += x[base + d] }
                mean /= Float(h)
                var variance: Float = 0
                for d in 0..<h {
                    let centred = x[base + d] - mean
                    variance += centred * centred
                }
                let inverse = 1 / (variance / Float(h) + epsilon).squareRoot()
                for d in 0..<h { x[base + d] = (x[base + d] - mean) * inverse * norm.gamma[d] + norm.beta[d] }
            }
        }
    }
}
