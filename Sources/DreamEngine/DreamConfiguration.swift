/// How often dream cycles run, how much each may do, and how politely.
public struct DreamConfiguration: Sendable {
    /// First interval between scheduled cycles, in seconds.
    public var baseInterval: Double
    /// Growth per consecutive clean cycle: interval = base × (1 + n × growth).
    public var growth: Double
    /// Longest interval, in seconds.
    public var maxInterval: Double
    /// Start a cycle early when repairs are due and no request arrived for this many seconds.
    public var idleDelay: Double
    /// Most fragments one cycle repairs (each ticket handled counts one).
    public var maxRepairsPerCycle: Int
    /// Most seconds one cycle works.
    public var maxCycleSeconds: Double
    /// Records the scrub verifies per cycle (a fragment has two: its record and its redundancy copy).
    public var scrubPerCycle: Int
    /// Share of wall time background work may use, 0 < d ≤ 1: after work that took t, sleep
    /// t × (1/d − 1).
    public var dutyCycle: Double
    /// Longest pause, per unit of work, while foreground requests are in flight, in seconds.
    public var foregroundBackoff: Double
    /// First retry delay after a failed repair, in seconds; doubles per attempt.
    public var retryBase: Double
    /// Longest retry delay, in seconds.
    public var retryCap: Double
    /// Below this confidence a reconstruction is not accepted: the fragment stays blank.
    public var confidenceFloor: Double
    /// How fragments without an exact copy are rebuilt.
    public var reconstruction: ReconstructionMethod = .meaning
    /// Tickets taken from the queue at a time (restored together in one group commit).
    public var batchSize: Int

    /// - Parameters:
    ///   - baseInterval: Default 300 s.
    ///   - growth: Default 1.0 (5, 10, 15 … minutes after clean cycles).
    ///   - maxInterval: Default 3600 s.
    ///   - idleDelay: Default 2 s.
    ///   - maxRepairsPerCycle: Default 100,000.
    ///   - maxCycleSeconds: Default 300 s.
    ///   - scrubPerCycle: Default 5,000.
    ///   - dutyCycle: Default 0.5.
    ///   - foregroundBackoff: Default 0.002 s.
    ///   - retryBase: Default 30 s.
    ///   - retryCap: Default 3600 s.
    ///   - confidenceFloor: Default 0: every reconstruction made from surviving evidence is stored, flagged with its confidence (a reconstructor returns nothing only when no evidence survives).
    ///   - batchSize: Default 128.
    public init(
        baseInterval: Double = 300,
        growth: Double = 1.0,
        maxInterval: Double = 3600,
        idleDelay: Double = 2,
        maxRepairsPerCycle: Int = 100_000,
        maxCycleSeconds: Double = 300,
        scrubPerCycle: Int = 5000,
        dutyCycle: Double = 0.5,
        foregroundBackoff: Double = 0.002,
        retryBase: Double = 30,
        retryCap: Double = 3600,
        confidenceFloor: Double = 0,
        batchSize: Int = 128
    ) {
        self.baseInterval = baseInterval
        self.growth = growth
        self.maxInterval = maxInterval
        self.idleDelay = idleDelay
        self.maxRepairsPerCycle = maxRepairsPerCycle
        self.maxCycleSeconds = maxCycleSeconds
        self.scrubPerCycle = scrubPerCycle
        self.dutyCycle = dutyCycle
        self.foregroundBackoff = foregroundBackoff
        self.retryBase = retryBase
        self.retryCap = retryCap
        self.confidenceFloor = confidenceFloor
        self.batchSize = batchSize
    }

    /// Delay before retry number `attempt` (1 for the first retry).
    public func retryDelay(attempt: Int) -> Double {
        min(self.retryCap, self.retryBase * Double(1 << min(max(attempt - 1, 0), 20)))
    }
}

/// Limits for one cycle, from the configuration or from a `POST /dream` body.
public struct CycleBudget: Sendable, Equatable {
    public var maxRepairs: Int
    public var maxSeconds: Double
    public var scrubFragments: Int

    public init(maxRepairs: Int, maxSeconds: Double, scrubFragments: Int) {
        self.maxRepairs = maxRepairs
        self.maxSeconds = maxSeconds
        self.scrubFragments = scrubFragments
    }
}

extension DreamConfiguration {
    public var defaultBudget: CycleBudget {
        CycleBudget(maxRepairs: self.maxRepairsPerCycle, maxSeconds: self.maxCycleSeconds, scrubFragments: self.scrubPerCycle)
    }
}

/// The tier-3 method: aimed at the lost fragment's kept embedding (falling back to its sketch when it
/// has none), or at its sketch alone (the method before embeddings; kept for comparison).
public enum ReconstructionMethod: String, Sendable, CaseIterable {
    case meaning
    case sketch

    public var reconstructor: any Reconstructor {
        switch self {
        case .meaning: MeaningReconstructor()
        case .sketch: ContextReconstructor()
        }
    }
}
