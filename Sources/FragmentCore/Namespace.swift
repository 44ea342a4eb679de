/// Namespaces: the unit of isolation. A fragment is known inside a store by its *key*, which joins
/// its namespace and its id with `/` (a byte no id or name may hold); the namespace `default` keeps
/// the bare id, so a store from before namespaces holds the keys of `default` already.
///
/// Inside a backend and the dream engine everything is a key: the index, the registry, the repair
/// queue, links and reconstruction sources. Records on disk, and so the bodies clients read, hold the
/// namespace apart and the ids and links local (`FragmentRecord.encode`). The service turns keys back
/// into local ids in everything else it answers.
public enum Namespace {
    /// The namespace of every route without the `/namespaces/{ns}` prefix.
    public static let `default` = "default"

    /// Why `name` is not a namespace name (the id rules); nil when it is one.
    public static func validate(_ name: String) -> String? {
        FragmentID.validate(name).map { "a namespace name follows the id rules: \($0)" }
    }
}

public enum FragmentKey {
    /// A namespace name, the separator and an id.
    public static let maxLength = 2 * FragmentID.maxLength + 1
    static let separator = UInt8(ascii: "/")

    /// The key of `id` in `namespace`.
    public static func make(_ namespace: String, _ id: String) -> String {
        namespace == Namespace.default ? id : namespace + "/" + id
    }

    /// The namespace a key belongs to.
    public static func namespace(of key: String) -> String {
        guard let slash = key.utf8.firstIndex(of: Self.separator) else { return Namespace.default }
        return String(key[..<slash])
    }

    /// The id of a key inside its namespace.
    public static func local(_ key: String) -> String {
        guard let slash = key.utf8.firstIndex(of: Self.separator) else { return key }
        return String(key[key.utf8.index(after: slash)...])
    }

    /// The namespace and local id of a key.
    public static func split(_ key: String) -> (namespace: String, id: String) {
        (Self.namespace(of: key), Self.local(key))
    }

    /// The key prefix of a namespace's keys (empty for `default`, whose keys have no separator).
    public static func prefix(_ namespace: String) -> String {
        namespace == Namespace.default ? "" : namespace + "/"
    }

    /// Why `key` is not a key (either half breaks the id rules, or it spells `default` out); nil when
    /// it is one.
    public static func validate(_ key: String) -> String? {
        let (namespace, id) = Self.split(key)
        if key.utf8.contains(Self.separator) {
            if namespace == Namespace.default { return "the namespace default has keys without a prefix" }
            if let reason = Namespace.validate(namespace) { return reason }
        }
        return FragmentID.validate(id)
    }

    public static func isValid(_ key: String) -> Bool {
        Self.validate(key) == nil
    }

    /// Whether `key` lies in `namespace`.
    public static func belongs(_ key: String, to namespace: String) -> Bool {
        Self.namespace(of: key) == namespace
    }
}

extension FragmentInput {
    /// The input with its links (local ids, as a client sends them) turned into keys of `namespace`.
    public func qualified(in namespace: String) -> FragmentInput {
        var input = self
        input.links = self.links.map { FragmentKey.make(namespace, $0) }
        return input
    }
}

extension ImportedFragment {
    /// The fragment of an export line (local ids) as keys of `namespace`: the namespace of the
    /// import's route, whatever the line says.
    public func qualified(in namespace: String) -> ImportedFragment {
        var fragment = self
        fragment.id = FragmentKey.make(namespace, self.id)
        switch self.payload {
        case .exact(let input):
            fragment.payload = .exact(input.qualified(in: namespace))
        case .reconstructed(let input, var reconstruction):
            reconstruction.sources = reconstruction.sources.map { FragmentKey.make(namespace, $0) }
            fragment.payload = .reconstructed(input.qualified(in: namespace), reconstruction)
        case .blank(let links, let tags, let size, let reason, let lostAt):
            fragment.payload = .blank(links: links.map { FragmentKey.make(namespace, $0) }, tags: tags, size: size, reason: reason, lostAt: lostAt)
        }
        return fragment
    }
}

extension FragmentRow {
    /// The row as a client of its namespace sees it: id and links local.
    public var localized: FragmentRow {
        var row = self
        row.id = FragmentKey.local(self.id)
        row.links = self.links.map(FragmentKey.local)
        return row
    }
}
