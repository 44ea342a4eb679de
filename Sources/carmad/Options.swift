import ArgumentParser
import CarmaService
import DreamEngine
import Foundation
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

    @Option(help: "Open connections in total (env CARMA_MAX_CONNECTIONS). Default 1000.")
    var maxConnections: Int?

    @Option(help: "Open connections per client address, 0 for no limit (env CARMA_MAX_CONNECTIONS_PER_IP). Default 0.")
    var maxConnectionsPerIP: Int?

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

    @Option(help: "Lowest confidence at which a reconstruction is accepted (env CARMA_RECONSTRUCTION_FLOOR). Default 0.35.")
    var reconstructionFloor: Double?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env CARMA_LOG_LEVEL). Default info.")
    var logLevel: String?

    @Option(help: "Log format: text or json (env CARMA_LOG_FORMAT). Default text.")
    var logFormat: String?

    private static let environment = ProcessInfo.processInfo.environment

    private static func env(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    private static func env(_ name: String) throws -> Int? {
        guard let text: String = env(name) else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(name) must be an integer, not '\(text)'") }
        return value
    }

    private static func double(_ name: String) throws -> Double? {
        guard let text: String = env(name) else { return nil }
        guard let value = Double(text), value.isFinite else { throw ValidationError("\(name) must be a number, not '\(text)'") }
        return value
    }

    /// The configuration these flags and the environment describe.
    func configuration() throws -> ServiceConfiguration {
        var server = ServerConfiguration()
        server.host = self.host ?? Self.env("CARMA_HOST") ?? server.host
        server.port = try self.port ?? Self.env("CARMA_PORT") ?? server.port
        server.threads = try self.threads ?? Self.env("CARMA_THREADS") ?? server.threads
        server.maxBodyBytes = try self.maxBodyBytes ?? Self.env("CARMA_MAX_BODY_BYTES") ?? server.maxBodyBytes
        server.connectionTimeoutSeconds = try self.connectionTimeout ?? Self.env("CARMA_CONNECTION_TIMEOUT") ?? server.connectionTimeoutSeconds
        server.maxConnections = try self.maxConnections ?? Self.env("CARMA_MAX_CONNECTIONS") ?? server.maxConnections
        server.maxConnectionsPerIP = try self.maxConnectionsPerIP ?? Self.env("CARMA_MAX_CONNECTIONS_PER_IP") ?? server.maxConnectionsPerIP
        server.maxHeaderBytes = try self.maxHeaderBytes ?? Self.env("CARMA_MAX_HEADER_BYTES") ?? server.maxHeaderBytes
        guard server.maxHeaderBytes >= 4096, server.maxHeaderBytes <= 1 << 20 else { throw ValidationError("--max-header-bytes must be 4096 to 1048576") }
        guard (0...65535).contains(server.port) else { throw ValidationError("--port must be 0 to 65535") }
        guard server.threads >= 1, server.threads <= 256 else { throw ValidationError("--threads must be 1 to 256") }
        guard server.maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
        guard server.connectionTimeoutSeconds >= 1 else { throw ValidationError("--connection-timeout must be at least 1 second") }
        guard server.maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard server.maxConnectionsPerIP >= 0 else { throw ValidationError("--max-connections-per-ip must not be negative") }

        let dataDirectory = self.dataDir ?? Self.env("CARMA_DATA_DIR") ?? "./carma-data"
        var store = StoreConfiguration(dataDirectory: dataDirectory, redundancyDirectory: self.redundancyDir ?? Self.env("CARMA_REDUNDANCY_DIR"))
        store.cacheBytes = try self.cacheBytes ?? Self.env("CARMA_CACHE_BYTES") ?? store.cacheBytes
        store.limits.maxContentBytes = try self.maxContentBytes ?? Self.env("CARMA_MAX_CONTENT_BYTES") ?? store.limits.maxContentBytes
        guard store.cacheBytes >= 0 else { throw ValidationError("--cache-bytes must not be negative") }
        store.segmentBytes = try self.segmentBytes ?? Self.env("CARMA_SEGMENT_BYTES") ?? store.segmentBytes
        guard (65536...(1 << 30)).contains(store.segmentBytes) else { throw ValidationError("--segment-bytes must be 65536 to 1073741824") }

        var dream = DreamConfiguration()
        dream.baseInterval = try self.dreamInterval ?? Self.double("CARMA_DREAM_INTERVAL") ?? dream.baseInterval
        dream.growth = try self.dreamGrowth ?? Self.double("CARMA_DREAM_GROWTH") ?? dream.growth
        dream.maxInterval = try self.dreamMaxInterval ?? Self.double("CARMA_DREAM_MAX_INTERVAL") ?? dream.maxInterval
        dream.idleDelay = try self.dreamIdleDelay ?? Self.double("CARMA_DREAM_IDLE_DELAY") ?? dream.idleDelay
        dream.maxRepairsPerCycle = try self.dreamMaxRepairs ?? Self.env("CARMA_DREAM_MAX_REPAIRS") ?? dream.maxRepairsPerCycle
        dream.maxCycleSeconds = try self.dreamMaxSeconds ?? Self.double("CARMA_DREAM_MAX_SECONDS") ?? dream.maxCycleSeconds
        dream.scrubPerCycle = try self.scrubPerCycle ?? Self.env("CARMA_SCRUB_PER_CYCLE") ?? dream.scrubPerCycle
        dream.dutyCycle = try self.dreamDutyCycle ?? Self.double("CARMA_DREAM_DUTY_CYCLE") ?? dream.dutyCycle
        dream.retryBase = try self.dreamRetryBase ?? Self.double("CARMA_DREAM_RETRY_BASE") ?? dream.retryBase
        dream.confidenceFloor = try self.reconstructionFloor ?? Self.double("CARMA_RECONSTRUCTION_FLOOR") ?? dream.confidenceFloor
        guard dream.baseInterval > 0, dream.maxInterval >= dream.baseInterval else { throw ValidationError("--dream-interval must be above 0 and at most --dream-max-interval") }
        guard dream.growth >= 0 else { throw ValidationError("--dream-growth must not be negative") }
        guard dream.idleDelay >= 0 else { throw ValidationError("--dream-idle-delay must not be negative") }
        guard dream.maxRepairsPerCycle >= 1, dream.maxCycleSeconds > 0 else { throw ValidationError("--dream-max-repairs and --dream-max-seconds must be positive") }
        guard dream.scrubPerCycle >= 0 else { throw ValidationError("--scrub-per-cycle must not be negative") }
        guard dream.dutyCycle > 0, dream.dutyCycle <= 1 else { throw ValidationError("--dream-duty-cycle must be above 0 and at most 1") }
        guard dream.retryBase > 0 else { throw ValidationError("--dream-retry-base must be above 0") }
        guard (0...1).contains(dream.confidenceFloor) else { throw ValidationError("--reconstruction-floor must be between 0 and 1") }

        var token: String?
        if let file = self.authTokenFile ?? Self.env("CARMA_AUTH_TOKEN_FILE") {
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
        return ServiceConfiguration(server: server, store: store, dream: dream, authToken: token, protectReads: protectReads)
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
