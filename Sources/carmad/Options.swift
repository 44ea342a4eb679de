import ArgumentParser
import ClusterStore
import CarmaEmbedding
import CarmaService
import CarmaText
import DreamEngine
import Foundation
import FragmentCore
import FragmentStore
import Logging
import MicroHTTP

/// The flags of `carmad`. Each falls back to an environment variable (`CARMA_` and the flag name in
/// upper case with underscores), then to the documented default.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on (env CARMA_HOST). Default 127.0.0.1; use 0.0.0.0 in a container.")
    var host: String?

    @Option(help: "TCP port (env CARMA_PORT). Default 8080; 0 picks a free port.")
    var port: Int?

    @Option(help: "Directory for the registry and the payload files (env CARMA_DATA_DIR). Default ./carma-data.")
    var dataDir: String?

    @Option(help: "Directory for the second copy of every payload, ideally another volume (env CARMA_REDUNDANCY_DIR). Default <data-dir>/redundancy.")
    var redundancyDir: String?

    @Option(help: "HTTP worker threads (env CARMA_THREADS). Default: the number of processors.")
    var threads: Int?

    @Option(help: "Largest request body in bytes (env CARMA_MAX_BODY_BYTES). Default 1048576.")
    var maxBodyBytes: Int?

    @Option(help: "Seconds of client inactivity before a connection is closed (env CARMA_CONNECTION_TIMEOUT). Default 30.")
    var connectionTimeout: Int?

    @Option(help: "Open connections in total (env CARMA_MAX_CONNECTIONS). Default: the open file limit less room for the store's files, at most 10000.")
    var maxConnections: Int?

    @Option(help: "Open connections per client address, 0 for no limit (env CARMA_MAX_CONNECTIONS_PER_IP). Default 0.")
    var maxConnectionsPerIP: Int?

    @Option(help: "Seconds a graceful stop (SIGTERM) lets requests in flight finish before answering the rest 503 (env CARMA_DRAIN_TIMEOUT). Default 10.")
    var drainTimeout: Double?

    @Option(help: "Memory per connection for the request line and headers; larger heads get 431 (env CARMA_MAX_HEADER_BYTES). Default 8192.")
    var maxHeaderBytes: Int?

    @Option(help: "File holding the bearer token that PUT, DELETE and POST /dream require (env CARMA_AUTH_TOKEN_FILE). Default: no token.")
    var authTokenFile: String?

    @Flag(help: "Require the token for reads and /metrics too (env CARMA_PROTECT_READS=1).")
    var protectReads = false

    @Option(help: "Payload cache size in bytes (env CARMA_CACHE_BYTES). Default 268435456 (256 MiB).")
    var cacheBytes: Int?

    @Option(help: "Largest fragment content in bytes (env CARMA_MAX_CONTENT_BYTES). Default 524288.")
    var maxContentBytes: Int?

    @Option(help: "Size at which a log segment is sealed and the next begun, 65536 to 1073741824 (env CARMA_SEGMENT_BYTES). Default 67108864 (64 MiB).")
    var segmentBytes: Int?

    @Option(help: "The sentence-embedding model: minilm or bge-small (installed by scripts/install-deps.sh under $CARMA_MODEL_HOME, default /usr/local/share/carma/models), or a model directory (config.json, vocab.txt, model.safetensors, optional carma.json) (env CARMA_EMBEDDING_MODEL). Default: none, queries rank by words only.")
    var embeddingModel: String?

    @Option(help: "Longest text the embedding model reads, in tokens; longer text is cut, 16 to 512 (env CARMA_EMBEDDING_MAX_TOKENS). Default 256.")
    var embeddingMaxTokens: Int?

    @Option(help: "Vectors of a kind (the model's, the clients') at which vector queries go through an approximate nearest-neighbour graph built in the background, kept in <data-dir>/vectors; 0 turns the graphs off, every query scans (env CARMA_VECTOR_INDEX_MIN_VECTORS). Default 20000.")
    var vectorIndexMinVectors: Int?

    @Option(help: "Arithmetic of the embedding model's linear layers: auto (int8 where the CPU has AVX-512 VNNI, else fp32), fp32, bf16 or int8 (env CARMA_EMBEDDING_PRECISION). Default auto.")
    var embeddingPrecision: String?

    @Option(help: "Threads that embed the backlog in the background: the first at normal priority, the others at low priority (env CARMA_EMBEDDING_THREADS). Default: the machine's cores.")
    var embeddingThreads: Int?

    @Option(help: "Newest history events kept per fragment (env CARMA_HISTORY_EVENTS). Default 100.")
    var historyEvents: Int?

    @Option(help: "Newest dream-cycle reports kept (env CARMA_CYCLE_REPORTS). Default 1000.")
    var cycleReports: Int?

    @Option(help: "Seconds between scheduled dream cycles at first (env CARMA_DREAM_INTERVAL). Default 300.")
    var dreamInterval: Double?

    @Option(help: "Interval growth per consecutive clean cycle: base × (1 + n × growth) (env CARMA_DREAM_GROWTH). Default 1.0.")
    var dreamGrowth: Double?

    @Option(help: "Longest interval between scheduled cycles, seconds (env CARMA_DREAM_MAX_INTERVAL). Default 3600.")
    var dreamMaxInterval: Double?

    @Option(help: "Start a cycle early once repairs are due and no request came for this many seconds (env CARMA_DREAM_IDLE_DELAY). Default 2.")
    var dreamIdleDelay: Double?

    @Option(help: "Most repairs per cycle (env CARMA_DREAM_MAX_REPAIRS). Default 100000.")
    var dreamMaxRepairs: Int?

    @Option(help: "Most seconds per cycle (env CARMA_DREAM_MAX_SECONDS). Default 300.")
    var dreamMaxSeconds: Double?

    @Option(help: "Fragments the scrub verifies per cycle (env CARMA_SCRUB_PER_CYCLE). Default 5000.")
    var scrubPerCycle: Int?

    @Option(help: "Share of time background repair may use, 0 < d ≤ 1 (env CARMA_DREAM_DUTY_CYCLE). Default 0.5.")
    var dreamDutyCycle: Double?

    @Option(help: "First retry delay after a failed repair, seconds, doubling per attempt (env CARMA_DREAM_RETRY_BASE). Default 30.")
    var dreamRetryBase: Double?

    @Option(help: "How lost fragments without an exact copy are rebuilt: meaning (aimed at the kept embedding; sketch when there is none) or sketch (env CARMA_RECONSTRUCTION). Default meaning.")
    var reconstruction: String?

    @Option(help: "Lowest confidence at which a reconstruction is stored; below it the fragment stays blank (env CARMA_RECONSTRUCTION_FLOOR). Default 0: whatever evidence survives comes back, flagged with its confidence.")
    var reconstructionFloor: Double?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env CARMA_LOG_LEVEL). Default info.")
    var logLevel: String?

    @Option(help: "Log format: text or json (env CARMA_LOG_FORMAT). Default text.")
    var logFormat: String?

    @Flag(help: "Listen on a non-loopback address without a token, leaving writes open to anyone who can reach it (env CARMA_ALLOW_UNAUTHENTICATED=1).")
    var allowUnauthenticated = false

    @Option(help: "Largest response body a list, query or topology request builds, in bytes; longer answers are cut short with a cursor or flag (env CARMA_MAX_RESPONSE_BYTES). Default 8388608.")
    var maxResponseBytes: Int?

    @Option(help: "Run as a cluster node on PostgreSQL, e.g. postgresql://carma@db:5432/carma (env CARMA_DATABASE_URL). Default: the embedded store in --data-dir.")
    var databaseURL: String?

    @Option(help: "Database connections this node opens at most (env CARMA_DATABASE_POOL). Default 8.")
    var databasePool: Int?

    @Option(help: "Seconds one database call may take before the database counts as unavailable: reads answer from the cache or a stub, writes 503 (env CARMA_DATABASE_TIMEOUT). Default 2.")
    var databaseTimeout: Double?

    @Option(help: "This node's name in repair leases and cycle reports (env CARMA_NODE_NAME). Default: host name and process id.")
    var nodeName: String?

    @Option(help: "Seconds a claimed repair stays with this node before another may take it (env CARMA_REPAIR_LEASE). Default 60.")
    var repairLease: Double?

    @Option(help: "PostgreSQL tablespace for the redundancy table, used when the schema is first created (env CARMA_REDUNDANCY_TABLESPACE). Default: the database's.")
    var redundancyTablespace: String?

    private static let environment = ProcessInfo.processInfo.environment

    private static func env(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// One setting: the flag if given, else its environment variable (`--max-connections` reads
    /// `CARMA_MAX_CONNECTIONS`), else the default; then checked against `range`. Every numeric setting
    /// goes through here, because a value outside what the code below it can represent (a connection
    /// limit past UInt32, an interval of 1e300 seconds) used to trap at run time instead of at start.
    private static func setting<Value: Comparable>(
        _ flag: Value?, _ name: String, default defaultValue: Value, in range: ClosedRange<Value>, parse: (String) -> Value?
    ) throws -> Value {
        let variable = "CARMA_" + name.dropFirst(2).uppercased().replacingOccurrences(of: "-", with: "_")
        var value = defaultValue
        var source = name
        if let flag {
            value = flag
        } else if let text = env(variable) {
            guard let parsed = parse(text) else { throw ValidationError("\(variable) must be a number, not '\(text)'") }
            value = parsed
            source = variable
        }
        guard range.contains(value) else {
            throw ValidationError("\(source) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
        return value
    }

    private static func setting(_ flag: Int?, _ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        try setting(flag, name, default: defaultValue, in: range, parse: { Int($0) })
    }

    /// A setting in seconds or a ratio. NaN and the infinities fail the range check too.
    private static func setting(_ flag: Double?, _ name: String, default defaultValue: Double, in range: ClosedRange<Double>) throws -> Double {
        try setting(flag, name, default: defaultValue, in: range, parse: { Double($0) })
    }

    /// A year: the longest interval, delay or budget in seconds any setting accepts.
    private static let longestSeconds = 365.0 * 86_400

    /// The token file named by the flag or the environment, if any.
    var tokenFile: String? {
        self.authTokenFile ?? Self.env("CARMA_AUTH_TOKEN_FILE")
    }

    /// The configuration these flags and the environment describe.
    /// - Parameter openFileLimit: The process's limit on open descriptors, which bounds the connections.
    func configuration(openFileLimit: Int) throws -> CarmadConfiguration {
        var server = ServerConfiguration()
        server.host = self.host ?? Self.env("CARMA_HOST") ?? server.host
        guard let loopback = System.isLoopback(address: server.host) else {
            throw ValidationError("--host must be a numeric IPv4 or IPv6 address, not '\(server.host)'")
        }
        server.port = try Self.setting(self.port, "--port", default: server.port, in: 0...65535)
        server.threads = try Self.setting(self.threads, "--threads", default: server.threads, in: 1...256)
        server.maxBodyBytes = try Self.setting(self.maxBodyBytes, "--max-body-bytes", default: server.maxBodyBytes, in: 1024...(1 << 30))
        server.maxHeaderBytes = try Self.setting(self.maxHeaderBytes, "--max-header-bytes", default: server.maxHeaderBytes, in: 4096...(1 << 20))
        server.connectionTimeoutSeconds = try Self.setting(self.connectionTimeout, "--connection-timeout", default: server.connectionTimeoutSeconds, in: 1...86_400)
        let drainDefault = Double(server.drainTimeout.components.seconds)
        server.drainTimeout = .seconds(try Self.setting(self.drainTimeout, "--drain-timeout", default: drainDefault, in: 0...3600))
        let connectionCeiling = ServerConfiguration.connectionCeiling(openFileLimit: openFileLimit, threads: server.threads)
        guard connectionCeiling >= 1 else {
            throw ValidationError("the open file limit (\(openFileLimit)) leaves no descriptors for connections; raise it (ulimit -n)")
        }
        server.maxConnections = try Self.setting(
            self.maxConnections, "--max-connections",
            default: ServerConfiguration.defaultMaxConnections(openFileLimit: openFileLimit, threads: server.threads), in: 1...connectionCeiling)
        server.maxConnectionsPerIP = try Self.setting(self.maxConnectionsPerIP, "--max-connections-per-ip", default: server.maxConnectionsPerIP, in: 0...server.maxConnections)

        var limits = FragmentLimits()
        limits.maxContentBytes = try Self.setting(self.maxContentBytes, "--max-content-bytes", default: limits.maxContentBytes, in: 1...(1 << 30))
        let defaults = Retention()
        let shared = SharedStoreSettings(
            cacheBytes: try Self.setting(self.cacheBytes, "--cache-bytes", default: StoreConfiguration.defaultCacheBytes, in: 0...(1 << 40)), limits: limits,
            retention: Retention(
                eventsPerFragment: try Self.setting(self.historyEvents, "--history-events", default: defaults.eventsPerFragment, in: 1...1_000_000),
                cycleReports: try Self.setting(self.cycleReports, "--cycle-reports", default: defaults.cycleReports, in: 1...1_000_000)))
        let segmentBytes = try Self.setting(self.segmentBytes, "--segment-bytes", default: StoreConfiguration.defaultSegmentBytes, in: 65536...(1 << 30))

        let minVectors = try Self.setting(
            self.vectorIndexMinVectors, "--vector-index-min-vectors",
            default: NeighbourSearchConfiguration().minimumVectors, in: 0...(1 << 40))
        let maxTokens = try Self.setting(self.embeddingMaxTokens, "--embedding-max-tokens", default: 256, in: 16...512)
        let precisionName = self.embeddingPrecision ?? Self.env("CARMA_EMBEDDING_PRECISION") ?? EmbeddingPrecision.auto.rawValue
        guard let precision = EmbeddingPrecision(rawValue: precisionName) else {
            throw ValidationError(
                "--embedding-precision must be one of \(EmbeddingPrecision.allCases.map(\.rawValue).joined(separator: ", ")), not '\(precisionName)'")
        }
        let threads = try Self.setting(
            self.embeddingThreads, "--embedding-threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...256)
        let model = try (self.embeddingModel ?? Self.env("CARMA_EMBEDDING_MODEL")).map {
            ModelChoice(directory: try ModelChoice.directory(for: $0), maxTokens: maxTokens, precision: precision, backgroundThreads: threads)
        }

        var dream = DreamConfiguration()
        let year = Self.longestSeconds
        dream.baseInterval = try Self.setting(self.dreamInterval, "--dream-interval", default: dream.baseInterval, in: 0.01...year)
        dream.growth = try Self.setting(self.dreamGrowth, "--dream-growth", default: dream.growth, in: 0...1000)
        dream.maxInterval = try Self.setting(self.dreamMaxInterval, "--dream-max-interval", default: dream.maxInterval, in: 0.01...year)
        dream.idleDelay = try Self.setting(self.dreamIdleDelay, "--dream-idle-delay", default: dream.idleDelay, in: 0...year)
        dream.maxRepairsPerCycle = try Self.setting(self.dreamMaxRepairs, "--dream-max-repairs", default: dream.maxRepairsPerCycle, in: 1...1_000_000_000)
        dream.maxCycleSeconds = try Self.setting(self.dreamMaxSeconds, "--dream-max-seconds", default: dream.maxCycleSeconds, in: 0.01...year)
        dream.scrubPerCycle = try Self.setting(self.scrubPerCycle, "--scrub-per-cycle", default: dream.scrubPerCycle, in: 0...1_000_000_000)
        dream.dutyCycle = try Self.setting(self.dreamDutyCycle, "--dream-duty-cycle", default: dream.dutyCycle, in: 0.01...1)
        dream.retryBase = try Self.setting(self.dreamRetryBase, "--dream-retry-base", default: dream.retryBase, in: 0.01...year)
        if let name = self.reconstruction ?? Self.env("CARMA_RECONSTRUCTION") {
            guard let method = ReconstructionMethod(rawValue: name) else {
                throw ValidationError("--reconstruction must be one of \(ReconstructionMethod.allCases.map(\.rawValue).joined(separator: ", ")), not '\(name)'")
            }
            dream.reconstruction = method
        }
        dream.confidenceFloor = try Self.setting(self.reconstructionFloor, "--reconstruction-floor", default: dream.confidenceFloor, in: 0...1)
        guard dream.maxInterval >= dream.baseInterval else { throw ValidationError("--dream-interval must be at most --dream-max-interval") }

        var token: String?
        if let file = self.tokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the token file \(file)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let token, token.utf8.count >= 16 else {
                throw ValidationError("the token in \(file) must have at least 16 characters")
            }
        }
        let protectReads = self.protectReads || Self.env("CARMA_PROTECT_READS") == "1"
        if protectReads, token == nil {
            throw ValidationError("--protect-reads needs --auth-token-file")
        }
        // Protected mode, as Redis does it: reachable from other machines without a token would let
        // anyone who can reach the port delete fragments.
        let allowUnauthenticated = self.allowUnauthenticated || Self.env("CARMA_ALLOW_UNAUTHENTICATED") == "1"
        if token == nil, !loopback, !allowUnauthenticated {
            throw ValidationError(
                "refusing to listen on \(server.host) without a token: anyone who can reach it could overwrite and delete fragments. "
                    + "Give --auth-token-file (env CARMA_AUTH_TOKEN_FILE), listen on 127.0.0.1, "
                    + "or pass --allow-unauthenticated (env CARMA_ALLOW_UNAUTHENTICATED=1) if something else guards the port")
        }
        var service = ServiceConfiguration(server: server, limits: shared.limits, dream: dream, authToken: token, protectReads: protectReads)
        service.maxResponseBytes = try Self.setting(
            self.maxResponseBytes, "--max-response-bytes", default: service.maxResponseBytes, in: (64 << 10)...(1 << 30))
        let backend: Backend = try self.clusterConfiguration(shared: shared, dream: dream).map { .cluster($0) }
            ?? .embedded(self.embeddedConfiguration(shared: shared, segmentBytes: segmentBytes, minVectors: minVectors))
        return CarmadConfiguration(service: service, backend: backend, model: model)
    }

    /// The embedded store's settings: its directories, and the settings both backends share.
    private func embeddedConfiguration(shared: SharedStoreSettings, segmentBytes: Int, minVectors: Int) -> StoreConfiguration {
        let dataDirectory = self.dataDir ?? Self.env("CARMA_DATA_DIR") ?? "./carma-data"
        var store = StoreConfiguration(dataDirectory: dataDirectory, redundancyDirectory: self.redundancyDir ?? Self.env("CARMA_REDUNDANCY_DIR"))
        store.cacheBytes = shared.cacheBytes
        store.limits = shared.limits
        store.retention = shared.retention
        store.segmentBytes = segmentBytes
        store.neighbourSearch?.minimumVectors = minVectors
        if minVectors == 0 { store.neighbourSearch = nil }
        return store
    }

    /// Cluster mode's settings, when a database URL is given (flag or environment).
    private func clusterConfiguration(shared: SharedStoreSettings, dream: DreamConfiguration) throws -> ClusterConfiguration? {
        guard let url = self.databaseURL ?? Self.env("CARMA_DATABASE_URL") else { return nil }
        guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") else {
            throw ValidationError("--database-url must be a postgresql:// URL")
        }
        let pool = try Self.setting(self.databasePool, "--database-pool", default: 8, in: 1...1000)
        let timeout = try Self.setting(self.databaseTimeout, "--database-timeout", default: 2, in: 0.05...600)
        let lease = try Self.setting(self.repairLease, "--repair-lease", default: 60, in: 1...86_400)
        let node = self.nodeName ?? Self.env("CARMA_NODE_NAME") ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        guard !node.isEmpty, node.utf8.count <= 200 else { throw ValidationError("--node-name must have 1 to 200 characters") }
        return ClusterConfiguration(
            databaseURL: url, poolSize: pool, timeout: .milliseconds(Int64(timeout * 1000)), nodeName: node,
            repairLease: .milliseconds(Int64(lease * 1000)), redundancyTablespace: self.redundancyTablespace ?? Self.env("CARMA_REDUNDANCY_TABLESPACE"),
            cacheBytes: shared.cacheBytes, limits: shared.limits, retention: shared.retention,
            scrubInterval: .milliseconds(Int64(dream.baseInterval * 1000)),
            cycleLease: .milliseconds(Int64(min(dream.maxCycleSeconds + lease, 86_400 * 365) * 1000)))
    }

    /// Sets up swift-log as the flags ask.
    func bootstrapLogging() throws -> Logger {
        let levelName = self.logLevel ?? Self.env("CARMA_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level '\(levelName)'") }
        let format = self.logFormat ?? Self.env("CARMA_LOG_FORMAT") ?? "text"
        switch format {
        case "json": LoggingSystem.bootstrap { label in var handler = JSONLogHandler(label: label); handler.logLevel = level; return handler }
        case "text": LoggingSystem.bootstrap { label in var handler = StreamLogHandler.standardError(label: label); handler.logLevel = level; return handler }
        default: throw ValidationError("unknown log format '\(format)' (text or json)")
        }
        return Logger(label: "carmad")
    }
}
