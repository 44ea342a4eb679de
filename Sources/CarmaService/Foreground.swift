import DreamEngine
import MicroHTTP
import Synchronization

/// How busy the HTTP side is, for the dream engine's politeness and idle starts; also the server's
/// observer, so it sees every request end.
final class Foreground: ForegroundActivity, HTTPServerObserver {
    private let server = Mutex<HTTPServer?>(nil)
    private let epoch = ContinuousClock.now
    /// Nanoseconds since `epoch` at which the last request ended.
    private let lastRequestEnded = Atomic<Int64>(0)
    /// Called for every finished request (metrics).
    let onRequest: (@Sendable (String, HTTPMethod, Int, Duration) -> Void)?

    init(onRequest: (@Sendable (String, HTTPMethod, Int, Duration) -> Void)? = nil) {
        self.onRequest = onRequest
    }

    func attach(_ server: HTTPServer) {
        self.server.withLock { $0 = server }
    }

    var requestsInFlight: Int {
        self.server.withLock { $0?.inFlightRequests ?? 0 }
    }

    var secondsIdle: Double {
        if self.requestsInFlight > 0 { return 0 }
        return Double(self.nanosecondsSinceEpoch() - self.lastRequestEnded.load(ordering: .relaxed)) / 1e9
    }

    private func nanosecondsSinceEpoch() -> Int64 {
        (ContinuousClock.now - self.epoch).nanoseconds
    }

    func requestFinished(route: String, method: HTTPMethod, status: Int, duration: Duration) {
        // Every server thread ends requests all the time: write the shared word only when it moves by
        // a millisecond or more, so that the threads do not fight over its cache line.
        let now = self.nanosecondsSinceEpoch()
        if now - self.lastRequestEnded.load(ordering: .relaxed) >= 1_000_000 {
            self.lastRequestEnded.store(now, ordering: .relaxed)
        }
        self.onRequest?(route, method, status, duration)
    }
}

extension Duration {
    /// The whole duration in nanoseconds.
    var nanoseconds: Int64 {
        self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
    }
}
