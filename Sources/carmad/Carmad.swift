import ArgumentParser
import CarmaService
import ClusterStore
import Foundation
import FragmentCore
import FragmentStore
import Logging
import MicroHTTP
import ServiceLifecycle

@main
struct Carmad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carmad",
        abstract: "CARMA fragment store: a self-healing store for memory fragments, served over HTTP.",
        subcommands: [Serve.self, Reindex.self, Migrate.self, Faults.self, Backup.self, Embed.self],
        defaultSubcommand: Serve.self)

    /// A usage error (an unknown flag, a value out of range, an unsafe combination) exits 2 with its
    /// message on standard error, as shells and service managers expect of a bad command line;
    /// ArgumentParser's own code for it is 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let logger = try self.options.bootstrapLogging()
        let files = System.raiseOpenFileLimit()
        let configuration = try self.options.configuration(openFileLimit: files.now)
        let encoder = try configuration.model?.load()
        logger.info(
            "open file limit and connection limit",
            metadata: ["process.open_files_before": "\(files.before)", "process.open_files": "\(files.now)", "process.open_files_hard": "\(files.hard)",
                       "http.max_connections": "\(configuration.service.server.maxConnections)"])
        if let encoder {
            logger.info(
                "embedding model loaded",
                metadata: [
                    "embedding.model": "\(encoder.name)", "embedding.max_tokens": "\(encoder.maxTokens)",
                    "embedding.precision": "\(encoder.precision)", "embedding.threads": "\(encoder.backgroundThreads)",
                ])
        } else {
            logger.warning("no embedding model (--embedding-model): queries rank by words and client vectors only, reconstruction by sketches")
        }
        if let file = self.options.tokenFile, let mode = (try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? Int,
            mode & 0o077 != 0
        {
            logger.warning(
                "the token file can be read by other users; chmod 600 it",
                metadata: ["auth.token_file": "\(file)", "auth.token_file_mode": "\(String(mode & 0o777, radix: 8))"])
        }
        if configuration.service.authToken == nil, System.isLoopback(address: configuration.service.server.host) == false {
            logger.warning(
                "listening beyond this machine without a token (--allow-unauthenticated): anyone who can reach the port can overwrite and delete fragments",
                metadata: ["http.host": "\(configuration.service.server.host)"])
        }
        let service: CarmaService
        do {
            let store = try configuration.backend.open(encoder: encoder, logger: logger)
            service = CarmaService(configuration: configuration.service, store: store, logger: logger)
        } catch let error as ValidationError {
            throw error
        } catch {
            logger.critical("cannot open the store", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: service.services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("carmad stopped")
    }
}

struct Reindex: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the registry from the primary and redundancy logs (after the registry was lost).",
        discussion: "Run it with the service stopped. An existing registry is kept aside as registry.sqlite3.bak-<time>.")

    @OptionGroup var options: ServerOptions

    func run() throws {
        let logger = try self.options.bootstrapLogging()
        var store = try self.options.configuration(openFileLimit: System.raiseOpenFileLimit().now).backend.embedded(for: "reindex")
        store.encoder = nil
        let summary = try FragmentStore.rebuildRegistry(configuration: store, logger: logger)
        print(
            "reindexed \(summary.fragments) fragments from \(summary.records) log records: \(summary.ok) ok, \(summary.blank) blank (queued for repair), "
                + "\(summary.reconstructed) reconstructed, \(summary.deleted) deleted (tombstones), \(summary.damagedRecords) damaged records")
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a data directory of the previous layout (a payload file per fragment) to segment logs.",
        discussion: "Run it with the service stopped. The old files are moved to <data-dir>/previous-layout/; remove them once the new store serves.")

    @OptionGroup var options: ServerOptions

    func run() throws {
        let logger = try self.options.bootstrapLogging()
        let store = try self.options.configuration(openFileLimit: System.raiseOpenFileLimit().now).backend.embedded(for: "migrate")
        let summary = try FragmentStore.migratePreviousLayout(configuration: store, logger: logger)
        print(
            "migrated \(summary.fragments) fragments: \(summary.exact) exact, \(summary.reconstructed) reconstructed, \(summary.blank) blank (queued for repair); "
                + "the old files are in \(summary.previousLayoutDirectory)")
    }
}
