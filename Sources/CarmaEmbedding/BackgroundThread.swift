import CEncoderKernels

/// How a background embedder's extra threads stay out of the foreground's way: they run at a lower
/// scheduling priority (nice 10, about a tenth of a normal thread's share of a contested core), so
/// that they fill the cores requests leave idle and give them back as soon as requests need them,
/// without a hand-off. The first embedder thread keeps normal priority, as the single one had
/// before, so that a loaded machine still drains the backlog.
public enum BackgroundThread {
    /// The niceness of the extra threads.
    public static let niceness: Int32 = 10

    /// Lowers the calling thread's priority to `niceness` (Linux: per thread). Best effort: a
    /// refusal leaves the thread as it was.
    public static func lowerPriority() {
        _ = carma_set_thread_niceness(Self.niceness)
    }
}
