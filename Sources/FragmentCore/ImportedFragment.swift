import CarmaJSON

/// A fragment from an export, to be written at its own version.
public struct ImportedFragment: Sendable, Equatable {
    public var id: String
    public var version: UInt64
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var payload: Payload

    public enum Payload: Sendable, Equatable {
        /// The exact fragment.
        case exact(FragmentInput)
        /// A reconstruction, flagged as such.
        case reconstructed(FragmentInput, Reconstruction)
        /// Known without content: what the exporting store still knew of it.
        case blank(links: [String], tags: [String], size: Int, reason: BlankReason, lostAt: Timestamp?)
    }

    public init(id: String, version: UInt64, createdAt: Timestamp, updatedAt: Timestamp, payload: Payload) {
        self.id = id
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.payload = payload
    }

    /// Why a batch of imported fragments cannot be written (either backend); nil when it can.
    package static func check(_ fragments: [ImportedFragment], limits: FragmentLimits) -> StoreError? {
        for fragment in fragments {
            if let reason = FragmentKey.validate(fragment.id) {
                return .invalid(field: "id", "\(FragmentKey.local(fragment.id)): \(reason)")
            }
            let namespace = FragmentKey.namespace(of: fragment.id)
            if fragment.links.contains(where: { !FragmentKey.belongs($0, to: namespace) }) {
                return .invalid(field: "links", "\(FragmentKey.local(fragment.id)): a link names another namespace")
            }
            guard fragment.version > 0, fragment.version < FragmentRecord.versionCeiling else {
                return .invalid(field: "version", "\(fragment.id): version \(fragment.version) is out of range")
            }
            do {
                // An expiry already past is kept as exported (the fragment is then gone, as it would
                // be in the exporting store): an import must not refuse a file for aging.
                try fragment.input?.validate(limits, now: Timestamp(milliseconds: 0))
            } catch {
                return error
            }
        }
        return nil
    }

    /// The fragment's links, whatever it holds.
    package var links: [String] {
        switch self.payload {
        case .exact(let input), .reconstructed(let input, _): input.links
        case .blank(let links, _, _, _, _): links
        }
    }

    /// The record an exact or reconstructed fragment is stored as (nil for a blank).
    package var record: FragmentRecord? {
        switch self.payload {
        case .exact(let input):
            return FragmentRecord(id: self.id, version: self.version, input: input, createdAt: self.createdAt, updatedAt: self.updatedAt)
        case .reconstructed(let input, let reconstruction):
            return FragmentRecord(
                id: self.id, version: self.version, input: input, createdAt: self.createdAt, updatedAt: self.updatedAt, reconstruction: reconstruction)
        case .blank:
            return nil
        }
    }
}

extension ImportedFragment {
    /// The client fields of an exact or reconstructed fragment.
    package var input: FragmentInput? {
        switch self.payload {
        case .exact(let input), .reconstructed(let input, _): return input
        case .blank: return nil
        }
    }
}
