import CEncoderKernels

/// One linear layer of the reduced-precision path: weights kept in int8 or bf16 in oneDNN's
/// layout, run by CEncoderKernels. This file holds the encoder's calls into that C target, besides
/// the CPU check (`EmbeddingPrecision.isAvailable`) and the thread priority (`BackgroundThread`).
///
/// `@unchecked Sendable`: the C layer is immutable after creation and its forward call keeps all
/// per-call state in the caller's scratch and a per-thread oneDNN stream.
final class FastLinear: @unchecked Sendable {
    private let layer: OpaquePointer
    let inputs: Int
    let outputs: Int

    init(precision: EmbeddingPrecision, weights: [Float], bias: [Float], inputs: Int, outputs: Int) throws(EmbeddingModelError) {
        let code = precision == .int8 ? CARMA_PRECISION_INT8 : CARMA_PRECISION_BF16
        var message = [CChar](repeating: 0, count: 256)
        let made = weights.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                carma_linear_create(Int32(code), Int32(inputs), Int32(outputs), w.baseAddress, b.baseAddress, &message, message.count)
            }
        }
        guard let made else {
            throw .unsupported("cannot prepare the \(precision) encoder: " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.layer = made
        self.inputs = inputs
        self.outputs = outputs
    }

    deinit { carma_linear_destroy(self.layer) }

    func scratchBytes(rows: Int) -> Int { carma_linear_scratch_bytes(self.layer, Int32(rows)) }

    /// `output = input · Wᵀ + bias` (then GELU) over `rows` rows; false when oneDNN failed (the
    /// encoder then runs the chunk in fp32). With a `team` the caller holds, its helper computes
    /// half the columns.
    func forward(
        _ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>, gelu: Bool, scratch: UnsafeMutableRawPointer,
        team: EncoderTeam.Held?
    ) -> Bool {
        carma_linear_forward(self.layer, input, Int32(rows), output, gelu ? 1 : 0, scratch, team?.handle) == 0
    }

    /// x = LayerNorm(x + residual) · gamma + beta, rows of `width`.
    static func addLayerNorm(_ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, width: Int, gamma: [Float], beta: [Float], epsilon: Float) {
        carma_add_layer_norm(x, residual, Int32(rows), Int32(width), gamma, beta, epsilon)
    }

    /// Whether `attention` can run here: AVX512_BF16 and a head size that is a multiple of 16.
    static func bf16AttentionRuns(headSize: Int) -> Bool {
        headSize % 16 == 0 && carma_cpu_supports(Int32(CARMA_PRECISION_BF16)) == 1
    }

    static func attentionScratchBytes(tokens: Int, headSize: Int) -> Int {
        carma_attention_scratch_bytes(Int32(tokens), Int32(headSize))
    }

    /// Attention of one sequence in bf16 (every head): Q, K, V from `qkv` rows, into `context` rows.
    static func attention(
        _ qkv: UnsafePointer<Float>, tokens: Int, hidden: Int, heads: Int, into context: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer
    ) {
        carma_attention_bf16(qkv, Int32(tokens), Int32(hidden), Int32(heads), context, scratch)
    }

    static func softmaxRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        carma_softmax_rows(values, Int32(rows), Int32(columns))
    }
}

/// The helper thread that lends a foreground embedding the second core (`carma_team`): one caller
/// at a time holds it, and each linear layer's two column halves then run side by side. Asleep,
/// using no CPU, while nobody holds it.
///
/// `@unchecked Sendable`: the C team hands itself out to one holder at a time (an atomic flag).
final class EncoderTeam: @unchecked Sendable {
    private let team: OpaquePointer

    /// The team while a caller holds it.
    struct Held: @unchecked Sendable {
        fileprivate let handle: OpaquePointer
    }

    init?() {
        guard let team = carma_team_create() else { return nil }
        self.team = team
    }

    deinit { carma_team_destroy(self.team) }

    /// Runs `body` with the team if it is free, else with nil (the caller works alone).
    func withHelper<T>(_ body: (Held?) -> T) -> T {
        guard carma_team_acquire(self.team) == 1 else { return body(nil) }
        defer { carma_team_release(self.team) }
        return body(Held(handle: self.team))
    }
}
