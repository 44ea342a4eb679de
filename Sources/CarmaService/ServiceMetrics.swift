import CoreMetrics
import DreamEngine
import FragmentCore
import MicroHTTP
import Prometheus
import Synchronization

/// The service's Prometheus metrics, through the swift-metrics API with swift-prometheus behind it.
///
/// Every metric is created once with a fixed label set and reused; labels come from route templates
/// and small enumerations, never from raw paths or ids, so cardinality stays bounded. Gauges that
/// mirror the store (fragments by status, queue depth, bytes) are refreshed when `/metrics` is scraped.
final class ServiceMetrics: DreamObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    /// Request counts and durations per (route, method, code), kept outside the registry (see there).
    let requests: RequestStatistics

    private let blanksServed: CoreMetrics.Counter
    private let fragments: [FragmentStatus: CoreMetrics.Gauge]
    private let queueDepth: CoreMetrics.Gauge
    private let queueReady: CoreMetrics.Gauge
    private let repairs = Mutex<[String: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)]>([:])
    private let confidence: CoreMetrics.Recorder
    private let cycles: [CycleTrigger: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)]
    private let cycleRunning: CoreMetrics.Gauge
    private let scrubProgress: CoreMetrics.Gauge
    private let scrubVerified: CoreMetrics.Counter
    private let corruption: [String: CoreMetrics.Counter]
    private let bytesStored: [String: CoreMetrics.Gauge]
    private let cacheHits: CoreMetrics.Counter
    private let cacheMisses: CoreMetrics.Counter
    private let cacheBytes: CoreMetrics.Gauge
    private let embeddingBacklog: CoreMetrics.Gauge
    private let embedded: CoreMetrics.Gauge
    private let embeddingsComputed: CoreMetrics.Counter
    private let commits: CoreMetrics.Counter
    /// Namespaces holding fragments, and writes refused for a quota. Totals only: a series per
    /// namespace would be one per end user, without bound (GET /namespaces has the counts).
    private let namespaces: CoreMetrics.Gauge
    private let quotaRejections: CoreMetrics.Counter
    /// Cluster mode only: whether PostgreSQL answers, and calls that found it unavailable.
    private let database: (up: CoreMetrics.Gauge, errors: CoreMetrics.Counter)?
    /// Store counters already added to their Prometheus counters (the store keeps running totals).
    private let reported = Mutex<[String: Int]>([:])

    /// The method as a label: one of the methods the API knows, else `other` (bounded cardinality).
    static func methodLabel(_ method: HTTPMethod) -> String {
        switch method.rawValue {
        case "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH": method.rawValue
        default: "other"
        }
    }

    init(database: Bool = false) {
        var factory = PrometheusMetricsFactory(registry: self.registry)
        // Sub-millisecond GETs up to multi-second outliers.
        self.requests = RequestStatistics(bounds: [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ])
        factory.durationHistogramBuckets["carma_repair_duration_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        // Cycles take from milliseconds (nothing to do) to many minutes (a large loss).
        factory.durationHistogramBuckets["carma_dream_cycle_duration_seconds"] = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800),
        ]
        factory.valueHistogramBuckets["carma_reconstruction_confidence"] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        self.factory = factory

        self.blanksServed = CoreMetrics.Counter(label: "carma_blanks_served_total", factory: factory)
        self.fragments = Dictionary(uniqueKeysWithValues: FragmentStatus.allCases.map {
            ($0, CoreMetrics.Gauge(label: "carma_fragments", dimensions: [("status", $0.rawValue)], factory: factory))
        })
        self.queueDepth = CoreMetrics.Gauge(label: "carma_repair_queue_depth", factory: factory)
        self.queueReady = CoreMetrics.Gauge(label: "carma_repair_queue_ready", factory: factory)
        self.confidence = CoreMetrics.Recorder(label: "carma_reconstruction_confidence", aggregate: true, factory: factory)
        self.cycles = Dictionary(uniqueKeysWithValues: CycleTrigger.allCases.map { trigger in
            (trigger, (CoreMetrics.Counter(label: "carma_dream_cycles_total", dimensions: [("trigger", trigger.rawValue)], factory: factory),
                       CoreMetrics.Timer(label: "carma_dream_cycle_duration_seconds", dimensions: [("trigger", trigger.rawValue)], factory: factory)))
        })
        self.cycleRunning = CoreMetrics.Gauge(label: "carma_dream_cycle_running", factory: factory)
        self.scrubProgress = CoreMetrics.Gauge(label: "carma_scrub_progress_ratio", factory: factory)
        self.scrubVerified = CoreMetrics.Counter(label: "carma_scrub_verified_total", factory: factory)
        self.corruption = Dictionary(uniqueKeysWithValues: ["missing", "checksum_mismatch", "unreadable", "redundancy_missing", "redundancy_corrupt"].map {
            ($0, CoreMetrics.Counter(label: "carma_corruption_detected_total", dimensions: [("kind", $0)], factory: factory))
        })
        self.bytesStored = Dictionary(uniqueKeysWithValues: ["primary", "redundancy", "registry"].map {
            ($0, CoreMetrics.Gauge(label: "carma_bytes_stored", dimensions: [("area", $0)], factory: factory))
        })
        self.cacheHits = CoreMetrics.Counter(label: "carma_cache_hits_total", factory: factory)
        self.cacheMisses = CoreMetrics.Counter(label: "carma_cache_misses_total", factory: factory)
        self.cacheBytes = CoreMetrics.Gauge(label: "carma_cache_bytes", factory: factory)
        self.embeddingBacklog = CoreMetrics.Gauge(label: "carma_embedding_backlog", factory: factory)
        self.embedded = CoreMetrics.Gauge(label: "carma_embedded_fragments", factory: factory)
        self.embeddingsComputed = CoreMetrics.Counter(label: "carma_embeddings_computed_total", factory: factory)
        self.commits = CoreMetrics.Counter(label: "carma_group_commits_total", factory: factory)
        self.namespaces = CoreMetrics.Gauge(label: "carma_namespaces", factory: factory)
        self.quotaRejections = CoreMetrics.Counter(label: "carma_quota_rejections_total", factory: factory)
        self.database = database
            ? (CoreMetrics.Gauge(label: "carma_database_up", factory: factory), CoreMetrics.Counter(label: "carma_database_errors_total", factory: factory))
            : nil
        self.cycleRunning.record(0)
    }

    // MARK: HTTP

    func requestFinished(route: String, method: HTTPMethod, status: Int, duration: Duration) {
        self.requests.record(route: route, method: Self.methodLabel(method), code: status, duration: duration)
    }

    func blankServed() {
        self.blanksServed.increment()
    }

    // MARK: Dream engine

    func cycleStarted(trigger: CycleTrigger) {
        self.cycleRunning.record(1)
    }

    func cycleFinished(_ report: CycleReport, seconds: Double) {
        self.cycleRunning.record(0)
        if let (counter, timer) = self.cycles[report.trigger] {
            counter.increment()
            timer.recordNanoseconds(Int64(seconds * 1e9))
        }
        self.scrubVerified.increment(by: report.scrubbed)
        for (kind, count) in report.detected where kind.hasPrefix("redundancy_") {
            self.corruption[kind]?.increment(by: count)
        }
    }

    func repairFinished(tier: String, outcome: String, seconds: Double) {
        let metrics = self.repairs.withLock { cache in
            let key = "\(tier)/\(outcome)"
            if let existing = cache[key] { return existing }
            let made = (
                counter: CoreMetrics.Counter(label: "carma_repairs_total", dimensions: [("tier", tier), ("outcome", outcome)], factory: self.factory),
                timer: CoreMetrics.Timer(label: "carma_repair_duration_seconds", dimensions: [("tier", tier)], factory: self.factory)
            )
            cache[key] = made
            return made
        }
        metrics.counter.increment()
        metrics.timer.recordNanoseconds(Int64(seconds * 1e9))
    }

    func reconstructed(confidence: Double) {
        self.confidence.record(confidence)
    }

    /// Counts the writes among `errors` refused for a namespace's quota.
    func refused(_ errors: [StoreError]) {
        let count = errors.filter { $0.code == .quotaExceeded }.count
        if count > 0 { self.quotaRejections.increment(by: Int64(count)) }
    }

    func scrubbed(progress: Double) {
        self.scrubProgress.record(progress)
    }

    // MARK: Scrape

    /// Brings the gauges and mirrored counters up to date, then renders the exposition.
    func exposition(store: any FragmentBackend, engine: DreamEngine) -> [UInt8] {
        let stats = store.stats()
        for status in FragmentStatus.allCases {
            self.fragments[status]?.record(stats.byStatus[status] ?? 0)
        }
        let depth = store.repairQueueDepth()
        self.queueDepth.record(depth.total)
        self.queueReady.record(depth.ready)
        let files = store.diskUsage()
        self.bytesStored["primary"]?.record(files.primary)
        self.bytesStored["redundancy"]?.record(files.redundancy)
        self.bytesStored["registry"]?.record(files.registry)
        self.cacheBytes.record(stats.cacheBytes)
        self.namespaces.record(store.usage().count)
        let meaning = store.meaningStatus
        self.embeddingBacklog.record(meaning.backlog)
        self.embedded.record(meaning.embedded)
        self.advance("embeddings", to: meaning.computed, self.embeddingsComputed)
        self.advance("cache_hits", to: stats.cacheHits, self.cacheHits)
        self.advance("cache_misses", to: stats.cacheMisses, self.cacheMisses)
        self.advance("commits", to: stats.commits, self.commits)
        self.advance("missing", to: stats.damageDetected[.missing] ?? 0, self.corruption["missing"]!)
        self.advance("checksum_mismatch", to: stats.damageDetected[.checksumMismatch] ?? 0, self.corruption["checksum_mismatch"]!)
        self.advance("unreadable", to: stats.damageDetected[.unreadable] ?? 0, self.corruption["unreadable"]!)
        if let database = self.database {
            database.up.record(store.backendAvailable ? 1 : 0)
            self.advance("database_errors", to: store.backendFailures, database.errors)
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        self.registry.emit(into: &buffer)
        self.requests.emit(into: &buffer)
        Self.emit(workers: (store.workers + [engine.worker]).map(\.statistics), into: &buffer)
        return buffer
    }

    /// The background workers' series, one per worker (a fixed set of names, so bounded).
    static func emit(workers: [Worker.Statistics], into buffer: inout [UInt8]) {
        var text = """
            # HELP carma_worker_busy_seconds_total Seconds each background worker spent working.
            # TYPE carma_worker_busy_seconds_total counter

            """
        for worker in workers { text += "carma_worker_busy_seconds_total{worker=\"\(worker.name)\"} \(worker.busySeconds)\n" }
        text += "# HELP carma_worker_passes_total Passes in which each background worker did work.\n# TYPE carma_worker_passes_total counter\n"
        for worker in workers { text += "carma_worker_passes_total{worker=\"\(worker.name)\"} \(worker.passes)\n" }
        text += "# HELP carma_worker_running Whether each background worker's thread runs (1) or has ended (0).\n# TYPE carma_worker_running gauge\n"
        for worker in workers { text += "carma_worker_running{worker=\"\(worker.name)\"} \(worker.running ? 1 : 0)\n" }
        buffer.append(contentsOf: text.utf8)
    }

    /// Adds to a counter what a store total gained since the last scrape.
    private func advance(_ key: String, to total: Int, _ counter: CoreMetrics.Counter) {
        let delta = self.reported.withLock { reported -> Int in
            let delta = total - reported[key, default: 0]
            reported[key] = total
            return delta
        }
        if delta > 0 { counter.increment(by: delta) }
    }
}
