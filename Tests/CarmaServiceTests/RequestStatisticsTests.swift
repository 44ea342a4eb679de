import FragmentCore
import Dispatch
import Testing

@testable import CarmaService

@Suite("Request statistics")
struct RequestStatisticsTests {
    @Test("observations from many threads add up per series, into the right buckets")
    func concurrentRecording() {
        let statistics = RequestStatistics(bounds: [.milliseconds(1), .milliseconds(10)])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in 0..<1000 {
                let duration: Duration = index % 4 == 0 ? .milliseconds(5) : .microseconds(500)
                statistics.record(route: "/fragments/{id}", method: "GET", code: worker % 2 == 0 ? 200 : 404, duration: duration)
            }
        }
        let all = statistics.snapshot()
        #expect(all.map(\.key.code) == [200, 404])
        for (_, series) in all {
            #expect(series.count == 4000)
            #expect(series.buckets == [3000, 1000, 0])
            #expect(series.sumNanoseconds == 3000 * 500_000 + 1000 * 5_000_000)
        }
    }

    @Test("the exposition is cumulative, ends with +Inf, and names an aborted exchange")
    func exposition() {
        let statistics = RequestStatistics(bounds: [.microseconds(50), .seconds(1)])
        statistics.record(route: "/healthz", method: "GET", code: 200, duration: .microseconds(50))
        statistics.record(route: "/healthz", method: "GET", code: 200, duration: .seconds(2))
        statistics.record(route: "/healthz", method: "GET", code: 0, duration: .milliseconds(3))
        var buffer: [UInt8] = []
        statistics.emit(into: &buffer)
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.contains("# TYPE carma_http_requests_total counter"))
        #expect(lines.contains(#"carma_http_requests_total{route="/healthz",method="GET",code="200"} 2"#))
        #expect(lines.contains(#"carma_http_requests_total{route="/healthz",method="GET",code="aborted"} 1"#))
        #expect(lines.contains(#"carma_http_request_duration_seconds_bucket{route="/healthz",method="GET",code="200",le="0.00005"} 1"#))
        #expect(lines.contains(#"carma_http_request_duration_seconds_bucket{route="/healthz",method="GET",code="200",le="1.0"} 1"#))
        #expect(lines.contains(#"carma_http_request_duration_seconds_bucket{route="/healthz",method="GET",code="200",le="+Inf"} 2"#))
        #expect(lines.contains(#"carma_http_request_duration_seconds_sum{route="/healthz",method="GET",code="200"} 2.00005"#))
    }

    @Test("seconds print as plain decimals")
    func seconds() {
        #expect(RequestStatistics.seconds(50_000) == "0.00005")
        #expect(RequestStatistics.seconds(2_500_000_000) == "2.5")
        #expect(RequestStatistics.seconds(10_000_000_000) == "10.0")
        #expect(RequestStatistics.seconds(0) == "0.0")
    }
}
