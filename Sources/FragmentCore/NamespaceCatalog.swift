import CarmaJSON

/// Limits on what one namespace may hold; nil: no limit.
public struct NamespaceQuota: Sendable, Equatable {
    /// Live fragments.
    public var fragments: Int?
    /// UTF-8 bytes of content, summed over live fragments.
    public var bytes: Int64?

    public init(fragments: Int? = nil, bytes: Int64? = nil) {
        self.fragments = fragments
        self.bytes = bytes
    }

    public static let none = NamespaceQuota()

    /// Whether `usage` stays within the quota.
    public func allows(_ usage: NamespaceUsage) -> Bool {
        (self.fragments.map { usage.fragments <= $0 } ?? true) && (self.bytes.map { usage.bytes <= $0 } ?? true)
    }

    public var json: JSONValue {
        ["fragments": self.fragments.map { .exact(Int64($0)) } ?? .null, "bytes": self.bytes.map { .exact($0) } ?? .null]
    }
}

/// What a namespace holds now.
public struct NamespaceUsage: Sendable, Equatable {
    public var fragments: Int
    public var bytes: Int64

    public init(fragments: Int = 0, bytes: Int64 = 0) {
        self.fragments = fragments
        self.bytes = bytes
    }

    public static func + (a: NamespaceUsage, b: NamespaceUsage) -> NamespaceUsage {
        NamespaceUsage(fragments: a.fragments + b.fragments, bytes: a.bytes + b.bytes)
    }
}

/// A namespace as the catalog keeps it.
public struct NamespaceEntry: Sendable, Equatable {
    public var name: String
    public var quota: NamespaceQuota
    public var createdAt: Timestamp

    public init(name: String, quota: NamespaceQuota = .none, createdAt: Timestamp) {
        self.name = name
        self.quota = quota
        self.createdAt = createdAt
    }
}

/// What a namespace token may do.
public enum TokenScope: String, Sendable, CaseIterable {
    /// Reads of its namespace.
    case read
    /// Reads and writes of its namespace.
    case write

    /// Whether a token of this scope may do what `needed` asks.
    public func covers(_ needed: TokenScope) -> Bool {
        self == .write || needed == .read
    }
}

/// A namespace token as the catalog keeps it: never the secret, only its SHA-256.
public struct NamespaceToken: Sendable, Equatable {
    public var id: String
    public var namespace: String
    public var scope: TokenScope
    /// SHA-256 of the secret.
    public var hash: [UInt8]
    public var createdAt: Timestamp

    public init(id: String, namespace: String, scope: TokenScope, hash: [UInt8], createdAt: Timestamp) {
        self.id = id
        self.namespace = namespace
        self.scope = scope
        self.hash = hash
        self.createdAt = createdAt
    }
}

/// The namespaces of a store, their quotas and their tokens, kept durably by the backend (a journal
/// file next to the logs on one machine, tables in PostgreSQL in cluster mode). `default` always
/// exists. Every change is durable before it returns.
public protocol NamespaceCatalog: AnyObject, Sendable {
    /// A namespace, nil when unknown (`default` is always known).
    func entry(_ name: String) -> NamespaceEntry?
    /// Namespaces in name order after `after`, at most `limit`.
    func entries(after: String?, limit: Int) throws(StoreError) -> [NamespaceEntry]
    /// Creates a namespace, or sets the quota of an existing one when `quota` is given.
    /// - Returns: The entry and whether it was created.
    func create(_ name: String, quota: NamespaceQuota?) throws(StoreError) -> (entry: NamespaceEntry, created: Bool)
    /// Forgets a namespace and revokes its tokens (its fragments are the backend's to delete).
    /// Versions up to `floor` stay gone in that name for good: an import of an older export, or a
    /// deletion interrupted by a crash and finished at the next start, cannot bring them back.
    func remove(_ name: String, floor: UInt64) throws(StoreError)
    /// The highest version deleted with the namespace of this name (0: never deleted).
    func versionFloor(_ name: String) -> UInt64

    func addToken(_ token: NamespaceToken) throws(StoreError)
    /// A token by id; reflects revocations made anywhere at once.
    func token(_ id: String) -> NamespaceToken?
    func tokens(of namespace: String) throws(StoreError) -> [NamespaceToken]
    /// Revokes a token of `namespace`. - Returns: Whether there was one.
    func revokeToken(_ id: String, of namespace: String) throws(StoreError) -> Bool
}
