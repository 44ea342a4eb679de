import FragmentCore

/// Why a backup could not be taken, or a backup directory not be read. Nothing in the source store
/// is changed either way.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The source is not a data directory this carmad can back up.
        case source
        /// The backup directory cannot be used (overlaps the store, locked by another backup).
        case destination
        /// Reading the source or writing the backup failed.
        case io
    }

    public let code: Code
    public let message: String

    public var description: String { self.message }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    static func io(_ error: FileError, doing action: String) -> BackupError {
        BackupError(.io, "cannot \(action): \(error)")
    }

    static func io(_ error: SQLiteError, doing action: String) -> BackupError {
        BackupError(.io, "cannot \(action): \(error)")
    }
}
