import CarmaJSON
import FragmentCore

/// Everything one dream cycle did, kept up to date while it runs and stored when it ends.
public struct CycleReport: Sendable {
    public enum State: String, Sendable {
        case running
        case finished
        /// Stopped by a shutdown (or found running after a restart); its queue resumes next time.
        case interrupted
    }

    /// One unit of work: a fragment repaired (or not), found damaged, or a redundancy copy rewritten.
    public struct Event: Sendable {
        public var id: String
        public var action: String
        public var tier: String?
        public var outcome: String
        public var durationMilliseconds: Double?
        public var detail: JSONObject
    }

    public struct Phase: Sendable {
        public var name: String
        public var startedAt: Timestamp
        public var durationMilliseconds: Double
        public var counts: [String: Int]
    }

    public let id: Int64
    public let trigger: CycleTrigger
    public var state: State = .running
    public let startedAt: Timestamp
    public var finishedAt: Timestamp?
    public var durationMilliseconds: Double = 0
    public let budget: CycleBudget
    public var queueAtStart = 0
    public var phases: [Phase] = []
    /// Damage the scrub found, by kind.
    public var detected: [String: Int] = [:]
    /// Repairs by tier, then by outcome.
    public var repairs: [String: [String: Int]] = [:]
    public var outcomes: [String: Int] = [:]
    public var scrubbed = 0
    public var events: [Event] = []
    public var eventsTruncated = false
    public var stopReason: String?
    /// What compaction did: segments removed, live records copied forward, tombstones, space.
    public var compaction: CompactionSummary?

    public static let maxEvents = 20_000

    public init(id: Int64, trigger: CycleTrigger, startedAt: Timestamp, budget: CycleBudget) {
        self.id = id
        self.trigger = trigger
        self.startedAt = startedAt
        self.budget = budget
    }

    mutating func record(_ event: Event) {
        if let tier = event.tier {
            self.repairs[tier, default: [:]][event.outcome, default: 0] += 1
        }
        if event.action == "repair" {
            self.outcomes[event.outcome, default: 0] += 1
        }
        if self.events.count < Self.maxEvents {
            self.events.append(event)
        } else {
            self.eventsTruncated = true
        }
    }

    /// Whether the cycle met any damage (for the scheduler's clean streak).
    public var foundDamage: Bool {
        self.queueAtStart > 0 || !self.detected.isEmpty || self.outcomes.values.contains { $0 > 0 }
    }

    public func json(includeEvents: Bool = true) -> JSONValue {
        var object: JSONObject = [
            "id": .number(Double(self.id)),
            "trigger": .string(self.trigger.rawValue),
            "state": .string(self.state.rawValue),
            "started_at": .string(self.startedAt.rfc3339),
            "finished_at": self.finishedAt.map { .string($0.rfc3339) } ?? .null,
            "duration_ms": .number(Self.round(self.durationMilliseconds)),
            "budget": [
                "max_repairs": .number(Double(self.budget.maxRepairs)),
                "max_seconds": .number(self.budget.maxSeconds),
                "scrub_fragments": .number(Double(self.budget.scrubFragments)),
            ],
            "queue_at_start": .number(Double(self.queueAtStart)),
            "scrubbed": .number(Double(self.scrubbed)),
        ]
        object["phases"] = .array(
            self.phases.map { phase in
                [
                    "name": .string(phase.name),
                    "started_at": .string(phase.startedAt.rfc3339),
                    "duration_ms": .number(Self.round(phase.durationMilliseconds)),
                    "counts": Self.counts(phase.counts),
                ]
            })
        object["detected"] = Self.counts(self.detected)
        var repairs = JSONObject()
        for tier in self.repairs.keys.sorted() {
            repairs[tier] = Self.counts(self.repairs[tier]!)
        }
        object["repairs"] = .object(repairs)
        object["outcomes"] = Self.counts(self.outcomes)
        if let compaction = self.compaction {
            object["compaction"] = [
                "segments_removed": .number(Double(compaction.segments)), "records_copied": .number(Double(compaction.recordsCopied)),
                "tombstones_kept": .number(Double(compaction.tombstonesKept)),
                "tombstones_dropped": .number(Double(compaction.tombstonesDropped)),
                "bytes_reclaimed": .number(Double(compaction.bytesReclaimed)),
                "expired": .number(Double(compaction.expired)),
            ]
        }
        if let stopReason = self.stopReason {
            object["stop_reason"] = .string(stopReason)
        }
        if includeEvents {
            object["events"] = .array(self.events.map(Self.eventJSON))
            object["events_truncated"] = .bool(self.eventsTruncated)
        }
        return .object(object)
    }

    static func eventJSON(_ event: Event) -> JSONValue {
        var object: JSONObject = ["id": .string(event.id), "action": .string(event.action), "outcome": .string(event.outcome)]
        if let tier = event.tier { object["tier"] = .string(tier) }
        if let duration = event.durationMilliseconds { object["duration_ms"] = .number(round(duration)) }
        for (key, value) in event.detail { object[key] = value }
        return .object(object)
    }

    static func counts(_ counts: [String: Int]) -> JSONValue {
        var object = JSONObject()
        for key in counts.keys.sorted() { object[key] = .number(Double(counts[key]!)) }
        return .object(object)
    }

    static func round(_ value: Double) -> Double {
        (value * 1000).rounded() / 1000
    }
}
