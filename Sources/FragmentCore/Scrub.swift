
/// What the scrub found for one fragment.
public enum ScrubFinding: Sendable, Equatable {
    case intact
    /// The served payload is damaged; the fragment is now blank and queued.
    case damaged(BlankReason)
    /// The served payload is fine but the redundancy copy was damaged; it was rewritten.
    case redundancyRepaired(BlankReason)
    /// The redundancy copy is damaged and could not be rewritten.
    case redundancyDamaged(BlankReason)
    /// Blank, unknown or changed meanwhile: nothing to verify.
    case skipped
}

/// A slice of the scrub's walk over the logs.
public struct ScrubSlice: Sendable {
    /// Records verified: a fragment has two, its record and its redundancy copy (the unit of the
    /// engine's scrub budget and progress).
    public var verified = 0
    /// What was wrong, by fragment id.
    public var findings: [(id: String, finding: ScrubFinding)] = []
    /// The walk reached the end of both logs and starts again.
    public var passCompleted = false

    package init() {}
}

/// Where the scrub is: which log, which segment, and the records of that segment still to verify.
extension ScrubSlice {
    package init(scrubbed verified: Int, findings: [(id: String, finding: ScrubFinding)], passCompleted: Bool) {
        self.init()
        self.verified = verified
        self.findings = findings
        self.passCompleted = passCompleted
    }
}
