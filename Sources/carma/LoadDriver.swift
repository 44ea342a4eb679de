import CarmaClient
import CarmaJSON
import Foundation
import Synchronization

/// Drives requests from many threads, one keep-alive connection each, and records every latency.
///
/// Used by `carma load` and `carma import`, and by the experiment to keep querying before, during and
/// after a dream cycle.
final class LoadDriver: @unchecked Sendable {
    // @unchecked: the per-thread arrays are merged only after every thread has ended.

    struct Sample {
        /// Seconds since the run started, when the request was sent.
        var at: Double
        var latency: Double
        var status: Int
        var ok: Bool
    }

    let host: String
    let port: Int
    let token: String?
    let connections: Int

    init(host: String, port: Int, token: String?, connections: Int) {
        self.host = host
        self.port = port
        self.token = token
        self.connections = connections
    }

    /// Runs until `next` returns nil for every worker, or `stop` is set.
    /// - Parameter next: Given the worker number and its request count so far, the request to send
    ///   (method, path, body) and a check of its response (true if acceptable), or nil to stop.
    func run(
        stop: StopFlag? = nil,
        next: @escaping @Sendable (_ worker: Int, _ sequence: Int) -> (method: String, path: String, body: JSONValue?, check: @Sendable (ClientResponse) -> Bool)?
    ) -> (samples: [Sample], failures: [String], seconds: Double) {
        let start = Date()
        let results = Mutex<[[Sample]]>(Array(repeating: [], count: self.connections))
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for worker in 0..<self.connections {
            group.enter()
            let thread = Thread { [host, port, token] in
                defer { group.leave() }
                let api = CarmaAPI(host: host, port: port, token: token, timeoutSeconds: 30)
                var samples: [Sample] = []
                samples.reserveCapacity(4096)
                var sequence = 0
                while stop?.isSet != true, let request = next(worker, sequence) {
                    sequence += 1
                    let sent = Date()
                    do {
                        let response = try api.request(request.method, request.path, json: request.body)
                        let latency = Date().timeIntervalSince(sent)
                        let ok = request.check(response)
                        samples.append(Sample(at: sent.timeIntervalSince(start), latency: latency, status: response.status, ok: ok))
                        if !ok {
                            failures.withLock { if $0.count < 100 { $0.append("\(request.method) \(request.path): \(response.status) \(response.text.prefix(160))") } }
                        }
                    } catch {
                        samples.append(Sample(at: sent.timeIntervalSince(start), latency: Date().timeIntervalSince(sent), status: 0, ok: false))
                        failures.withLock { if $0.count < 100 { $0.append("\(request.method) \(request.path): \(error)") } }
                    }
                }
                results.withLock { $0[worker] = samples }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        return (results.withLock { $0.flatMap { $0 } }, failures.withLock { $0 }, Date().timeIntervalSince(start))
    }
}

/// Percentiles of a set of latencies, in milliseconds.
struct LatencySummary {
    let count: Int
    let p50: Double
    let p90: Double
    let p99: Double
    let max: Double
    let mean: Double

    init(_ seconds: [Double]) {
        let sorted = seconds.sorted()
        self.count = sorted.count
        func at(_ q: Double) -> Double { percentile(sorted, q) * 1000 }
        self.p50 = at(0.5)
        self.p90 = at(0.9)
        self.p99 = at(0.99)
        self.max = (sorted.last ?? 0) * 1000
        self.mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count) * 1000
    }

    var json: JSONValue {
        func r(_ value: Double) -> JSONValue { .number((value * 1000).rounded() / 1000) }
        return ["count": .number(Double(self.count)), "p50_ms": r(self.p50), "p90_ms": r(self.p90), "p99_ms": r(self.p99), "max_ms": r(self.max), "mean_ms": r(self.mean)]
    }
}

/// The `q` quantile (0...1) of sorted values, nearest rank; 0 when there are none.
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
}

/// Set once to make every worker finish its current request and stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var isSet: Bool { self.flag.load(ordering: .relaxed) }

    func set() {
        self.flag.store(true, ordering: .relaxed)
    }
}
