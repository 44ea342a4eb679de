import Foundation
import Synchronization

/// A named background loop on a thread of its own: the one shape every background job of the store
/// takes (the indexer, the embedder, the registry's apply and checkpoint, the change feed, the dream
/// engine). Its owner starts it once and stops it once; `stop` waits until the thread has ended.
///
/// Each pass of the body answers what it did: `worked` (go again, after the pause the duty cycle asks
/// for), `idle` (nothing to do: sleep until woken or `interval` passed) or `finished` (the loop is
/// over, e.g. its queue was closed). A body that blocks on a queue of its own ends when that queue is
/// closed: close it before `stop`. `onStop` runs when the stop is asked, to wake a body that waits
/// on a condition of its own.
public final class Worker: @unchecked Sendable {
    // @unchecked: `stopping`, `finished`, `started` and `woken` are touched with `condition` locked.
    public enum Pass: Sendable {
        case worked
        case idle
        case finished
    }

    /// What a worker has done since it started, for metrics.
    public struct Statistics: Sendable, Equatable {
        public var name: String
        /// Passes that did work.
        public var passes: Int
        /// Seconds spent in passes that did work.
        public var busySeconds: Double
        /// Whether the thread is running.
        public var running: Bool
    }

    public let name: String
    /// Longest sleep when idle before the body runs again unasked; nil: only when woken.
    private let interval: Double?
    /// The share of time the worker may be busy while it has work (1: no pause).
    private let dutyCycle: Double
    private let condition = NSCondition()
    private var started = false
    private var stopping = false
    private var finished = false
    private var woken = false
    private var onStop: (@Sendable () -> Void)?
    private let passes = Atomic<Int>(0)
    private let busyNanoseconds = Atomic<Int>(0)

    public init(name: String, interval: Double? = nil, dutyCycle: Double = 1) {
        self.name = name
        self.interval = interval
        self.dutyCycle = min(1, max(0.01, dutyCycle))
    }

    /// Starts the thread running `body` pass after pass (after `setUp`, on the thread: its priority,
    /// say). A second call does nothing.
    public func start(setUp: (@Sendable () -> Void)? = nil, onStop: (@Sendable () -> Void)? = nil, _ body: @escaping @Sendable () -> Pass) {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.started, !self.stopping else { return }
        self.started = true
        self.onStop = onStop
        let thread = Thread { [self] in
            setUp?()
            self.loop(body)
        }
        thread.name = "carma-\(self.name)"
        thread.start()
    }

    /// Runs the body once more soon, if it is idle.
    public func wake() {
        self.condition.lock()
        self.woken = true
        self.condition.broadcast()
        self.condition.unlock()
    }

    /// Whether a stop was asked (a long pass checks it between units of work).
    public var isStopping: Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.stopping
    }

    /// Asks the loop to end after the pass it is in, and waits until the thread has ended. Safe to
    /// call more than once, and on a worker never started.
    public func stop() {
        self.condition.lock()
        self.stopping = true
        self.condition.broadcast()
        let (wasStarted, onStop) = (self.started, self.onStop)
        self.condition.unlock()
        onStop?()
        guard wasStarted else { return }
        self.condition.lock()
        while !self.finished {
            self.condition.wait()
        }
        self.condition.unlock()
    }

    public var statistics: Statistics {
        self.condition.lock()
        let running = self.started && !self.finished
        self.condition.unlock()
        return Statistics(
            name: self.name, passes: self.passes.load(ordering: .relaxed),
            busySeconds: Double(self.busyNanoseconds.load(ordering: .relaxed)) / 1e9, running: running)
    }

    private func loop(_ body: @Sendable () -> Pass) {
        while !self.isStopping {
            let began = ContinuousClock.now
            let pass = body()
            if pass == .finished { break }
            let elapsed = ContinuousClock.now - began
            if pass == .worked {
                self.passes.add(1, ordering: .relaxed)
                self.busyNanoseconds.add(Int(elapsed.components.seconds) * 1_000_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000), ordering: .relaxed)
            }
            self.pause(after: pass, elapsed: elapsed)
        }
        self.condition.lock()
        self.finished = true
        self.condition.broadcast()
        self.condition.unlock()
    }

    /// After work, the pause the duty cycle asks for; when idle, until woken or the interval passed.
    private func pause(after pass: Pass, elapsed: Duration) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let wait: Double? =
            switch pass {
            case .worked: self.dutyCycle < 1 ? seconds * (1 - self.dutyCycle) / self.dutyCycle : nil
            case .idle: self.interval ?? .infinity
            case .finished: nil
            }
        guard let wait, wait > 0 else { return }
        self.condition.lock()
        defer { self.condition.unlock() }
        // Foundation on Linux traps on a wait until a far date: an endless wait is a plain wait.
        let deadline = wait.isFinite ? Date(timeIntervalSinceNow: wait) : nil
        while !self.stopping, !(pass == .idle && self.woken) {
            if let deadline {
                if !self.condition.wait(until: deadline) { break }
            } else {
                self.condition.wait()
            }
        }
        self.woken = false
    }
}

/// Workers stopped together, in the order they were declared: the one place a backend says what
/// shuts down before what.
public struct ShutdownOrder: Sendable {
    private let steps: [@Sendable () -> Void]

    /// - Parameter steps: Run in order by `run()`; each stops one worker (or closes a queue first).
    public init(_ steps: [@Sendable () -> Void]) {
        self.steps = steps
    }

    public func run() {
        for step in self.steps { step() }
    }
}
