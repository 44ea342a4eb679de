/// The state of a fragment the store knows.
public enum FragmentStatus: String, Sendable, CaseIterable, Codable {
    /// The content is present and its checksum matches.
    case ok
    /// Known, but the payload is missing or corrupt; answered with a stub until it is rebuilt.
    case blank
    /// Rebuilt approximately from surviving context; not byte-exact, and flagged as such.
    case reconstructed

    /// A dense index for per-status counters.
    package var slot: Int {
        switch self {
        case .ok: return 0
        case .blank: return 1
        case .reconstructed: return 2
        }
    }
}

/// Why a fragment turned blank.
public enum BlankReason: String, Sendable, CaseIterable, Codable {
    /// The record's segment file is gone.
    case missing
    /// The record is there but does not verify (checksum, id, version, kind or length).
    case checksumMismatch = "checksum_mismatch"
    /// The record could not be read (an I/O error, or its segment is not a readable file).
    case unreadable
}

/// How damage was found.
public enum Detection: String, Sendable, Codable {
    /// A client read the fragment.
    case read
    /// The background scrub verified it.
    case scrub
    /// The registry was rebuilt from files and the payload was not among them.
    case reindex
}
