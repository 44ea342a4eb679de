
/// What an import did with one fragment.
public enum ImportOutcome: String, Sendable {
    /// Written at its version: the store had an older version or none.
    case imported
    /// The store already has this version: nothing written (a second run of the same import).
    case unchanged
    /// The store has a newer version: nothing written.
    case superseded
}
