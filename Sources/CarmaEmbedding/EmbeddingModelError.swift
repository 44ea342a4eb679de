/// Why a model directory could not be loaded. Every file in it is treated as untrusted: a wrong
/// size, shape, offset or value is reported, never trapped on.
public enum EmbeddingModelError: Error, Sendable, CustomStringConvertible {
    case missingFile(String)
    case unreadable(String, errno: Int32)
    case malformed(String, String)
    /// The precision asked for cannot run here (the CPU lacks the instructions, or oneDNN failed).
    case unsupported(String)

    public var description: String {
        switch self {
        case .missingFile(let path): "model file \(path) does not exist"
        case .unreadable(let path, let errno): "cannot read model file \(path) (errno \(errno))"
        case .malformed(let path, let reason): "model file \(path) is not usable: \(reason)"
        case .unsupported(let reason): reason
        }
    }
}
