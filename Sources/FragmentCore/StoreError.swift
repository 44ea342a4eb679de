/// Why a store operation did not happen. Nothing was changed when one is thrown.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The id is unknown or was deleted.
        case notFound
        /// The client's precondition (`If-Match`, `If-None-Match`) does not hold.
        case preconditionFailed
        /// The input breaks a rule; `field` names the offending field.
        case invalid
        /// No space left for the payload or the registry.
        case diskFull
        /// The data directory cannot be written.
        case readOnly
        /// Any other I/O failure.
        case io
        /// The store is closing.
        case closed
        /// A passing condition (out of descriptors or memory): try again shortly; nothing changed.
        case unavailable
        /// Another process holds the data directory.
        case locked
        /// The data directory is in the previous layout: `carmad migrate` converts it.
        case previousLayout
        /// What the request would write contradicts what is stored (an import of a stored version
        /// with other content); `fragmentIndex` says which of the request's fragments.
        case conflict
        /// The write would take its namespace past a quota; `quota` and `usage` say which.
        case quotaExceeded
        /// The namespace does not exist (or was deleted while the write waited).
        case namespaceNotFound
    }

    public let code: Code
    public let message: String
    public let field: String?
    /// The current version, for a failed precondition.
    public let currentVersion: UInt64?
    /// Which fragment of a batch (an import) the error is about, counted from 0.
    public var fragmentIndex: Int? = nil
    /// For `quotaExceeded`: the namespace's quota and its usage with the write.
    public var quota: (limit: NamespaceQuota, usage: NamespaceUsage)? = nil

    public var description: String { self.message }

    package init(_ code: Code, _ message: String, field: String? = nil, currentVersion: UInt64? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.currentVersion = currentVersion
    }

    public static func invalid(field: String, _ message: String) -> StoreError {
        StoreError(.invalid, message, field: field)
    }

    package static func notFound(_ id: String) -> StoreError {
        StoreError(.notFound, "no fragment '\(FragmentKey.local(id))'")
    }

    package static func precondition(_ message: String, current: UInt64?) -> StoreError {
        StoreError(.preconditionFailed, message, currentVersion: current)
    }

    package static let closed = StoreError(.closed, "the store is closed")

    /// An imported fragment whose version is stored with other content.
    package static func importConflict(_ id: String, version: UInt64, index: Int) -> StoreError {
        var error = StoreError(
            .conflict, "'\(FragmentKey.local(id))' version \(version) is already stored with other content: a version names one content", field: "version")
        error.fragmentIndex = index
        return error
    }

    package static func namespaceNotFound(_ name: String) -> StoreError {
        StoreError(.namespaceNotFound, "no namespace '\(name)'")
    }

    package static func quotaExceeded(_ name: String, limit: NamespaceQuota, usage: NamespaceUsage) -> StoreError {
        let over = limit.fragments.map { usage.fragments > $0 } == true
            ? "\(usage.fragments) fragments (the quota is \(limit.fragments!))"
            : "\(usage.bytes) bytes of content (the quota is \(limit.bytes ?? 0))"
        var error = StoreError(.quotaExceeded, "the write would take namespace '\(name)' to \(over); nothing was written")
        error.quota = (limit, usage)
        return error
    }

    public static func unavailable(_ message: String) -> StoreError {
        StoreError(.unavailable, message)
    }
}
