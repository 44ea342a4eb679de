/// What starts a dream cycle.
public enum CycleTrigger: String, Sendable, CaseIterable {
    /// `POST /dream`.
    case manual
    /// The progressive interval elapsed.
    case scheduled
    /// Repairs were due and the service was idle.
    case idle
}

/// When to dream: a value-type state machine, driven with explicit times so that tests control the
/// clock. Times are seconds on a monotonic clock.
///
/// The interval grows while cycles come back clean — `base × (1 + n × growth)`, capped, with `n` the
/// number of consecutive clean cycles — and falls back to `base` as soon as a cycle finds damage.
public struct Scheduler: Sendable, Equatable {
    public let baseInterval: Double
    public let growth: Double
    public let maxInterval: Double
    public let idleDelay: Double
    /// Least time between the end of one cycle and an idle start of the next.
    public let idleGap: Double

    public private(set) var cleanStreak = 0
    public private(set) var nextRunAt: Double
    public private(set) var running = false
    public private(set) var lastFinishedAt: Double?

    public init(configuration: DreamConfiguration, now: Double, idleGap: Double = 1) {
        self.baseInterval = configuration.baseInterval
        self.growth = configuration.growth
        self.maxInterval = configuration.maxInterval
        self.idleDelay = configuration.idleDelay
        self.idleGap = idleGap
        self.nextRunAt = now + min(configuration.maxInterval, configuration.baseInterval)
    }

    /// The interval that applies after the current streak of clean cycles.
    public var currentInterval: Double {
        min(self.maxInterval, self.baseInterval * (1 + Double(self.cleanStreak) * self.growth))
    }

    public enum Decision: Sendable, Equatable {
        case start(CycleTrigger)
        /// Nothing to do before this time (unless something changes: a request for a cycle, new
        /// repairs, the service going idle).
        case wait(until: Double)
    }

    /// - Parameters:
    ///   - now: The current time.
    ///   - manualRequested: A client asked for a cycle.
    ///   - readyRepairs: Queued repairs that are due now.
    ///   - idleFor: Seconds since the last foreground request (0 while one is in flight).
    public func decide(now: Double, manualRequested: Bool, readyRepairs: Int, idleFor: Double) -> Decision {
        if self.running { return .wait(until: .infinity) }
        if manualRequested { return .start(.manual) }
        if now >= self.nextRunAt { return .start(.scheduled) }
        if readyRepairs > 0, idleFor >= self.idleDelay, now - (self.lastFinishedAt ?? -.infinity) >= self.idleGap {
            return .start(.idle)
        }
        return .wait(until: self.nextRunAt)
    }

    public mutating func cycleStarted() {
        self.running = true
    }

    /// - Parameter foundDamage: Whether the cycle found or repaired anything.
    public mutating func cycleFinished(now: Double, foundDamage: Bool) {
        self.running = false
        self.cleanStreak = foundDamage ? 0 : self.cleanStreak + 1
        self.lastFinishedAt = now
        self.nextRunAt = now + self.currentInterval
    }
}
