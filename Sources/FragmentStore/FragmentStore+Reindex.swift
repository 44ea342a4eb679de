import Logging

/// What a registry rebuild found.
public struct ReindexSummary: Sendable {
    public var files: Int
    public var fragments: Int
    public var ok: Int
    public var blank: Int
    public var reconstructed: Int
    public var unreadableFiles: Int
}

extension FragmentStore {
    /// Rebuilds the registry from the payload and redundancy files. An existing registry is moved
    /// aside (`registry.sqlite3.bak-<ms>`), never deleted. Run with the service stopped.
    public static func rebuildRegistry(configuration: StoreConfiguration, logger: Logger) throws(StoreError) -> ReindexSummary {
        let path = configuration.registryPath
        if FileSystem.exists(path) {
            let suffix = ".bak-\(Timestamp.now.milliseconds)"
            for extra in ["", "-wal", "-shm"] where FileSystem.exists(path + extra) {
                do {
                    try FileSystem.move(path + extra, to: path + suffix + extra)
                } catch {
                    throw .from(error, doing: "move the old registry aside")
                }
            }
            logger.notice("moved the old registry aside", metadata: ["registry.backup": "\(path + suffix)"])
        }
        let registry: Registry
        let primary: PayloadDirectory
        let redundancy: RedundancyLog
        do {
            primary = try PayloadDirectory(root: configuration.payloadDirectory)
            redundancy = try RedundancyLog(root: configuration.redundancyDirectory)
        } catch {
            throw .from(error, doing: "open the payload directories")
        }
        do {
            registry = try Registry(path: path)
        } catch {
            throw .from(error, doing: "create the registry")
        }
        let summary = try Reindexer(registry: registry, primary: primary, redundancy: redundancy, logger: logger).run()
        return ReindexSummary(
            files: summary.files, fragments: summary.fragments, ok: summary.ok, blank: summary.blank,
            reconstructed: summary.reconstructed, unreadableFiles: summary.unreadable)
    }
}
