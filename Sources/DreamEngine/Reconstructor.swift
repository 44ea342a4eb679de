import FragmentCore

/// Rebuilds a lost fragment's text from what survives around it: the recovery tier used when no
/// exact copy is left. Implementations must be deterministic for the same inputs and bounded in time.
public protocol Reconstructor: Sendable {
    /// A method name recorded with every reconstruction, e.g. `context-extractive-v1`.
    var method: String { get }

    /// The rebuilt text with its confidence and sources, or nil when nothing usable survives.
    func reconstruct(_ target: RepairTarget, from store: any ContextSource) -> RebuiltFragment?
}

/// What the engine works on: a store it can repair, whose surviving fragments reconstruction reads.
public typealias DreamStore = RepairStore & ContextSource
