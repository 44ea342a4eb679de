import CarmaClient
import CarmaJSON
import CarmaFaults
import CarmaTesting
import Foundation
import Testing

/// /metrics and /topology after a scripted scenario, read with real parsers.
@Suite("Observability (live)")
struct ObservabilityLiveTests {
    /// Samples of a /metrics scrape, parsed by prometheus_client.
    struct Scrape {
        let samples: [String: Double]
        let types: [String: String]

        init(_ api: CarmaAPI) throws {
            let response = try api.request("GET", "/metrics")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let parsed = try Repository.python(["scripts/parse-metrics.py"], input: response.body)
            guard parsed.status == 0 else { throw ClientError("prometheus_client could not parse /metrics: \(parsed.error)") }
            let json = try JSONParser.parse(parsed.output)
            var samples: [String: Double] = [:]
            for (key, value) in json["samples"]?.objectValue ?? [:] { samples[key] = value.doubleValue }
            var types: [String: String] = [:]
            for (key, value) in json["types"]?.objectValue ?? [:] { types[key] = value.stringValue }
            self.samples = samples
            self.types = types
        }

        subscript(_ key: String) -> Double? { self.samples[key] }

        /// Sum of every sample of `name` whose labels include all of `labels`.
        func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
            self.samples.filter { key, _ in
                guard key.hasPrefix(name + "{") else { return false }
                return labels.allSatisfy { key.contains("\($0.key)=\($0.value)") }
            }.values.reduce(0, +)
        }
    }

    @Test("after store, damage, read and dream, the counters equal what the scenario did")
    func metricsMatchTheScenario() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let api = server.api()
        _ = try api.seed(50)
        try DiskDamage(dataDirectory: directory.path).zero(Set((0..<5).map { "f\($0)" }), in: .primary)
        try DiskDamage(dataDirectory: directory.path).flip(Set((5..<7).map { "f\($0)" }), in: .primary)
        for index in 0..<50 { _ = try api.get("f\(index)") }
        for index in 0..<3 { _ = try api.get("f\(index)") }  // blanks served again
        _ = try api.get("never-stored")
        _ = try api.request("GET", "/fragments/f1%ZZ")
        let report = try api.dream()
        #expect(report["outcomes"]?["recovered"] == 7)

        let scrape = try Scrape(api)
        #expect(scrape.types["carma_http_requests"] == "counter")
        #expect(scrape.types["carma_http_request_duration_seconds"] == "histogram")
        #expect(scrape.sum("carma_http_requests_total", ["route": "/fragments/{id}", "method": "PUT", "code": "201"]) == 50)
        #expect(scrape.sum("carma_http_requests_total", ["route": "/fragments/{id}", "method": "GET", "code": "200"]) == 53)
        #expect(scrape.sum("carma_http_requests_total", ["route": "/fragments/{id}", "method": "GET", "code": "404"]) == 1)
        #expect(scrape.sum("carma_http_requests_total", ["route": "/fragments/{id}", "method": "GET", "code": "400"]) == 1)
        #expect(scrape.sum("carma_http_requests_total", ["route": "/dream", "method": "POST", "code": "202"]) == 1)
        #expect(scrape.sum("carma_http_request_duration_seconds_count", ["route": "/fragments/{id}", "method": "PUT"]) == 50)
        #expect(!scrape.samples.keys.contains { $0.contains("f1") || $0.contains("never-stored") }, "labels must never hold ids")
        #expect(scrape["carma_blanks_served_total{}"] == 10)
        // Zeroed and flipped records both read as checksum mismatches.
        #expect(scrape["carma_corruption_detected_total{kind=missing}"] == 0)
        #expect(scrape["carma_corruption_detected_total{kind=checksum_mismatch}"] == 7)
        #expect(scrape["carma_repairs_total{outcome=recovered,tier=redundancy}"] == 7)
        #expect(scrape["carma_repair_duration_seconds_count{tier=redundancy}"] == 7)
        #expect(scrape["carma_dream_cycles_total{trigger=manual}"] == 1)
        #expect(scrape["carma_dream_cycle_duration_seconds_count{trigger=manual}"] == 1)
        #expect(scrape["carma_dream_cycle_running{}"] == 0)
        #expect(scrape["carma_fragments{status=ok}"] == 50)
        #expect(scrape["carma_fragments{status=blank}"] == 0)
        #expect(scrape["carma_repair_queue_depth{}"] == 0)
        // A pass verifies each fragment's record in the primary and the redundancy log.
        #expect(scrape["carma_scrub_verified_total{}"] == 100)
        #expect(scrape["carma_scrub_progress_ratio{}"] == 1)
        #expect((scrape["carma_bytes_stored{area=primary}"] ?? 0) > 50 * 300)
        #expect((scrape["carma_bytes_stored{area=registry}"] ?? 0) > 0)
    }

    @Test("the topology is bounded, coloured by status, and its DOT is accepted by Graphviz")
    func topology() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let api = server.api()
        _ = try api.seed(30)
        try DiskDamage(dataDirectory: directory.path).zero(["f3"], in: .primary)
        _ = try api.get("f3")

        let json = try api.json("/topology?limit=10")
        #expect(json["nodes"]?.arrayValue?.count == 10)
        #expect(json["truncated"] == true)
        let around = try api.json("/topology?around=f2&depth=3")
        #expect(around["nodes"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["f2", "f3", "f4", "f5"])
        #expect(around["nodes"]?.arrayValue?.first(where: { $0["id"] == "f3" })?["status"] == "blank")
        #expect(around["edges"]?.arrayValue?.count == 3)
        #expect(try api.request("GET", "/topology?limit=100000").status == 400)
        #expect(try api.request("GET", "/topology?format=png").status == 400)
        #expect(try api.request("GET", "/topology?around=nope").status == 404)

        let dot = try api.request("GET", "/topology?format=dot&limit=30")
        #expect(dot.status == 200)
        #expect(dot.text.contains("#e05d5d"), "the blank is drawn red")
        let rendered = try Repository.run("/usr/bin/env", ["dot", "-Tsvg"], input: dot.body)
        #expect(rendered.status == 0, "dot rejected the graph: \(rendered.error)")
        #expect(rendered.output.contains("<svg"))
    }
}
