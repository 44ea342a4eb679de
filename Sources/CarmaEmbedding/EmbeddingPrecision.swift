import CEncoderKernels

/// The arithmetic the encoder's linear layers run in (measured in docs/decisions.md, "Encoder
/// precision"):
/// - `fp32`: OpenBLAS single precision, the exact path the numpy reference checks.
/// - `bf16`: oneDNN over AVX512_BF16, about 2× fp32; vectors agree with fp32 to a cosine of 0.99999.
/// - `int8`: oneDNN over AVX-512 VNNI, weights int8 per output channel, activations int8 per token
///   row; about 3.5× fp32 per product; vectors agree with fp32 to a mean cosine of 0.998.
/// - `auto`: int8 where the CPU has VNNI, else fp32.
public enum EmbeddingPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    case auto
    case fp32
    case bf16
    case int8

    public var description: String { self.rawValue }

    /// Whether this CPU has what the precision's kernels need (`auto` and `fp32` always run).
    public var isAvailable: Bool {
        switch self {
        case .auto, .fp32: true
        case .bf16: carma_cpu_supports(Int32(CARMA_PRECISION_BF16)) == 1
        case .int8: carma_cpu_supports(Int32(CARMA_PRECISION_INT8)) == 1
        }
    }

    /// `auto` made concrete for this CPU; the others as they are.
    public var resolved: EmbeddingPrecision {
        guard self == .auto else { return self }
        return EmbeddingPrecision.int8.isAvailable ? .int8 : .fp32
    }
}
