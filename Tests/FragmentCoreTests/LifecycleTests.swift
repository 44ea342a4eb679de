import CarmaJSON
import FragmentCore
import Testing

/// Every event against every state a fragment can be in, checked against the table in
/// `FragmentLifecycle`'s documentation.
@Suite("Fragment lifecycle")
struct LifecycleTests {
    static let now = Timestamp(milliseconds: 1_700_000_000_000)
    static let retry = Timestamp(milliseconds: 1_700_000_060_000)

    /// The kinds of event, each made concrete.
    enum Kind: String, CaseIterable, Sendable {
        case written, writtenBlank, damaged, recovered, reconstructed, repairFailed, repairFailedQuietly, deleted, expired
    }

    /// What the table says: the status after (nil: gone), the queue change's case, the history kinds;
    /// nil when the event does not apply.
    struct Expected: Equatable {
        var status: FragmentStatus?
        var queue: String
        var history: [EventKind]
    }

    static func row(_ status: FragmentStatus) -> FragmentRow {
        var row = FragmentRow(
            id: "a", version: 3, status: status, checksum: 0xAAAA, recordLength: 40, size: 12, links: ["b"], tags: ["t"],
            createdAt: Timestamp(milliseconds: 1_600_000_000_000), updatedAt: Timestamp(milliseconds: 1_650_000_000_000))
        switch status {
        case .blank:
            row.blankReason = .missing
            row.lostAt = Timestamp(milliseconds: 1_690_000_000_000)
            row.detectedBy = .read
        case .reconstructed:
            row.originalChecksum = 0xBBBB
            row.originalLength = 44
            row.confidence = 0.6
            row.checksum = 0xCCCC
            row.recordLength = 50
        case .ok:
            break
        }
        return row
    }

    static func event(_ kind: Kind, on row: FragmentRow?) -> LifecycleEvent {
        let target = RepairTarget(row: row ?? Self.row(.blank))
        switch kind {
        case .written:
            return .written(FragmentRow(id: "a", version: 4, status: .ok, checksum: 1, recordLength: 30, size: 5, links: [], tags: [], createdAt: Self.now, updatedAt: Self.now), imported: false)
        case .writtenBlank:
            var blank = FragmentRow(id: "a", version: 4, status: .blank, checksum: 1, recordLength: 30, size: 5, links: [], tags: [], createdAt: Self.now, updatedAt: Self.now)
            blank.blankReason = .checksumMismatch
            return .written(blank, imported: true)
        case .damaged:
            return .damaged(.checksumMismatch, detectedBy: .scrub, priority: .scrub)
        case .recovered:
            return .recovered(Restoration(target: target, record: [1, 2, 3], tier: .redundancy, source: "test", cycle: 7, durationMilliseconds: 1))
        case .reconstructed:
            let stored = StoredReconstruction(record: Array(repeating: 7, count: 61), checksum: 0xDDDD, confidence: 0.42, detail: ["confidence": .number(0.42)])
            return .reconstructed(stored, attempt: 2, retryAt: Self.retry)
        case .repairFailed:
            return .repairFailed(reason: "nothing left", attempt: 5, retryAt: Self.retry, cycle: 9, recorded: true)
        case .repairFailedQuietly:
            return .repairFailed(reason: "no exact source yet", attempt: 5, retryAt: Self.retry, cycle: 9, recorded: false)
        case .deleted:
            return .deleted
        case .expired:
            return .expired
        }
    }

    /// The table, written out.
    static func expected(_ kind: Kind, from status: FragmentStatus?) -> Expected? {
        switch (kind, status) {
        case (.written, nil): Expected(status: .ok, queue: "keep", history: [.created])
        case (.written, .ok?): Expected(status: .ok, queue: "keep", history: [.updated])
        case (.written, _): Expected(status: .ok, queue: "dequeue", history: [.updated])
        case (.writtenBlank, nil): Expected(status: .blank, queue: "enqueue", history: [.created])
        case (.writtenBlank, _): Expected(status: .blank, queue: "enqueue", history: [.updated])
        case (.damaged, .ok?), (.damaged, .reconstructed?): Expected(status: .blank, queue: "enqueue", history: [.lost, .queued])
        case (.recovered, .blank?), (.recovered, .reconstructed?): Expected(status: .ok, queue: "dequeue", history: [.recovered])
        case (.reconstructed, .blank?): Expected(status: .reconstructed, queue: "postpone", history: [.reconstructed])
        case (.repairFailed, let status?): Expected(status: status, queue: "postpone", history: [.repairFailed])
        case (.repairFailedQuietly, let status?): Expected(status: status, queue: "postpone", history: [])
        case (.deleted, _?), (.expired, _?): Expected(status: nil, queue: "dequeue", history: [])
        default: nil
        }
    }

    static func queueCase(_ change: QueueChange) -> String {
        switch change {
        case .keep: "keep"
        case .enqueue: "enqueue"
        case .dequeue: "dequeue"
        case .postpone: "postpone"
        }
    }

    @Test("every event against every state follows the table", arguments: Kind.allCases)
    func table(kind: Kind) {
        for status in [nil] + FragmentStatus.allCases.map(Optional.some) {
            let row = status.map(Self.row)
            let event = Self.event(kind, on: row)
            let transition = FragmentLifecycle.transition(from: row, progress: RepairProgress(attempts: 1), on: event, at: Self.now)
            let got = transition.map { Expected(status: $0.row?.status, queue: Self.queueCase($0.queue), history: $0.history.map(\.kind)) }
            #expect(got == Self.expected(kind, from: status), "\(kind) from \(status.map(\.rawValue) ?? "none")")
            #expect(FragmentLifecycle.applies(event, to: status) == (got != nil))
            if let status {
                #expect(FragmentLifecycle.statuses(for: event).contains(status) == (got != nil))
            }
        }
    }

    @Test("a blank keeps what was lost and when; a recovery clears it and takes the exact checksum")
    func blankAndRecovered() throws {
        let damaged = try #require(FragmentLifecycle.transition(from: Self.row(.ok), on: Self.event(.damaged, on: nil), at: Self.now))
        #expect(damaged.row?.blankReason == .checksumMismatch && damaged.row?.lostAt == Self.now && damaged.row?.detectedBy == .scrub)
        #expect(damaged.queue == .enqueue(.scrub, reason: "scrub: checksum_mismatch"))

        let reconstructed = Self.row(.reconstructed)
        let recovered = try #require(FragmentLifecycle.transition(from: reconstructed, on: Self.event(.recovered, on: reconstructed), at: Self.now))
        let row = try #require(recovered.row)
        #expect(row.checksum == 0xBBBB && row.recordLength == 44, "the original's checksum and length")
        #expect(row.originalChecksum == nil && row.originalLength == nil && row.confidence == nil && row.blankReason == nil && row.lostAt == nil)
        #expect(recovered.progress == RepairProgress())
    }

    @Test("a reconstruction keeps the original's checksum and length and counts the attempt once")
    func reconstruction() throws {
        let blank = Self.row(.blank)
        let transition = try #require(
            FragmentLifecycle.transition(from: blank, progress: RepairProgress(attempts: 1), on: Self.event(.reconstructed, on: blank), at: Self.now))
        let row = try #require(transition.row)
        #expect(row.originalChecksum == 0xAAAA && row.originalLength == 40 && row.checksum == 0xDDDD && row.recordLength == 61 && row.confidence == 0.42)
        #expect(transition.queue == .postpone(priority: .background, attempts: 2, notBefore: Self.retry, error: FragmentLifecycle.waitingForExactSource))
        #expect(transition.progress == RepairProgress(attempts: 2, lastError: FragmentLifecycle.waitingForExactSource, notBefore: Self.retry))
    }

    @Test("a failed attempt sets the count the engine gives, the backoff and the error")
    func failedAttempt() throws {
        let transition = try #require(FragmentLifecycle.transition(from: Self.row(.blank), on: Self.event(.repairFailed, on: nil), at: Self.now))
        #expect(transition.progress == RepairProgress(attempts: 5, lastError: "nothing left", notBefore: Self.retry))
        #expect(transition.queue == .postpone(priority: nil, attempts: 5, notBefore: Self.retry, error: "nothing left"))
        #expect(transition.history.first?.detail["attempt"] == .number(5))
    }

    @Test("deleting or expiring takes everything: queue and history")
    func gone() throws {
        for kind in [Kind.deleted, .expired] {
            let transition = try #require(FragmentLifecycle.transition(from: Self.row(.blank), on: Self.event(kind, on: nil), at: Self.now))
            #expect(transition.row == nil && transition.clearsHistory && transition.queue == .dequeue)
        }
    }
}
