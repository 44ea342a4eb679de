import CarmaTesting
import ClusterStore
import FragmentCore
import FragmentStore
import Logging

/// The two backends every behaviour test runs on, as GRDB runs each test on a queue and a pool:
/// the embedded store in a temporary directory, and cluster mode on a fresh database of the shared
/// throw-away PostgreSQL.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case embedded
    case cluster

    var description: String { self.rawValue }

    /// What the store answers for `kind`.
    var kind: BackendKind {
        switch self {
        case .embedded: .embedded
        case .cluster: .cluster
        }
    }

    /// The reason a read reports for damage of `kind`. Damage in place (a flipped bit, a zeroed
    /// record: the embedded store's logs are files) reads as a checksum mismatch; a row that is
    /// gone (cluster mode) as missing.
    func reason(for kind: TestDamage) -> BlankReason {
        switch (self, kind) {
        case (_, .corrupt), (.embedded, _): .checksumMismatch
        case (.cluster, _): .missing
        }
    }

    /// The same settings for both, so that the same expectations hold: no payload cache (a damaged
    /// record is found by the next read), 64 KiB of content at most.
    static let limits = FragmentLimits(maxContentBytes: 65536)
    static let logger = Logger(label: "carma.backend-tests")

    /// Opens a store on this backend, in `directory` or on `database`, keeping `retention`.
    func open(directory: TemporaryDirectory, database: TestDatabase?, retention: Retention = Retention()) throws -> any FragmentBackend {
        switch self {
        case .embedded:
            return try FragmentStore(
                configuration: StoreConfiguration(dataDirectory: directory.path, cacheBytes: 0, limits: Self.limits, retention: retention), logger: Self.logger)
        case .cluster:
            // Four connections: tests run in parallel, each on its own database of one server.
            return try ClusterStore(
                configuration: ClusterConfiguration(
                    databaseURL: database!.url, poolSize: 4, timeout: .seconds(10), nodeName: "test-node", cacheBytes: 0, limits: Self.limits,
                    retention: retention),
                logger: Self.logger)
        }
    }
}
