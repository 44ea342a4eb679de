import CarmaJSON
import Foundation
import FragmentCore
import Logging

// One dream cycle: repair what is queued, scrub a slice of the store, repair what the scrub found.

extension DreamEngine {
    typealias Tier = RepairTier

    func run(_ initial: CycleReport) {
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(Int64(initial.budget.maxSeconds * 1000))
        // Damage found by reads is recorded in the background: let it land before looking at the queue.
        self.store.flush()
        let depth = self.store.repairQueueDepth()
        self.update { $0.queueAtStart = depth.total }
        self.observer?.cycleStarted(trigger: initial.trigger)
        self.store.saveCycleReport(
            id: initial.id, trigger: initial.trigger.rawValue, state: "running", startedAt: initial.startedAt, finishedAt: nil,
            report: initial.json(), wait: false)
        self.logger.info(
            "dream cycle started",
            metadata: ["cycle.id": "\(initial.id)", "cycle.trigger": "\(initial.trigger.rawValue)", "repair_queue.depth": "\(depth.total)",
                       "repair_queue.ready": "\(depth.ready)"])

        var budget = Budget(repairsLeft: initial.budget.maxRepairs, scrubLeft: initial.budget.scrubFragments, deadline: deadline)
        // A ticket is handled at most once per cycle, also when its retry comes due during the cycle.
        var handled = Set<String>()
        var repaired = self.phase("repair", counting: "repaired") { self.repairPhase(cycle: initial.id, budget: &budget, handled: &handled) }
        let scrubFound = self.store.claimScrub(scheduled: initial.trigger != .manual)
            ? self.phase("scrub", counting: "damaged_found") { self.scrubPhase(budget: &budget) } : 0
        // The scrub queues what it finds in the background: let that land, then repair it, and what
        // reads found while the scrub ran.
        self.store.flush()
        if scrubFound > 0 || self.store.repairQueueDepth().ready > 0 {
            repaired += self.phase("repair_after_scrub", counting: "repaired") { self.repairPhase(cycle: initial.id, budget: &budget, handled: &handled) }
        }

        if budget.timeLeft, !self.isStopping {
            // Background chore: reclaim log segments that are mostly superseded records.
            _ = self.phase("compact", counting: "records_copied") {
                let summary = self.store.compact()
                self.update { report in
                    if summary.segments > 0 || summary.tombstonesDropped > 0 || summary.expired > 0 { report.compaction = summary }
                }
                return summary.recordsCopied
            }
        }

        let elapsed = ContinuousClock.now - started
        let seconds = Self.seconds(elapsed)
        var final = self.currentReport ?? initial
        final.state = self.isStopping ? .interrupted : .finished
        if final.state == .interrupted { final.stopReason = "shutdown" }
        final.finishedAt = .now
        final.durationMilliseconds = seconds * 1000
        self.store.saveCycleReport(
            id: final.id, trigger: final.trigger.rawValue, state: final.state.rawValue, startedAt: final.startedAt,
            finishedAt: final.finishedAt, report: final.json(), wait: true)
        self.cycleEnded(final, repairsPerSecond: repaired > 0 && seconds > 0 ? Double(repaired) / seconds : nil)
        self.observer?.cycleFinished(final, seconds: seconds)
        self.observer?.scrubbed(progress: self.scrubProgress)
        var metadata: Logger.Metadata = [
            "cycle.id": "\(final.id)", "cycle.trigger": "\(final.trigger.rawValue)", "cycle.state": "\(final.state.rawValue)",
            "cycle.duration_ms": "\(Int(seconds * 1000))", "cycle.scrubbed": "\(final.scrubbed)",
        ]
        for (outcome, count) in final.outcomes { metadata["cycle.\(outcome)"] = "\(count)" }
        for (kind, count) in final.detected { metadata["cycle.detected.\(kind)"] = "\(count)" }
        self.logger.info("dream cycle finished", metadata: metadata)
    }

    struct Budget {
        var repairsLeft: Int
        var scrubLeft: Int
        let deadline: ContinuousClock.Instant

        var timeLeft: Bool { ContinuousClock.now < self.deadline }
    }

    /// Runs a phase and records its duration and counts in the report.
    private func phase(_ name: String, counting countName: String, _ body: () -> Int) -> Int {
        let startedAt = Timestamp.now
        let started = ContinuousClock.now
        let before = self.currentReport
        let count = body()
        let after = self.currentReport
        var counts: [String: Int] = [countName: count]
        if let before, let after {
            for (outcome, value) in after.outcomes where value != before.outcomes[outcome] {
                counts[outcome] = value - (before.outcomes[outcome] ?? 0)
            }
            for (kind, value) in after.detected where value != before.detected[kind] {
                counts["detected_\(kind)"] = value - (before.detected[kind] ?? 0)
            }
        }
        let duration = Self.seconds(ContinuousClock.now - started) * 1000
        self.update { $0.phases.append(CycleReport.Phase(name: name, startedAt: startedAt, durationMilliseconds: duration, counts: counts)) }
        return count
    }

    // MARK: Repair

    /// Works through due tickets in batches until the queue, the budget or the time runs out.
    /// Returns the number of fragments recovered exactly or reconstructed.
    private func repairPhase(cycle: Int64, budget: inout Budget, handled: inout Set<String>) -> Int {
        var repaired = 0
        while budget.repairsLeft > 0, budget.timeLeft, !self.isStopping {
            let tickets: [RepairTicket]
            do {
                tickets = try self.store.readyRepairs(limit: min(self.configuration.batchSize, budget.repairsLeft) + handled.count)
            } catch {
                self.logger.error("cannot read the repair queue", metadata: ["error": "\(error)"])
                break
            }
            let fresh = tickets.filter { !handled.contains($0.id) }.prefix(min(self.configuration.batchSize, budget.repairsLeft))
            if fresh.isEmpty { break }
            var restorations: [(Restoration, ContinuousClock.Instant)] = []
            for ticket in fresh {
                if self.isStopping || !budget.timeLeft { break }
                handled.insert(ticket.id)
                budget.repairsLeft -= 1
                let unitStarted = ContinuousClock.now
                switch self.repairOne(ticket, cycle: cycle, started: unitStarted) {
                case .restore(let restoration): restorations.append((restoration, unitStarted))
                case .reconstructed: repaired += 1
                case .handled: break
                }
                self.pace(since: unitStarted)
            }
            repaired += self.commit(restorations)
        }
        return repaired
    }

    enum TicketOutcome {
        /// Exact bytes found: commit with the batch.
        case restore(Restoration)
        case reconstructed
        /// Dropped, postponed or failed; already recorded.
        case handled
    }

    /// Finds exact bytes for one ticket, or handles it fully (reconstruction, postponement, drop).
    private func repairOne(_ ticket: RepairTicket, cycle: Int64, started: ContinuousClock.Instant) -> TicketOutcome {
        guard let target = self.store.repairTarget(ticket.id) else {
            // Deleted on purpose since it was queued: nothing to rebuild, ever.
            self.store.dropRepair(ticket.id)
            self.record(ticket.id, tier: nil, outcome: "skipped", started: started, detail: ["reason": "deleted"])
            return .handled
        }
        if target.row.status == .ok {
            self.store.dropRepair(ticket.id)
            self.record(ticket.id, tier: nil, outcome: "skipped", started: started, detail: ["reason": "already ok"])
            return .handled
        }
        // Cheapest first; every tier's bytes are verified by the store against the kept checksum.
        let exact: (Tier, [UInt8], String)? = [Tier.primary, .cache, .redundancy, .sketch].lazy.compactMap { tier in
            self.store.exactRecord(target, from: tier).map { (tier, $0, self.store.sourceDescription(tier)) }
        }.first
        if let (tier, record, source) = exact {
            let milliseconds = Self.seconds(ContinuousClock.now - started) * 1000
            return .restore(Restoration(target: target, record: record, tier: tier, source: source, cycle: cycle, durationMilliseconds: milliseconds))
        }
        let attempt = ticket.attempts + 1
        if target.row.status == .reconstructed {
            // Already rebuilt approximately; keep looking for an exact source in later cycles.
            let retryAt = self.retryTime(attempt: attempt)
            try? self.store.postponeRepair(target, reason: "no exact source yet", attempt: attempt, retryAt: retryAt, cycle: cycle, recordEvent: false)
            self.record(ticket.id, tier: Tier.none, outcome: "still_reconstructed", started: started, detail: ["next_try_at": .string(retryAt.rfc3339)])
            return .handled
        }
        if let reconstructor = self.reconstructor {
            if let rebuilt = reconstructor.reconstruct(target, from: self.store) {
                if rebuilt.confidence >= self.configuration.confidenceFloor {
                    let retryAt = self.retryTime(attempt: attempt)
                    do {
                        if try self.store.saveReconstruction(target, rebuilt, attempt: attempt, cycle: cycle, retryAt: retryAt) {
                            self.observer?.reconstructed(confidence: rebuilt.confidence)
                            self.record(
                                ticket.id, tier: Tier.reconstruction, outcome: "reconstructed", started: started,
                                detail: ["confidence": .number((rebuilt.confidence * 1000).rounded() / 1000), "sources": JSONValue(rebuilt.sources.map(FragmentKey.local)), "method": .string(rebuilt.method)])
                            return .reconstructed
                        }
                        return .handled
                    } catch {
                        return self.fail(target, ticket: ticket, reason: "cannot store the reconstruction: \(error)", cycle: cycle, started: started)
                    }
                }
                return self.fail(
                    target, ticket: ticket,
                    reason: "no exact source; reconstruction confidence \((rebuilt.confidence * 1000).rounded() / 1000) is below the floor \(self.configuration.confidenceFloor)",
                    cycle: cycle, started: started)
            }
            return self.fail(target, ticket: ticket, reason: "no exact source and no surviving context to rebuild from", cycle: cycle, started: started)
        }
        return self.fail(target, ticket: ticket, reason: "no exact source (payload and redundancy copy both lost)", cycle: cycle, started: started)
    }

    /// When retry number `attempt` is due, from now.
    private func retryTime(attempt: Int) -> Timestamp {
        Timestamp.now.adding(milliseconds: Int64(self.configuration.retryDelay(attempt: attempt) * 1000))
    }

    private func fail(_ target: RepairTarget, ticket: RepairTicket, reason: String, cycle: Int64, started: ContinuousClock.Instant) -> TicketOutcome {
        let attempt = ticket.attempts + 1
        let retryAt = self.retryTime(attempt: attempt)
        do {
            try self.store.postponeRepair(target, reason: reason, attempt: attempt, retryAt: retryAt, cycle: cycle, recordEvent: true)
        } catch {
            self.logger.error("cannot postpone a repair", metadata: ["fragment.id": "\(target.id)", "error": "\(error)"])
        }
        self.record(
            target.id, tier: Tier.none, outcome: "failed", started: started,
            detail: ["reason": .string(reason), "attempt": .number(Double(attempt)), "next_try_at": .string(retryAt.rfc3339)])
        return .handled
    }

    /// Commits a batch of exact restorations in one group and records each outcome.
    private func commit(_ batch: [(Restoration, ContinuousClock.Instant)]) -> Int {
        guard !batch.isEmpty else { return 0 }
        let started = ContinuousClock.now
        let results: [Bool]
        do {
            results = try self.store.restore(batch.map(\.0))
        } catch {
            self.logger.error("cannot commit restored payloads", metadata: ["error": "\(error)", "batch": "\(batch.count)"])
            for (restoration, unitStarted) in batch {
                self.record(restoration.target.id, tier: restoration.tier, outcome: "failed", started: unitStarted, detail: ["reason": .string("\(error)")])
            }
            return 0
        }
        self.pace(since: started)
        var recovered = 0
        for ((restoration, unitStarted), applied) in zip(batch, results) {
            if applied {
                recovered += 1
                self.record(
                    restoration.target.id, tier: restoration.tier, outcome: "recovered", started: unitStarted,
                    detail: ["source": .string(restoration.source), "was": .string(restoration.target.row.status.rawValue)])
            } else {
                self.record(restoration.target.id, tier: restoration.tier, outcome: "skipped", started: unitStarted, detail: ["reason": "changed meanwhile"])
            }
        }
        return recovered
    }

    private func record(_ id: String, tier: Tier?, outcome: String, started: ContinuousClock.Instant, detail: JSONObject) {
        let seconds = Self.seconds(ContinuousClock.now - started)
        if let tier { self.observer?.repairFinished(tier: tier.rawValue, outcome: outcome, seconds: seconds) }
        self.update {
            $0.record(CycleReport.Event(id: id, action: "repair", tier: tier?.rawValue, outcome: outcome, durationMilliseconds: seconds * 1000, detail: detail))
        }
    }

    // MARK: Scrub

    /// Verifies the next slice of records (the primary log, then the redundancy log, segment by
    /// segment); returns how many fragments it found damaged.
    private func scrubPhase(budget: inout Budget) -> Int {
        var damaged = 0
        var verified = 0
        // At most one full pass per cycle: verifying a record twice in one cycle finds nothing new.
        budget.scrubLeft = min(budget.scrubLeft, 2 * self.store.fragmentCount)
        while budget.scrubLeft > 0, budget.timeLeft, !self.isStopping {
            let started = ContinuousClock.now
            let slice = self.store.scrub(limit: min(256, budget.scrubLeft))
            budget.scrubLeft -= max(1, slice.verified)
            verified += slice.verified
            self.withScrubState { _, pass, scrubbed in
                scrubbed += slice.verified
                if slice.passCompleted {
                    pass += 1
                    scrubbed = 0
                }
            }
            for (id, finding) in slice.findings {
                switch finding {
                case .intact, .skipped:
                    break
                case .damaged(let reason):
                    damaged += 1
                    self.noteScrub(id, kind: reason.rawValue, outcome: "queued", started: started)
                case .redundancyRepaired(let reason):
                    self.noteScrub(id, kind: Self.redundancyDamageKind(reason), outcome: "redundancy_repaired", started: started)
                case .redundancyDamaged(let reason):
                    self.noteScrub(id, kind: Self.redundancyDamageKind(reason), outcome: "redundancy_unrepaired", started: started)
                }
            }
            self.update { $0.scrubbed = verified }
            self.pace(since: started)
            if slice.passCompleted { break }
        }
        self.update { $0.scrubbed = verified }
        self.observer?.scrubbed(progress: self.scrubProgress)
        return damaged
    }

    /// The metric and report kind of a damaged redundancy copy.
    private static func redundancyDamageKind(_ reason: BlankReason) -> String {
        reason == .missing ? "redundancy_missing" : "redundancy_corrupt"
    }

    private func noteScrub(_ id: String, kind: String, outcome: String, started: ContinuousClock.Instant) {
        let milliseconds = Self.seconds(ContinuousClock.now - started) * 1000
        self.update {
            $0.detected[kind, default: 0] += 1
            $0.record(CycleReport.Event(id: id, action: "scrub", tier: nil, outcome: outcome, durationMilliseconds: milliseconds, detail: ["kind": .string(kind)]))
        }
    }

    // MARK: Politeness

    /// Sleeps in proportion to the work just done (the duty cycle), then waits a little while
    /// foreground requests are in flight.
    func pace(since started: ContinuousClock.Instant) {
        let work = Self.seconds(ContinuousClock.now - started)
        let duty = min(1, max(0.01, self.configuration.dutyCycle))
        if duty < 1 {
            let rest = min(0.25, work * (1 / duty - 1))
            if rest > 0 { usleep(UInt32(rest * 1_000_000)) }
        }
        var waited = 0.0
        while waited < self.configuration.foregroundBackoff, self.foreground.requestsInFlight > 0 {
            usleep(200)
            waited += 0.0002
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
