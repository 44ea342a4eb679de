import CarmaJSON
import Foundation
import FragmentCore
import Logging

/// What the engine needs to know about the foreground, to stay out of its way.
public protocol ForegroundActivity: Sendable {
    /// Requests being served right now.
    var requestsInFlight: Int { get }
    /// Seconds since the last request (0 while one is in flight).
    var secondsIdle: Double { get }
}

/// Told what the engine does, for metrics.
public protocol DreamObserver: Sendable {
    func cycleStarted(trigger: CycleTrigger)
    func cycleFinished(_ report: CycleReport, seconds: Double)
    func repairFinished(tier: String, outcome: String, seconds: Double)
    func reconstructed(confidence: Double)
    func scrubbed(progress: Double)
}

/// The dream engine: a background thread that runs dream cycles — on request, on a progressive
/// schedule, or early when repairs wait and the service is idle — and in each cycle works through
/// the persistent repair queue and a slice of scrub, cheapest recovery tier first.
///
/// `@unchecked Sendable`: every mutable field is read and written with `condition` locked.
public final class DreamEngine: @unchecked Sendable {
    let store: any DreamStore
    public let configuration: DreamConfiguration
    let reconstructor: (any Reconstructor)?
    let foreground: any ForegroundActivity
    let observer: (any DreamObserver)?
    let logger: Logger

    private let condition = NSCondition()
    private let epoch = ContinuousClock.now
    private var scheduler: Scheduler
    private var current: CycleReport?
    private var pending: CycleReport?
    private var recent: [CycleReport] = []
    private var stopping = false
    private var running = false
    /// Runs cycles when asked or due; between them a pass waits on `condition` (at most 0.5 s).
    public let worker = Worker(name: "dream", interval: 0)
    private var nextCycleID: Int64
    private var readyRepairs = (count: 0, checkedAt: -Double.infinity)
    /// Exact and reconstructed repairs per second, smoothed over cycles.
    private var repairRate: Double = 200
    var scrubCursor: String?
    var scrubPass = 0
    var scrubbedThisPass = 0

    /// - Parameters:
    ///   - store: The store to repair.
    ///   - configuration: Schedule, budgets and politeness.
    ///   - reconstructor: The context reconstruction tier; nil leaves fragments without an exact source blank.
    ///   - foreground: How busy the service is.
    ///   - observer: Metrics.
    ///   - logger: One line per cycle start and end.
    public init(
        store: any DreamStore, configuration: DreamConfiguration, reconstructor: (any Reconstructor)?,
        foreground: any ForegroundActivity, observer: (any DreamObserver)? = nil, logger: Logger
    ) {
        self.store = store
        self.configuration = configuration
        self.reconstructor = reconstructor
        self.foreground = foreground
        self.observer = observer
        self.logger = logger
        self.scheduler = Scheduler(configuration: configuration, now: 0)
        self.nextCycleID = store.lastCycleID() + 1
        // A cycle that was running when the process stopped did not finish: say so.
        for report in store.unfinishedCycleReports() {
            guard case .object(var object) = report, let id = report["id"]?.intValue else { continue }
            object["state"] = "interrupted"
            object["stop_reason"] = "the process stopped during the cycle"
            store.saveCycleReport(
                id: Int64(id), trigger: report["trigger"]?.stringValue ?? "manual", state: "interrupted",
                startedAt: report["started_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) ?? .now, finishedAt: nil,
                report: .object(object), wait: true)
        }
    }

    /// The next cycle's id: the store's when several engines share it (under `condition`).
    private func allocateCycleID() -> Int64 {
        let id = self.store.newCycleID(local: self.nextCycleID)
        self.nextCycleID = id + 1
        return id
    }

    /// Seconds on the engine's monotonic clock.
    func now() -> Double {
        let elapsed = ContinuousClock.now - self.epoch
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    // MARK: Lifecycle

    /// Starts the engine's worker.
    public func start() {
        self.condition.lock()
        guard !self.running else {
            self.condition.unlock()
            return
        }
        self.running = true
        self.scheduler = Scheduler(configuration: self.configuration, now: self.now())
        self.condition.unlock()
        self.worker.start(onStop: { [self] in self.interrupt() }) { [self] in self.pass() }
    }

    /// Interrupts a running cycle at the next unit of work and waits for the worker to end.
    public func stop() {
        self.worker.stop()
    }

    /// Asks the worker's pass to end (a cycle stops at its next unit of work; a wait ends now).
    private func interrupt() {
        self.condition.lock()
        self.stopping = true
        self.condition.broadcast()
        self.condition.unlock()
    }

    var isStopping: Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.stopping
    }

    /// One turn of the engine: a cycle asked for or due, or a short wait for one.
    private func pass() -> Worker.Pass {
        self.condition.lock()
        if self.stopping {
            self.condition.unlock()
            return .finished
        }
        if let report = self.pending {
            self.pending = nil
            self.current = report
            self.scheduler.cycleStarted()
            self.condition.unlock()
            self.run(report)
            return .worked
        }
        let now = self.now()
        let needsReadyCheck = now - self.readyRepairs.checkedAt >= 1
        self.condition.unlock()

        if needsReadyCheck {
            let ready = self.store.repairQueueDepth().ready
            self.condition.lock()
            self.readyRepairs = (ready, now)
            self.condition.unlock()
        }

        self.condition.lock()
        let decision = self.scheduler.decide(
            now: now, manualRequested: false, readyRepairs: self.readyRepairs.count, idleFor: self.foreground.secondsIdle)
        switch decision {
        case .start(let trigger):
            let report = CycleReport(id: self.allocateCycleID(), trigger: trigger, startedAt: .now, budget: self.configuration.defaultBudget)
            self.current = report
            self.scheduler.cycleStarted()
            self.condition.unlock()
            self.run(report)
            return .worked
        case .wait(let until):
            if !self.stopping, self.pending == nil {
                let seconds = max(0.01, min(until - now, 0.5))
                _ = self.condition.wait(until: Date().addingTimeInterval(seconds))
            }
            self.condition.unlock()
            return .idle
        }
    }

    // MARK: Requests

    /// Starts a cycle now, or returns the one already running (or about to run).
    /// - Returns: The cycle (without events) and whether this call created it.
    public func requestCycle(budget: CycleBudget?) -> (cycle: JSONValue, created: Bool) {
        self.condition.lock()
        if let existing = self.current ?? self.pending {
            self.condition.unlock()
            return (existing.json(includeEvents: false), false)
        }
        let report = CycleReport(id: self.allocateCycleID(), trigger: .manual, startedAt: .now, budget: budget ?? self.configuration.defaultBudget)
        // Saved before the engine can see the cycle: saved after, it could land after the finished
        // report of a short cycle and leave the cycle "running" in the store (BackendTests caught
        // it on PostgreSQL; a restart then called the cycle interrupted).
        self.store.saveCycleReport(id: report.id, trigger: "manual", state: "running", startedAt: report.startedAt, finishedAt: nil, report: report.json(), wait: false)
        self.pending = report
        self.condition.broadcast()
        self.condition.unlock()
        return (report.json(includeEvents: false), true)
    }

    /// Updates the running cycle's report.
    func update(_ body: (inout CycleReport) -> Void) {
        self.condition.lock()
        if self.current != nil {
            body(&self.current!)
        }
        self.condition.unlock()
    }

    var currentReport: CycleReport? {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.current
    }

    func cycleEnded(_ report: CycleReport, repairsPerSecond: Double?) {
        self.condition.lock()
        self.current = nil
        self.recent.append(report)
        if self.recent.count > 20 { self.recent.removeFirst(self.recent.count - 20) }
        if let repairsPerSecond, repairsPerSecond > 0 {
            self.repairRate = 0.5 * self.repairRate + 0.5 * repairsPerSecond
        }
        self.readyRepairs.checkedAt = -.infinity
        self.scheduler.cycleFinished(now: self.now(), foundDamage: report.foundDamage)
        self.condition.broadcast()
        self.condition.unlock()
    }

    /// A cycle's report: the running one live, else a stored one.
    public func report(_ id: Int64) -> JSONValue? {
        self.condition.lock()
        let live = [self.current, self.pending].compactMap { $0 }.first(where: { $0.id == id }) ?? self.recent.first(where: { $0.id == id })
        self.condition.unlock()
        if let live { return live.json() }
        return self.store.cycleReport(id)
    }

    /// When the engine will next try to repair a queued fragment whose repair stands at `progress`:
    /// once its backoff is over (`notBefore`), in the first cycle that starts after that (one is
    /// running now, the idle start `idleDelay` after it is due, or the scheduled one), after the
    /// blanks ahead of it (all blanks at the measured repair rate: an upper bound). Seconds from now.
    public func secondsUntilNextAttempt(_ progress: RepairProgress, now: Timestamp = .now) -> Int {
        self.condition.lock()
        let running = self.current != nil || self.pending != nil
        let untilScheduled = max(0, self.scheduler.nextRunAt - self.now())
        let rate = self.repairRate
        self.condition.unlock()
        let due = progress.notBefore.map { max(0, Double($0.milliseconds - now.milliseconds) / 1000) } ?? 0
        let start: Double
        if running, due == 0 {
            start = 0
        } else {
            // Idle starts need a quiet service; under load only the scheduled cycle is sure.
            let idle = self.foreground.requestsInFlight <= 1 ? due + self.configuration.idleDelay + 1 : .infinity
            start = min(idle, max(untilScheduled, due))
        }
        let work = Double(self.store.blankCount) / max(rate, 1)
        return max(1, Int((start + work).rounded(.up)))
    }

    /// The scheduler's state, the queue, and the recent cycles.
    public func status() -> JSONValue {
        let depth = self.store.repairQueueDepth()
        let fragments = self.store.fragmentCount
        self.condition.lock()
        let now = self.now()
        let current = self.current ?? self.pending
        let scheduler = self.scheduler
        let rate = self.repairRate
        let recent = self.recent
        let pass = self.scrubPass
        let scrubbed = self.scrubbedThisPass
        let cursor = self.scrubCursor
        self.condition.unlock()
        let untilNext = max(0, scheduler.nextRunAt - now)
        var object: JSONObject = [
            "state": .string(current == nil ? "idle" : "running"),
            "current_cycle": current.map { $0.json(includeEvents: false) } ?? .null,
            "next_run_at": .string(Timestamp.now.adding(milliseconds: Int64(untilNext * 1000)).rfc3339),
            "next_run_in_seconds": .number((untilNext * 10).rounded() / 10),
            "current_interval_seconds": .number(scheduler.currentInterval),
            "clean_streak": .number(Double(scheduler.cleanStreak)),
        ]
        var queue: JSONObject = [
            "depth": .number(Double(depth.total)),
            "ready": .number(Double(depth.ready)),
            "waiting_for_retry": .number(Double(depth.total - depth.ready)),
            "repair_rate_per_second": .number((rate * 10).rounded() / 10),
        ]
        // An estimate only for work that is due: tickets waiting out a backoff are not promised.
        if depth.total == 0 {
            queue["eta_seconds"] = 0
        } else if depth.ready > 0 {
            queue["eta_seconds"] = .number(Double(self.secondsUntilNextAttempt(RepairProgress())))
        }
        object["queue"] = .object(queue)
        object["scrub"] = [
            "pass": .number(Double(pass)),
            "progress": .number(fragments == 0 ? 1 : min(1, (Double(scrubbed) / Double(2 * fragments) * 1000).rounded() / 1000)),
            "cursor": cursor.map(JSONValue.string) ?? .null,
        ]
        var cycles = recent.reversed().map { $0.json(includeEvents: false) }
        if cycles.isEmpty {
            cycles = self.store.recentCycleReports(limit: 10).map { report in
                guard case .object(var object) = report else { return report }
                object["events"] = nil
                return .object(object)
            }
        }
        object["recent_cycles"] = .array(Array(cycles.prefix(10)))
        return .object(object)
    }

    /// Scrub progress through the current pass, 0 to 1.
    var scrubProgress: Double {
        let fragments = self.store.fragmentCount
        self.condition.lock()
        defer { self.condition.unlock() }
        // A pass verifies every fragment's record in both logs.
        return fragments == 0 ? 1 : min(1, Double(self.scrubbedThisPass) / Double(2 * fragments))
    }

    func withScrubState<T>(_ body: (inout String?, inout Int, inout Int) -> T) -> T {
        self.condition.lock()
        defer { self.condition.unlock() }
        return body(&self.scrubCursor, &self.scrubPass, &self.scrubbedThisPass)
    }
}
