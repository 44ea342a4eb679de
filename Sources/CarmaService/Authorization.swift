import Crypto
import FragmentCore
import MicroHTTP

/// What a route asks of its caller.
enum Access: Sendable {
    /// Reading a namespace (open unless reads are protected).
    case read
    /// Writing a namespace.
    case write
    /// Everything global: cycles, the namespace catalog, tokens, protected metrics.
    case admin

    var scope: TokenScope? {
        switch self {
        case .read: .read
        case .write: .write
        case .admin: nil
        }
    }
}

/// Who sent a request.
enum Caller: Sendable, Equatable {
    /// The admin token, or anyone when no token is configured.
    case admin
    /// A namespace token.
    case namespace(String, TokenScope)
    /// No `Authorization` header.
    case anonymous
}

/// Bearer tokens: the admin token (`--auth-token-file`) and namespace tokens (`carma_<id>_<secret>`,
/// stored as the SHA-256 of the secret). Checked on the request head, before any body is read.
/// Secrets are compared in constant time and never logged.
struct Authorization: Sendable {
    /// Nil: no token configured, every request may do everything.
    let adminToken: [UInt8]?
    let protectReads: Bool
    let catalog: any NamespaceCatalog

    static let tokenPrefix = "carma_"

    init(adminToken: String?, protectReads: Bool, catalog: any NamespaceCatalog) {
        self.adminToken = adminToken.map { Array($0.utf8) }
        self.protectReads = protectReads
        self.catalog = catalog
    }

    var enabled: Bool { self.adminToken != nil }

    /// The caller, or the 401 for a token that is not one.
    func caller(_ request: HTTPRequest) -> Result<Caller, HTTPError> {
        guard let admin = self.adminToken else { return .success(.admin) }
        guard let header = request.headers["Authorization"] else { return .success(.anonymous) }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return .failure(Self.unauthorized) }
        let presented = Array(header.utf8.dropFirst(7))
        if Self.constantTimeEqual(presented, admin) { return .success(.admin) }
        if let (id, secret) = Self.parse(presented), let token = self.catalog.token(id),
            Self.constantTimeEqual(Array(SHA256.hash(data: secret)), token.hash)
        {
            return .success(.namespace(token.namespace, token.scope))
        }
        return .failure(Self.unauthorized)
    }

    /// Whether `caller` may do `access` on `namespace` (nil: a global route); the answer otherwise.
    /// A namespace token anywhere but its own namespace gets exactly the unknown namespace's answer.
    func check(_ caller: Caller, _ access: Access, namespace: String?) -> HTTPResponse? {
        switch caller {
        case .admin:
            return nil
        case .anonymous:
            if access == .read, !self.protectReads { return nil }
            return Self.unauthorized.response
        case .namespace(let own, let scope):
            guard let namespace else { return access == .read && !self.protectReads ? nil : .adminOnly }
            guard namespace == own else { return .namespaceNotFound }
            guard let needed = access.scope else { return .adminOnly }
            return scope.covers(needed) ? nil : .problem(403, type: "forbidden", title: "Forbidden", detail: "this token may only read")
        }
    }

    /// A preflight for a route: the caller must be allowed `access`; on a namespace route (`{ns}` in
    /// the path, or `default` without it) the namespace must exist for anything but an admin's write.
    func preflight(_ access: Access, namespaced: Bool) -> HTTPPreflight {
        { request in
            let caller: Caller
            switch self.caller(request) {
            case .success(let found): caller = found
            case .failure(let error): return error.response
            }
            guard namespaced else { return self.check(caller, access, namespace: nil) }
            let namespace = request.pathParameters["ns"] ?? Namespace.default
            if let reason = Namespace.validate(namespace) {
                return .badRequest("invalid-namespace", "Invalid namespace", detail: reason)
            }
            if let denied = self.check(caller, access, namespace: namespace) { return denied }
            // `default` always exists (no catalog look-up on the unprefixed routes' hot path), and an
            // admin's write may create its namespace (the handler does, once the body is valid).
            if namespace == Namespace.default || caller == .admin && access != .read { return nil }
            return self.catalog.entry(namespace) == nil ? .namespaceNotFound : nil
        }
    }

    static let unauthorized = HTTPError(
        .problem(
            401, type: "unauthorized", title: "Unauthorized", detail: "this request needs Authorization: Bearer <token>",
            headers: ["WWW-Authenticate": "Bearer realm=\"carma\""]))

    /// `carma_<id>_<secret>` → id and secret.
    static func parse(_ token: [UInt8]) -> (id: String, secret: [UInt8])? {
        let prefix = Array(Self.tokenPrefix.utf8)
        guard token.count > prefix.count, Array(token.prefix(prefix.count)) == prefix else { return nil }
        let rest = token.dropFirst(prefix.count)
        guard let separator = rest.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        let id = rest[..<separator]
        let secret = rest[rest.index(after: separator)...]
        guard !id.isEmpty, id.count <= 64, !secret.isEmpty else { return nil }
        return (String(decoding: id, as: UTF8.self), Array(secret))
    }

    /// A new token of a namespace: what the catalog keeps, and the string shown once.
    static func issue(namespace: String, scope: TokenScope) -> (record: NamespaceToken, token: String) {
        let id = "tok" + RandomText.base32(16)
        let secret = RandomText.base32(40)
        let record = NamespaceToken(
            id: id, namespace: namespace, scope: scope, hash: Array(SHA256.hash(data: Array(secret.utf8))), createdAt: .now)
        return (record, Self.tokenPrefix + id + "_" + secret)
    }

    /// Compares in time that depends only on the lengths, not on where the bytes differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let count = max(a.count, b.count)
        for index in 0..<count {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// Random lowercase base32 text (a–z, 2–7) from the system's secure generator: token ids and
/// secrets, and the ids a batch write makes.
enum RandomText {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func base32(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<count).map { _ in Self.alphabet[Int(generator.next() & 31)] }, as: UTF8.self)
    }
}
