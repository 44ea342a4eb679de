/// The namespace a client works in, and the routes of its fragments.
///
/// carmad serves every fragment-scoped route twice: unprefixed (the namespace `default`) and under
/// `/namespaces/{name}`. `path(_:)` turns an unprefixed route into the namespace's own; `default`
/// keeps the unprefixed routes (the same data as `/namespaces/default/...`, and the only form a
/// carmad from before namespaces knows). Global routes (`/dream`, `/metrics`, `/readyz`,
/// `/namespaces`) are never prefixed: callers pass them to the API as they are.
public struct CarmaNamespace: Sendable, Hashable, CustomStringConvertible {
    /// The name of the namespace every unprefixed route uses.
    public static let defaultName = "default"
    /// The namespace `default`: routes unprefixed.
    public static let `default` = CarmaNamespace(unchecked: defaultName)
    /// Longest name, as for fragment ids.
    public static let maxLength = 200

    public let name: String

    /// A namespace by name; throws when the name breaks the id rules.
    public init(_ name: String) throws(NamespaceNameError) {
        if let reason = Self.validate(name) { throw NamespaceNameError(name: name, reason: reason) }
        self.name = name
    }

    private init(unchecked name: String) {
        self.name = name
    }

    /// Why `name` is not a namespace name, or nil if it is one. The rules are the fragment ids'
    /// (FragmentCore's `FragmentID.validate`): 1 to 200 characters of `[A-Za-z0-9._~-]`, not
    /// starting with `.`. Every such name is a path segment as it is (no byte needs encoding).
    public static func validate(_ name: String) -> String? {
        let utf8 = name.utf8
        if utf8.isEmpty { return "a namespace name must not be empty" }
        if utf8.count > maxLength { return "a namespace name may have at most \(maxLength) characters" }
        if utf8.first == UInt8(ascii: ".") { return "a namespace name must not start with '.'" }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "-"):
                continue
            default:
                return "a namespace name may contain only letters, digits and . _ ~ -"
            }
        }
        return nil
    }

    public var isDefault: Bool { self.name == Self.defaultName }

    /// What goes before a fragment-scoped route: empty for `default`, else `/namespaces/{name}`.
    public var prefix: String {
        self.isDefault ? "" : "/namespaces/" + self.name
    }

    /// The namespace's form of an unprefixed fragment-scoped route (`/fragments/a`, `/query`,
    /// `/export`, `/fragments?limit=5`, ...), which starts with `/`.
    public func path(_ route: String) -> String {
        precondition(route.hasPrefix("/"), "a route starts with '/'")
        return self.prefix + route
    }

    /// The namespace's own resource (`GET`, `PUT`, `DELETE /namespaces/{name}`), plus `suffix`.
    public func resource(_ suffix: String = "") -> String {
        "/namespaces/" + self.name + suffix
    }

    public var description: String { self.name }
}

/// A namespace name that breaks the id rules.
public struct NamespaceNameError: Error, Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let reason: String

    public var description: String {
        "invalid namespace name '\(self.name.count > 64 ? String(self.name.prefix(64)) + "…" : self.name)': \(self.reason) (1–200 characters of A-Z a-z 0-9 . _ ~ -, not starting with '.')"
    }
}
