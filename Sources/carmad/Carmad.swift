import ArgumentParser
import CarmaService
import Foundation
import FragmentStore
import Logging
import ServiceLifecycle

@main
struct Carmad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carmad",
        abstract: "CARMA fragment store: a self-healing store for memory fragments, served over HTTP.",
        subcommands: [Serve.self, Reindex.self, Migrate.self, Faults.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let logger = try self.options.bootstrapLogging()
        let configuration = try self.options.configuration()
        let service: CarmaService
        do {
            service = try CarmaService(configuration: configuration, logger: logger)
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
        let configuration = try self.options.configuration()
        let summary = try FragmentStore.rebuildRegistry(configuration: configuration.store, logger: logger)
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
        let configuration = try self.options.configuration()
        let summary = try FragmentStore.migratePreviousLayout(configuration: configuration.store, logger: logger)
        print(
            "migrated \(summary.fragments) fragments: \(summary.exact) exact, \(summary.reconstructed) reconstructed, \(summary.blank) blank (queued for repair); "
                + "the old files are in \(summary.previousLayoutDirectory)")
    }
}
