/// A client's condition on the version it replaces or deletes.
public struct WritePrecondition: Sendable, Equatable {
    /// `If-Match`: the current version must be one of these (`nil` means no condition; `[]` with
    /// `matchAny` means `*`, any existing version).
    public var ifMatch: [UInt64]?
    public var matchAny: Bool
    /// `If-None-Match: *`: the fragment must not exist yet.
    public var ifNoneMatchAny: Bool

    public init(ifMatch: [UInt64]? = nil, matchAny: Bool = false, ifNoneMatchAny: Bool = false) {
        self.ifMatch = ifMatch
        self.matchAny = matchAny
        self.ifNoneMatchAny = ifNoneMatchAny
    }

    public static let none = WritePrecondition()

    package func check(_ current: FragmentRow?, id: String) -> StoreError? {
        if self.ifNoneMatchAny, let current {
            return .precondition("'\(FragmentKey.local(id))' already exists (version \(current.version))", current: current.version)
        }
        if self.matchAny, current == nil {
            return .precondition("'\(FragmentKey.local(id))' does not exist", current: nil)
        }
        if let versions = self.ifMatch, !self.matchAny {
            guard let current, versions.contains(current.version) else {
                return .precondition("'\(FragmentKey.local(id))' is not at version \(versions.map(String.init).joined(separator: " or "))", current: current?.version)
            }
        }
        return nil
    }
}

/// The result of a durable write.
public struct PutOutcome: Sendable {
    /// Whether the fragment did not exist before.
    public var created: Bool
    /// Whether nothing was written: the fragment already held this input (a batch's retry).
    public var unchanged: Bool
    public var fragment: ServedFragment

    package init(created: Bool, unchanged: Bool = false, fragment: ServedFragment) {
        self.created = created
        self.unchanged = unchanged
        self.fragment = fragment
    }
}

extension FragmentInput {
    /// Why a PUT of `input` at `id` cannot be stored under `limits` (either backend); nil when it can.
    package static func check(_ id: String, _ input: FragmentInput, limits: FragmentLimits) -> StoreError? {
        if let reason = FragmentKey.validate(id) {
            return .invalid(field: "id", reason)
        }
        // Links resolve inside their namespace: a key naming another one is refused, whatever the
        // caller checked before.
        let namespace = FragmentKey.namespace(of: id)
        if let stray = input.links.first(where: { !FragmentKey.belongs($0, to: namespace) }) {
            return .invalid(field: "links", "link '\(FragmentKey.local(stray).prefix(64))' is not an id")
        }
        do {
            try input.validate(limits, now: .now)
        } catch {
            return error
        }
        return nil
    }

}
