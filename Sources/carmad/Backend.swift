import ArgumentParser
import CarmaEmbedding
import CarmaService
import ClusterStore
import FragmentCore
import FragmentStore
import Logging

/// Which backend carmad serves from, with the settings only that backend has. The settings both
/// share (cache, limits, history retention) are in `SharedStoreSettings`; the model is loaded by the
/// command that serves, not while the flags are read.
enum Backend {
    /// Segment logs and SQLite on one machine (the default).
    case embedded(StoreConfiguration)
    /// PostgreSQL, shared by several carmad nodes (`--database-url`).
    case cluster(ClusterConfiguration)

    /// Opens the store this backend describes, with `encoder` as the built-in model (nil: words only).
    func open(encoder: SentenceEncoder?, logger: Logger) throws -> any FragmentBackend {
        switch self {
        case .embedded(var configuration):
            configuration.encoder = encoder
            return try FragmentStore(configuration: configuration, logger: logger)
        case .cluster(var configuration):
            configuration.encoder = encoder
            logger.info(
                "cluster mode",
                metadata: ["database.url": "\(configuration.redactedURL)", "node.name": "\(configuration.nodeName)", "database.pool": "\(configuration.poolSize)"])
            return try ClusterStore(configuration: configuration, logger: logger)
        }
    }

    /// The embedded store's configuration, for the commands that work on its files (reindex, migrate).
    func embedded(for command: String) throws -> StoreConfiguration {
        guard case .embedded(let configuration) = self else {
            throw ValidationError("carmad \(command) works on an embedded store's files; in cluster mode PostgreSQL keeps the registry")
        }
        return configuration
    }
}

/// Settings both backends take from the same flags.
struct SharedStoreSettings {
    var cacheBytes: Int
    var limits: FragmentLimits
    var retention: Retention
}

/// Where the built-in model is, when carmad runs with one.
struct ModelChoice {
    var directory: String
    var maxTokens: Int
    var precision: EmbeddingPrecision
    var backgroundThreads: Int

    func load() throws -> SentenceEncoder {
        do {
            return try SentenceEncoder(directory: self.directory, maxTokens: self.maxTokens, precision: self.precision, backgroundThreads: self.backgroundThreads)
        } catch {
            throw ValidationError("cannot load the embedding model from \(self.directory): \(error)")
        }
    }
}

/// Everything the flags and the environment describe: the service's settings, the backend, the model.
struct CarmadConfiguration {
    var service: ServiceConfiguration
    var backend: Backend
    var model: ModelChoice?
}
