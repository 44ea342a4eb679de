import COpenBLAS
import Foundation
import Synchronization

/// A sentence-transformers BERT encoder (all-MiniLM-L6-v2, bge-small-en-v1.5 and their kin) run on
/// the CPU: WordPiece tokens through the transformer layers, pooling over the tokens as the model's
/// card says (mean, or [CLS]), then L2 normalisation.
/// Stateless after loading, so any thread may call `embed`.
///
/// Texts given together (`embed(batch:)`) are packed into one token matrix per chunk, so each
/// linear layer is one large matrix product instead of one per text; attention stays per text, so
/// a text's vector does not depend on what it was batched with. The linear layers run in the
/// `precision` chosen at load: fp32 through OpenBLAS (the exact path), or bf16/int8 through oneDNN
/// (`FastLinear`, with the AVX-512 passes around it in CEncoderKernels).
public final class SentenceEncoder: Sendable {
    /// The model directory's name and shape, for logs, `/readyz` and the stored vectors' tag. The
    /// precision is not part of it: vectors of the fast path agree with fp32 to a cosine of 0.998,
    /// so a change of precision does not make stored meanings stale.
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
    /// The arithmetic of the linear layers (`auto` resolved at load).
    public let precision: EmbeddingPrecision
    /// Threads a background embedder may run: the first at normal priority, the others at low
    /// priority so that they only take cores the foreground leaves idle (`BackgroundThread`).
    public let backgroundThreads: Int

    private let configuration: BertConfiguration
    private let tokenizer: WordPieceTokenizer
    private let wordEmbeddings: [Float]
    private let positionEmbeddings: [Float]
    private let typeEmbedding: [Float]
    private let embeddingNorm: Norm
    private let layers: [Layer]
    /// The linear layers in `precision` (empty for fp32).
    private let fastLayers: [FastLayer]
    /// Whether the fast path's attention runs in bf16 (`carma_attention_bf16`) rather than
    /// OpenBLAS fp32: where the CPU has AVX512_BF16 (measured in docs/decisions.md).
    private let bf16Attention: Bool
    /// The helper a query embedded alone splits its layers with (nil for fp32, or without a thread).
    let team: EncoderTeam?
    /// Queries being embedded now (`embedQuery`).
    let queriesEmbedding = Atomic<Int>(0)
    /// When (`DispatchTime` nanoseconds) a query last found another being embedded.
    let lastOverlap = Atomic<Int>(Int.min / 2)

    /// Tokens packed into one forward pass: about five man-page fragments. Chosen, not tuned against
    /// other sizes: oneDNN's int8 products ran at full speed from 187 rows up in the shape
    /// measurements (docs/decisions.md), and a pass's largest activation (1,024 × 1,536 floats,
    /// 6 MiB) stays within reach of the cache.
    static let chunkTokens = 1024

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

    struct FastLayer {
        var qkv: FastLinear
        var attentionOutput: FastLinear
        var intermediate: FastLinear
        var output: FastLinear
    }

    /// Loads a sentence-transformers model directory: `config.json`, `vocab.txt`, `model.safetensors`,
    /// and `carma.json` if there is one.
    /// - Parameters:
    ///   - directory: The model directory.
    ///   - maxTokens: Longest input in tokens; longer text is cut. Default 256.
    ///   - precision: The linear layers' arithmetic. Default `auto` (int8 where the CPU has VNNI).
    ///     An explicit bf16 or int8 the CPU cannot run is an error.
    ///   - backgroundThreads: Threads a background embedder may run. Default: the machine's cores.
    public init(
        directory: String, maxTokens: Int = 256, precision: EmbeddingPrecision = .auto,
        backgroundThreads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws(EmbeddingModelError) {
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
        let resolved = precision.resolved
        guard resolved.isAvailable else {
            throw .unsupported("embedding precision \(resolved) needs AVX-512 with \(resolved == .int8 ? "VNNI" : "BF16"), which this CPU lacks")
        }
        var fastLayers: [FastLayer] = []
        if resolved != .fp32 {
            let i = configuration.intermediate
            for layer in layers {
                fastLayers.append(FastLayer(
                    qkv: try FastLinear(precision: resolved, weights: layer.qkv, bias: layer.qkvBias, inputs: h, outputs: 3 * h),
                    attentionOutput: try FastLinear(precision: resolved, weights: layer.attentionOutput, bias: layer.attentionOutputBias, inputs: h, outputs: h),
                    intermediate: try FastLinear(precision: resolved, weights: layer.intermediate, bias: layer.intermediateBias, inputs: h, outputs: i),
                    output: try FastLinear(precision: resolved, weights: layer.output, bias: layer.outputBias, inputs: i, outputs: h)))
            }
        }
        self.configuration = configuration
        self.tokenizer = tokenizer
        self.layers = layers
        self.fastLayers = fastLayers
        self.bf16Attention = resolved != .fp32 && FastLinear.bf16AttentionRuns(headSize: h / configuration.heads)
        self.team = fastLayers.isEmpty ? nil : EncoderTeam()
        self.precision = resolved
        self.backgroundThreads = max(1, backgroundThreads)
        self.dimensions = h
        self.maxTokens = min(max(8, maxTokens), configuration.positions)
        let base = card.name ?? directory.split(separator: "/").last(where: { $0 != "model" }).map(String.init) ?? "model"
        self.name = "\(base) (\(configuration.layers) layers, \(h) dimensions)"
        self.card = card
        self.identity = "\(self.name) #\(try ModelFingerprint.of(directory: directory))"
        // One BLAS thread per call: the encoder parallelises across texts itself (`embed(batch:threads:)`),
        // and query embeddings run on the HTTP threads; a BLAS pool of its own would fight them.
        openblas_set_num_threads(1)
    }

    /// Token ids, for tests and for the budget of a text.
    public func tokenCount(_ text: String) -> Int {
        self.tokenizer.tokenIDs(text, maxTokens: self.maxTokens).count
    }

    /// The unit-length embedding of `text`, on the calling thread.
    public func embed(_ text: String) -> [Float] {
        self.embed(batch: [text])[0]
    }

    /// The unit-length embeddings of `texts`, in order. Texts are packed into chunks of about
    /// `chunkTokens` tokens; with `threads` > 1 the chunks are shared out between the calling
    /// thread and `threads` − 1 helpers, each taking the next chunk when done with one.
    /// - Parameters:
    ///   - texts: The texts; each is cut at `maxTokens` tokens.
    ///   - threads: Threads to run on, the caller's included. Default 1.
    public func embed(batch texts: [String], threads: Int = 1) -> [[Float]] {
        self.embed(batch: texts, threads: threads, team: nil)
    }

    /// `embed(batch:threads:)`, the fast path's layers split with `team`'s helper when given.
    func embed(batch texts: [String], threads: Int, team: EncoderTeam.Held?) -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let sequences = texts.map { self.tokenizer.tokenIDs($0, maxTokens: self.maxTokens) }
        let chunks = Self.chunks(sequences.map(\.count), tokens: Self.chunkTokens)
        let state = BatchState(count: texts.count)
        let work: @Sendable () -> Void = { [self] in
            var workspace = Workspace()
            while true {
                let index = state.next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < chunks.count else { break }
                let range = chunks[index]
                let vectors = self.encode(Array(sequences[range]), workspace: &workspace, team: team)
                state.results.withLock { results in
                    for (offset, vector) in vectors.enumerated() { results[range.lowerBound + offset] = vector }
                }
            }
        }
        let helpers = min(max(1, threads), chunks.count) - 1
        if helpers == 0 {
            work()
        } else {
            let group = DispatchGroup()
            for _ in 0..<helpers {
                group.enter()
                let thread = Thread {
                    work()
                    group.leave()
                }
                thread.name = "carma-encoder"
                thread.start()
            }
            work()
            group.wait()
        }
        return state.results.withLock { $0 }
    }

    /// Consecutive runs of sequences of about `tokens` tokens in all (at least one sequence each).
    static func chunks(_ lengths: [Int], tokens: Int) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var start = 0
        var total = 0
        for (index, length) in lengths.enumerated() {
            if index > start, total + length > tokens {
                chunks.append(start..<index)
                start = index
                total = 0
            }
            total += length
        }
        chunks.append(start..<lengths.count)
        return chunks
    }

    /// The shared counters of one `embed(batch:)` call.
    private final class BatchState: Sendable {
        let next = Atomic<Int>(0)
        let results: Mutex<[[Float]]>

        init(count: Int) { self.results = Mutex([[Float]](repeating: [], count: count)) }
    }

    /// Buffers one thread reuses from chunk to chunk, grown to the largest chunk seen.
    struct Workspace: ~Copyable {
        var x: [Float] = []
        var qkv: [Float] = []
        var scores: [Float] = []
        var context: [Float] = []
        var projected: [Float] = []
        var intermediate: [Float] = []
        var linearScratch: UnsafeMutableRawPointer?
        var linearScratchBytes = 0
        var attentionScratch: UnsafeMutableRawPointer?
        var attentionScratchBytes = 0

        mutating func reserve(tokens n: Int, longest: Int, configuration c: BertConfiguration, fast: FastLayer?, bf16Attention: Bool) {
            func grow(_ array: inout [Float], _ count: Int) {
                if array.count < count { array = [Float](repeating: 0, count: count) }
            }
            grow(&self.x, n * c.hidden)
            grow(&self.qkv, n * 3 * c.hidden)
            grow(&self.scores, longest * longest)
            grow(&self.context, n * c.hidden)
            grow(&self.projected, n * c.hidden)
            grow(&self.intermediate, n * c.intermediate)
            if let fast {
                let bytes = [fast.qkv, fast.attentionOutput, fast.intermediate, fast.output].map { $0.scratchBytes(rows: n) }.max() ?? 0
                if bytes > self.linearScratchBytes {
                    self.linearScratch?.deallocate()
                    self.linearScratch = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                    self.linearScratchBytes = bytes
                }
            }
            if bf16Attention {
                let bytes = FastLinear.attentionScratchBytes(tokens: longest, headSize: c.hidden / c.heads)
                if bytes > self.attentionScratchBytes {
                    self.attentionScratch?.deallocate()
                    self.attentionScratch = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                    self.attentionScratchBytes = bytes
                }
            }
        }

        deinit {
            self.linearScratch?.deallocate()
            self.attentionScratch?.deallocate()
        }
    }

    /// The embeddings of one chunk of token sequences, packed row after row.
    private func encode(_ sequences: [[Int32]], workspace w: inout Workspace, team: EncoderTeam.Held?) -> [[Float]] {
        if !self.fastLayers.isEmpty, let vectors = self.encode(sequences, fast: true, workspace: &w, team: team) { return vectors }
        // fp32, or the fast path failed (oneDNN could not run): the exact path.
        return self.encode(sequences, fast: false, workspace: &w, team: nil)!
    }

    private func encode(_ sequences: [[Int32]], fast: Bool, workspace w: inout Workspace, team: EncoderTeam.Held?) -> [[Float]]? {
        let h = self.dimensions
        let n = sequences.reduce(0) { $0 + $1.count }
        let longest = sequences.map(\.count).max() ?? 0
        w.reserve(
            tokens: n, longest: longest, configuration: self.configuration, fast: fast ? self.fastLayers.first : nil,
            bf16Attention: fast && self.bf16Attention)
        var row = 0
        for ids in sequences {
            for (position, id) in ids.enumerated() {
                let word = Int(id) * h, at = position * h, base = row * h
                for d in 0..<h {
                    w.x[base + d] = self.wordEmbeddings[word + d] + self.positionEmbeddings[at + d] + self.typeEmbedding[d]
                }
                row += 1
            }
        }
        if fast {
            w.x.withUnsafeMutableBufferPointer { x in
                FastLinear.addLayerNorm(
                    x.baseAddress!, residual: nil, rows: n, width: h, gamma: self.embeddingNorm.gamma, beta: self.embeddingNorm.beta,
                    epsilon: self.configuration.layerNormEpsilon)
            }
        } else {
            self.layerNorm(&w.x, rows: n, self.embeddingNorm)
        }
        let lengths = sequences.map(\.count)
        for index in self.layers.indices {
            if fast {
                guard self.encodeFast(&w, tokens: n, lengths: lengths, layer: self.layers[index], fast: self.fastLayers[index], team: team) else {
                    return nil
                }
            } else {
                self.encode(&w, tokens: n, lengths: lengths, layer: self.layers[index])
            }
        }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(sequences.count)
        row = 0
        for length in lengths {
            let pooled = self.card.pool(Array(w.x[(row * h)..<((row + length) * h)]), tokens: length, dimensions: h)
            row += length
            let norm = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
            vectors.append(pooled.map { $0 / max(norm, 1e-12) })
        }
        return vectors
    }

    /// Scaled dot-product attention of every head, each sequence attending only to itself: reads
    /// Q, K, V from `w.qkv` and writes `w.context`.
    private func attention(_ w: inout Workspace, lengths: [Int], fast: Bool) {
        let h = self.dimensions
        let heads = self.configuration.heads
        let headSize = h / heads
        let scale = 1 / Float(headSize).squareRoot()
        let qkvRow = 3 * h
        if fast, self.bf16Attention {
            let scratch = w.attentionScratch!
            w.qkv.withUnsafeBufferPointer { qkv in
                w.context.withUnsafeMutableBufferPointer { context in
                    var start = 0
                    for n in lengths {
                        FastLinear.attention(
                            qkv.baseAddress! + start * qkvRow, tokens: n, hidden: h, heads: heads, into: context.baseAddress! + start * h, scratch: scratch)
                        start += n
                    }
                }
            }
            return
        }
        w.qkv.withUnsafeBufferPointer { qkvBuffer in
            w.scores.withUnsafeMutableBufferPointer { scoresBuffer in
                w.context.withUnsafeMutableBufferPointer { contextBuffer in
                    let scores = scoresBuffer.baseAddress!
                    var start = 0
                    for n in lengths {
                        let qkv = qkvBuffer.baseAddress! + start * qkvRow
                        let context = contextBuffer.baseAddress! + start * h
                        for head in 0..<heads {
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(headSize), scale,
                                qkv + head * headSize, Int32(qkvRow), qkv + h + head * headSize, Int32(qkvRow), 0, scores, Int32(n))
                            if fast {
                                FastLinear.softmaxRows(scores, rows: n, columns: n)
                            } else {
                                VectorMath.softmaxRows(UnsafeMutableBufferPointer(start: scores, count: n * n), rows: n, columns: n)
                            }
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(headSize), Int32(n), 1,
                                scores, Int32(n), qkv + 2 * h + head * headSize, Int32(qkvRow), 0, context + head * headSize, Int32(h))
                        }
                        start += n
                    }
                }
            }
        }
    }

    /// One transformer layer in fp32 (OpenBLAS): the exact path.
    private func encode(_ w: inout Workspace, tokens n: Int, lengths: [Int], layer: Layer) {
        let h = self.dimensions
        let inner = self.configuration.intermediate
        // Q, K and V for every token in one GEMM: [n × h] · [3h × h]ᵀ.
        Self.linear(w.x, rows: n, inputs: h, weights: layer.qkv, bias: layer.qkvBias, outputs: 3 * h, into: &w.qkv)
        self.attention(&w, lengths: lengths, fast: false)
        Self.linear(w.context, rows: n, inputs: h, weights: layer.attentionOutput, bias: layer.attentionOutputBias, outputs: h, into: &w.projected)
        for index in 0..<(n * h) { w.x[index] += w.projected[index] }
        self.layerNorm(&w.x, rows: n, layer.attentionNorm)
        Self.linear(w.x, rows: n, inputs: h, weights: layer.intermediate, bias: layer.intermediateBias, outputs: inner, into: &w.intermediate)
        w.intermediate.withUnsafeMutableBufferPointer { VectorMath.gelu(UnsafeMutableBufferPointer(rebasing: $0[0..<(n * inner)])) }
        Self.linear(w.intermediate, rows: n, inputs: inner, weights: layer.output, bias: layer.outputBias, outputs: h, into: &w.projected)
        for index in 0..<(n * h) { w.x[index] += w.projected[index] }
        self.layerNorm(&w.x, rows: n, layer.outputNorm)
    }

    /// One transformer layer with the linear layers in bf16 or int8; false when oneDNN failed.
    private func encodeFast(_ w: inout Workspace, tokens n: Int, lengths: [Int], layer: Layer, fast: FastLayer, team: EncoderTeam.Held?) -> Bool {
        let scratch = w.linearScratch!
        let ok = w.x.withUnsafeBufferPointer { x in
            w.qkv.withUnsafeMutableBufferPointer {
                fast.qkv.forward(x.baseAddress!, rows: n, into: $0.baseAddress!, gelu: false, scratch: scratch, team: team)
            }
        }
        guard ok else { return false }
        self.attention(&w, lengths: lengths, fast: true)
        guard self.residual(&w, from: w.context, rows: n, through: fast.attentionOutput, norm: layer.attentionNorm, scratch: scratch, team: team) else {
            return false
        }
        let intermediate = w.x.withUnsafeBufferPointer { x in
            w.intermediate.withUnsafeMutableBufferPointer { inter in
                fast.intermediate.forward(x.baseAddress!, rows: n, into: inter.baseAddress!, gelu: true, scratch: scratch, team: team)
            }
        }
        guard intermediate else { return false }
        return self.residual(&w, from: w.intermediate, rows: n, through: fast.output, norm: layer.outputNorm, scratch: scratch, team: team)
    }

    /// The step that ends each half of a layer: `x = LayerNorm(x + linear(input))`. `input` is one
    /// of the workspace's buffers, passed as its own reference (no copy: nothing writes to it here).
    private func residual(
        _ w: inout Workspace, from input: [Float], rows n: Int, through linear: FastLinear, norm: Norm, scratch: UnsafeMutableRawPointer,
        team: EncoderTeam.Held?
    ) -> Bool {
        let ok = input.withUnsafeBufferPointer { source in
            w.projected.withUnsafeMutableBufferPointer { projected in
                linear.forward(source.baseAddress!, rows: n, into: projected.baseAddress!, gelu: false, scratch: scratch, team: team)
            }
        }
        guard ok else { return false }
        w.x.withUnsafeMutableBufferPointer { x in
            w.projected.withUnsafeBufferPointer { projected in
                FastLinear.addLayerNorm(
                    x.baseAddress!, residual: projected.baseAddress!, rows: n, width: self.dimensions, gamma: norm.gamma, beta: norm.beta,
                    epsilon: self.configuration.layerNormEpsilon)
            }
        }
        return true
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
