/// Why a model directory could not be loaded. Every file in it is treated as untrusted: a wrong
/// size, shape, offset or value is reported, never trapped on.
public enum EmbeddingModelError: Error, Sendable, CustomStringConvertible {
    case missingFile(String)
    case unreadable(String, errno: Int32)
    case malformed(String, String)

    public var description: String {
        switch self {
        case .missingFile(let path): "model file \(path) does not exist"
        case .unreadable(let path, let errno): "cannot read model file \(path) (errno \(errno))"
        case .malformed(let path, let reason): "model file \(path) is not usable: \(reason)"
        }
    }
}
