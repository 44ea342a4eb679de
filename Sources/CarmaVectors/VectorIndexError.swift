/// Why a vector index could not be made, grown, saved or loaded.
public struct VectorIndexError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case invalid
        case full
        case memory
        case io
        case damaged
    }

    let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The index has no room for another element: `reserve` first.
    public var isFull: Bool { self.code == .full }
    /// A saved index that is not whole or not ours (it is rebuilt, never used).
    public var isDamaged: Bool { self.code == .damaged }

    public var description: String { self.message }
}
