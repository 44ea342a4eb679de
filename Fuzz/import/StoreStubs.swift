// Stand-ins for the storage engine's types that the import decoder's files name but never reach
// (the fuzz target compiles those files without the engine, its C shims and SQLite).

struct FileError: Error, CustomStringConvertible {
    enum Kind { case noSpace, readOnly, transient, other }
    let kind: Kind
    var description: String { "\(self.kind)" }
}

struct SQLiteError: Error, CustomStringConvertible {
    var isFull: Bool { false }
    var isReadOnly: Bool { false }
    var isPreviousLayout: Bool { false }
    var description: String { "sqlite" }
}

/// The engine's only member the decoder uses.
public enum FragmentStore {
    package static let versionCeiling: UInt64 = 1 << 62
}
