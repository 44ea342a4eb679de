import CarmaJSON

/// Something that happens to a fragment.
public enum LifecycleEvent: Sendable {
    /// A client stored a version (`PUT` or an import); `row` is the new version's row.
    case written(FragmentRow, imported: Bool)
    /// Its served record was found missing, corrupt or unreadable.
    case damaged(BlankReason, detectedBy: Detection, priority: RepairPriority)
    /// Its exact record was put back from a tier.
    case recovered(Restoration)
    /// An approximate rebuild is served from now on, while an exact source is still looked for.
    /// `attempt`: the repair attempt that made it (the ticket's attempts so far, plus one).
    case reconstructed(StoredReconstruction, attempt: Int, retryAt: Timestamp)
    /// A repair attempt found nothing to repair with; the next one is due at `retryAt`.
    /// `recorded`: whether the history says so (not for a reconstruction still waiting for an exact
    /// source, which would repeat every cycle).
    case repairFailed(reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recorded: Bool)
    /// A client deleted it.
    case deleted
    /// Its time to live ran out.
    case expired
}

/// What the repair queue does with a fragment's ticket.
public enum QueueChange: Sendable, Equatable {
    case keep
    /// Queued (or kept at the more urgent of the two priorities when already queued).
    case enqueue(RepairPriority, reason: String)
    /// Taken off the queue.
    case dequeue
    /// Kept for a later attempt: the attempts made so far, the earliest next one, why; `priority`
    /// replaces the ticket's when set.
    case postpone(priority: RepairPriority?, attempts: Int, notBefore: Timestamp, error: String)
}

/// One line of a fragment's history.
public struct HistoryEntry: Sendable, Equatable {
    public var kind: EventKind
    public var detail: JSONObject
}

/// The outcome of an event: the fragment's row afterwards (nil when it is gone), where its repair
/// stands, what the queue does, and what the history records. Backends store these; they decide none
/// of them.
public struct LifecycleTransition: Sendable, Equatable {
    public var row: FragmentRow?
    public var progress: RepairProgress
    public var queue: QueueChange
    public var history: [HistoryEntry]
    /// Whether the fragment's earlier history goes (it is gone for good).
    public var clearsHistory = false
}

/// A fragment's lifecycle, decided in one place:
///
/// | before                    | event          | after         | queue                        | history             |
/// |---------------------------|----------------|---------------|------------------------------|---------------------|
/// | none                      | written        | ok            | keep                         | created             |
/// | ok                        | written        | ok            | keep                         | updated             |
/// | blank, reconstructed      | written        | ok            | dequeue                      | updated             |
/// | any                       | written blank  | blank         | enqueue(background)          | created or updated  |
/// | ok, reconstructed         | damaged        | blank         | enqueue(priority)            | lost, queued        |
/// | blank, reconstructed      | recovered      | ok            | dequeue                      | recovered           |
/// | blank                     | reconstructed  | reconstructed | postpone(background, attempt)| reconstructed       |
/// | blank, reconstructed, ok  | repair failed  | unchanged     | postpone(attempt)            | repair_failed (opt) |
/// | any                       | deleted        | none          | dequeue                      | none (history goes) |
/// | any                       | expired        | none          | dequeue                      | none (history goes) |
///
/// Any other pair (a blank damaged again, an ok fragment "recovered", a reconstruction of a
/// fragment that is not blank, any event on an unknown fragment but `written`) is stale: nothing
/// changes, and `transition` answers nil.
public enum FragmentLifecycle {
    /// The reason a newly blank fragment's ticket carries.
    public static func queueReason(_ reason: BlankReason, detectedBy: Detection) -> String {
        "\(detectedBy.rawValue): \(reason.rawValue)"
    }

    /// What the ticket of a blank that came in through an import says.
    public static let importedBlank = "imported blank"

    /// What a reconstruction's ticket says while it waits for an exact source.
    public static let waitingForExactSource = "reconstructed; waiting for an exact source"

    /// The statuses an event of `event`'s kind applies to, for a backend's guard (a fragment not yet
    /// known is left out: only `written` applies to it).
    public static func statuses(for event: LifecycleEvent) -> [FragmentStatus] {
        FragmentStatus.allCases.filter { self.applies(event, to: $0) }
    }

    /// Whether `event` applies to a fragment in `status` (nil: not yet known).
    public static func applies(_ event: LifecycleEvent, to status: FragmentStatus?) -> Bool {
        switch (event, status) {
        case (.written, _): true
        case (.damaged, .ok?), (.damaged, .reconstructed?): true
        case (.recovered, .blank?), (.recovered, .reconstructed?): true
        case (.reconstructed, .blank?): true
        case (.repairFailed, .some): true
        case (.deleted, .some), (.expired, .some): true
        default: false
        }
    }

    /// The transition `event` makes from `row` (nil: unknown) with its repair at `progress`; nil when
    /// the event does not apply (see the table above).
    public static func transition(
        from row: FragmentRow?, progress: RepairProgress = RepairProgress(), on event: LifecycleEvent, at now: Timestamp
    ) -> LifecycleTransition? {
        guard self.applies(event, to: row?.status) else { return nil }
        switch event {
        case .written(let written, let imported):
            let history = [HistoryEntry(kind: row == nil ? .created : .updated, detail: HistoryDetail.written(version: written.version, size: written.size, imported: imported))]
            var queue = QueueChange.keep
            if let status = row?.status, status != .ok { queue = .dequeue }
            // An import may carry a blank: it is queued for repair like one found damaged.
            if written.status == .blank { queue = .enqueue(.background, reason: self.importedBlank) }
            return LifecycleTransition(row: written, progress: RepairProgress(), queue: queue, history: history)

        case .damaged(let reason, let detectedBy, let priority):
            var blank = row!
            blank.status = .blank
            blank.blankReason = reason
            blank.lostAt = now
            blank.detectedBy = detectedBy
            return LifecycleTransition(
                row: blank, progress: progress, queue: .enqueue(priority, reason: self.queueReason(reason, detectedBy: detectedBy)),
                history: [
                    HistoryEntry(kind: .lost, detail: HistoryDetail.lost(version: blank.version, reason: reason, detectedBy: detectedBy)),
                    HistoryEntry(kind: .queued, detail: HistoryDetail.queued(priority)),
                ])

        case .recovered(let item):
            var healthy = row!
            healthy.status = .ok
            healthy.checksum = item.target.exactChecksum
            healthy.recordLength = item.target.exactLength
            healthy.blankReason = nil
            healthy.lostAt = nil
            healthy.detectedBy = nil
            healthy.originalChecksum = nil
            healthy.originalLength = nil
            healthy.confidence = nil
            return LifecycleTransition(
                row: healthy, progress: RepairProgress(), queue: .dequeue, history: [HistoryEntry(kind: .recovered, detail: HistoryDetail.recovered(item))])

        case .reconstructed(let stored, let attempts, let retryAt):
            var rebuilt = row!
            rebuilt.status = .reconstructed
            rebuilt.originalChecksum = rebuilt.exactChecksum
            rebuilt.originalLength = rebuilt.exactLength
            rebuilt.checksum = stored.checksum
            rebuilt.recordLength = stored.record.count
            rebuilt.confidence = stored.confidence
            return LifecycleTransition(
                row: rebuilt, progress: RepairProgress(attempts: attempts, lastError: self.waitingForExactSource, notBefore: retryAt),
                queue: .postpone(priority: .background, attempts: attempts, notBefore: retryAt, error: self.waitingForExactSource),
                history: [HistoryEntry(kind: .reconstructed, detail: stored.detail)])

        case .repairFailed(let reason, let attempt, let retryAt, let cycle, let recorded):
            let target = RepairTarget(row: row!)
            return LifecycleTransition(
                row: row, progress: RepairProgress(attempts: attempt, lastError: reason, notBefore: retryAt),
                queue: .postpone(priority: nil, attempts: attempt, notBefore: retryAt, error: reason),
                history: recorded
                    ? [HistoryEntry(kind: .repairFailed, detail: HistoryDetail.repairFailed(target, reason: reason, attempt: attempt, retryAt: retryAt, cycle: cycle))]
                    : [])

        case .deleted, .expired:
            return LifecycleTransition(row: nil, progress: RepairProgress(), queue: .dequeue, history: [], clearsHistory: true)
        }
    }
}
