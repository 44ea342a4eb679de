import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// HTTP request counts and latency histograms by route template, method and status code: the
/// `carma_http_requests_total` and `carma_http_request_duration_seconds` families of `/metrics`.
///
/// Recorded on every request, so kept apart from the swift-prometheus registry, whose histogram
/// takes one lock per series on every observation: with both server threads answering the same route,
/// that lock and the label lookup in front of it bounced between the cores on every request. Here
/// each thread records into a shard of its own (chosen by a hash of the thread, so two threads rarely
/// share one) and a scrape adds the shards up.
final class RequestStatistics: Sendable {
    struct Key: Hashable, Comparable {
        let route: String
        let method: String
        let code: Int

        // Hash the cheap parts only; equality still compares the strings.
        func hash(into hasher: inout Hasher) {
            hasher.combine(self.code &* 1024 &+ self.route.utf8.count &* 16 &+ self.method.utf8.count)
        }

        static func < (a: Key, b: Key) -> Bool {
            (a.route, a.method, a.code) < (b.route, b.method, b.code)
        }
    }

    /// One series: observations per bucket (not cumulative; the last is above every bound), their
    /// total, and their number.
    struct Series {
        var buckets: [Int]
        var sumNanoseconds: Int64 = 0
        var count = 0

        init(bucketCount: Int) {
            self.buckets = [Int](repeating: 0, count: bucketCount)
        }

        mutating func add(_ other: Series) {
            for index in self.buckets.indices { self.buckets[index] += other.buckets[index] }
            self.sumNanoseconds += other.sumNanoseconds
            self.count += other.count
        }
    }

    private final class Shard: Sendable {
        let series = Mutex<[Key: Series]>([:])
        // Keeps shards allocated one after another off each other's cache lines.
        private let padding: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Upper bounds of the buckets, in nanoseconds, ascending.
    let bounds: [Int64]
    private let shards: [Shard]
    private static let shardBits = 4

    init(bounds: [Duration]) {
        self.bounds = bounds.map { $0.nanoseconds }.sorted()
        self.shards = (0..<(1 << Self.shardBits)).map { _ in Shard() }
    }

    func record(route: String, method: String, code: Int, duration: Duration) {
        let nanoseconds = duration.nanoseconds
        var bucket = 0
        while bucket < self.bounds.count, nanoseconds > self.bounds[bucket] { bucket += 1 }
        let key = Key(route: route, method: method, code: code)
        let bucketCount = self.bounds.count + 1
        self.shards[Self.shardIndex()].series.withLock { series in
            series[key, default: Series(bucketCount: bucketCount)].record(bucket: bucket, nanoseconds: nanoseconds)
        }
    }

    /// Every series, summed over the shards, in a stable order.
    func snapshot() -> [(key: Key, series: Series)] {
        var total: [Key: Series] = [:]
        for shard in self.shards {
            let part = shard.series.withLock { $0 }
            for (key, series) in part {
                total[key, default: Series(bucketCount: self.bounds.count + 1)].add(series)
            }
        }
        return total.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The Prometheus text exposition of both families.
    func emit(into buffer: inout [UInt8]) {
        let all = self.snapshot()
        guard !all.isEmpty else { return }
        let counter = "carma_http_requests_total"
        let histogram = "carma_http_request_duration_seconds"
        buffer.append(contentsOf: "# TYPE \(counter) counter\n".utf8)
        for (key, series) in all {
            buffer.append(contentsOf: "\(counter){\(Self.labels(key))} \(series.count)\n".utf8)
        }
        buffer.append(contentsOf: "# TYPE \(histogram) histogram\n".utf8)
        let bounds = self.bounds.map(Self.seconds)
        for (key, series) in all {
            let labels = Self.labels(key)
            var cumulative = 0
            for (index, bound) in bounds.enumerated() {
                cumulative += series.buckets[index]
                buffer.append(contentsOf: "\(histogram)_bucket{\(labels),le=\"\(bound)\"} \(cumulative)\n".utf8)
            }
            buffer.append(contentsOf: "\(histogram)_bucket{\(labels),le=\"+Inf\"} \(series.count)\n".utf8)
            buffer.append(contentsOf: "\(histogram)_sum{\(labels)} \(Self.seconds(series.sumNanoseconds))\n".utf8)
            buffer.append(contentsOf: "\(histogram)_count{\(labels)} \(series.count)\n".utf8)
        }
    }

    /// Route templates and method labels are fixed strings of the server's own (or `other`), so
    /// they never need escaping; a quote or backslash is escaped all the same.
    private static func labels(_ key: Key) -> String {
        "route=\"\(escape(key.route))\",method=\"\(escape(key.method))\",code=\"\(key.code == 0 ? "aborted" : String(key.code))\""
    }

    private static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\n") }) else {
            return value
        }
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Nanoseconds as decimal seconds without exponent, e.g. `0.00005` or `2.5` or `10.0`.
    static func seconds(_ nanoseconds: Int64) -> String {
        let whole = nanoseconds / 1_000_000_000
        var fraction = String(nanoseconds % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.count > 1, fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }

    /// This thread's shard: a hash of the thread's id, so that the server's threads, which live as
    /// long as the server, mostly land on shards of their own.
    private static func shardIndex() -> Int {
        let thread = UInt64(UInt(pthread_self()))
        return Int(truncatingIfNeeded: (thread &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - shardBits))
    }
}

extension RequestStatistics.Series {
    mutating func record(bucket: Int, nanoseconds: Int64) {
        self.buckets[bucket] += 1
        self.sumNanoseconds += nanoseconds
        self.count += 1
    }
}
