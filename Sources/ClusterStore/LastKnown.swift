import Dispatch
import Synchronization

/// A value read from the database for what must not wait on it (`/metrics`, `/readyz`): each read
/// starts a fetch on another thread and waits for it at most `patience`; a fetch that takes longer
/// (the database stalled) goes on in the background and the last value known is answered meanwhile.
/// While a fetch is still running, no second one starts and nothing waits.
final class LastKnown<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var fetching = false
    }

    private let state = Mutex(State())
    private let patience: Duration
    private static var queue: DispatchQueue { DispatchQueue.global(qos: .utility) }

    init(patience: Duration) {
        self.patience = patience
    }

    /// The fetched value if it comes within the patience, else the last one known (nil if none).
    func read(_ fetch: @escaping @Sendable () -> Value?) -> Value? {
        let start = self.state.withLock { state -> Bool in
            guard !state.fetching else { return false }
            state.fetching = true
            return true
        }
        if start {
            let done = DispatchSemaphore(value: 0)
            Self.queue.async {
                let fetched = fetch()
                self.state.withLock { state in
                    if let fetched { state.value = fetched }
                    state.fetching = false
                }
                done.signal()
            }
            _ = done.wait(timeout: .now() + .milliseconds(Int(self.patience.components.seconds * 1000 + self.patience.components.attoseconds / 1_000_000_000_000_000)))
        }
        return self.state.withLock { $0.value }
    }
}
