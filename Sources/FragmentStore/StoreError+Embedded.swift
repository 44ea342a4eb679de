import FragmentCore

// The embedded backend's failures (files, SQLite, an old layout) as store errors.

extension StoreError {
    static func previousLayout(_ directory: String = "the data directory") -> StoreError {
        StoreError(
            .previousLayout,
            "\(directory) holds the previous storage layout (a payload file per fragment); convert it with `carmad migrate --data-dir \(directory)` (add --redundancy-dir if it is elsewhere)")
    }

    static func from(_ error: FileError, doing action: String) -> StoreError {
        switch error.kind {
        case .noSpace: return StoreError(.diskFull, "no space left to \(action)")
        case .readOnly: return StoreError(.readOnly, "the data directory is read-only; cannot \(action)")
        case .transient: return StoreError(.unavailable, "temporarily unable to \(action): \(error)")
        default: return StoreError(.io, "cannot \(action): \(error)")
        }
    }

    static func from(_ error: SQLiteError, doing action: String) -> StoreError {
        if error.isFull { return StoreError(.diskFull, "no space left to \(action)") }
        if error.isReadOnly { return StoreError(.readOnly, "the registry is read-only; cannot \(action)") }
        if error.isPreviousLayout { return .previousLayout() }
        return StoreError(.io, "cannot \(action): \(error)")
    }
}
