import CarmaJSON
import Foundation

/// The experiment's findings: every figure computed here from what was observed (answers checked,
/// the server's cycle report, the damaged fragments read back), written as JSON, Markdown and a
/// latency plot.
struct ExperimentReport {
    let json: JSONValue
    let markdown: String
    let latencySVG: String
    let errors: Int
    let headline: String

    init(
        corpusPath: String, corpus: Corpus, parameters: JSONValue, deleted: Int, corrupted: Int, redundancyLost: Int, copiesRuined: Int,
        focus: String, verdicts: VerdictLog, phases: PhaseClock, cycle: JSONValue, outcomes: [FragmentOutcome], undamaged: Int,
        undamagedExact: Int, finalErrors: [String], pictures: [String], seconds: Double, startedAt: Date
    ) {
        let damaged = deleted + corrupted
        let byPhase = verdicts.byPhase
        let counts = byPhase.values.reduce(into: VerdictLog.Counts()) { total, entry in
            total.exact += entry.exact
            total.blank += entry.blank
            total.reconstructed += entry.reconstructed
            total.searches += entry.searches
            total.searchBlanks += entry.searchBlanks
            total.searchReconstructions += entry.searchReconstructions
            total.failures += entry.failures
        }
        let transport = verdicts.samples.filter { $0.status == 0 }.count
        let queryErrors = counts.failures + transport
        self.errors = queryErrors + finalErrors.count

        // Latency by phase, from each sample's send time.
        func phase(of sample: LoadDriver.Sample) -> PhaseClock.Phase {
            let sent = startedAt.addingTimeInterval(sample.at)
            var result = PhaseClock.Phase.before
            for candidate in PhaseClock.Phase.allCases {
                if let start = phases.start(of: candidate), sent >= start { result = candidate }
            }
            return result
        }
        var latencies: [PhaseClock.Phase: [Double]] = [:]
        for sample in verdicts.samples { latencies[phase(of: sample), default: []].append(sample.latency) }
        var phaseObject = JSONObject()
        for candidate in PhaseClock.Phase.allCases {
            let summary = LatencySummary(latencies[candidate] ?? [])
            let entry = byPhase[candidate] ?? VerdictLog.Counts()
            phaseObject[candidate.name] = [
                "queries": .number(Double(summary.count)),
                "latency": summary.json,
                "exact_reads": .number(Double(entry.exact)), "blank_stubs": .number(Double(entry.blank)),
                "reconstructions": .number(Double(entry.reconstructed)), "searches": .number(Double(entry.searches)),
                "errors": .number(Double(entry.failures)),
            ]
        }

        let exact = outcomes.filter { $0.outcome == "exact" }
        let rebuilt = outcomes.filter { $0.outcome == "reconstructed" }
        let blank = outcomes.filter { $0.outcome == "blank" }
        func share(_ part: Int) -> Double { damaged == 0 ? 0 : (Double(part) / Double(damaged) * 10000).rounded() / 100 }
        let recoverSeconds = outcomes.compactMap(\.secondsToRecover)
        let repairMilliseconds = outcomes.compactMap(\.repairMilliseconds)
        let cycleEvents = cycle["events"]?.arrayValue ?? []

        var object: JSONObject = [
            "generated_at": .string(ISO8601DateFormatter().string(from: Date())),
            "seconds": .number((seconds * 10).rounded() / 10),
            "corpus": [
                "path": .string(corpusPath), "fragments": .number(Double(corpus.fragments.count)),
                "links": .number(Double(corpus.fragments.reduce(0) { $0 + $1.links.count })),
                "bytes": .number(Double(corpus.fragments.reduce(0) { $0 + $1.content.utf8.count })),
            ],
            "parameters": parameters,
            "damage": [
                "deleted": .number(Double(deleted)), "corrupted": .number(Double(corrupted)), "damaged": .number(Double(damaged)),
                "redundancy_lost": .number(Double(redundancyLost)), "redundancy_copies_ruined": .number(Double(copiesRuined)),
                "focus": .string(focus),
            ],
        ]
        object["queries"] = [
            "total": .number(Double(verdicts.samples.count)),
            "reads": .number(Double(counts.exact + counts.blank + counts.reconstructed)),
            "searches": .number(Double(counts.searches)),
            "errors": .number(Double(queryErrors)),
            "exact_reads": .number(Double(counts.exact)),
            "blank_stubs_served": .number(Double(counts.blank)),
            "reconstructions_served": .number(Double(counts.reconstructed)),
            "blanks_in_search_results": .number(Double(counts.searchBlanks)),
            "reconstructions_in_search_results": .number(Double(counts.searchReconstructions)),
            "by_phase": .object(phaseObject),
            "error_examples": JSONValue(verdicts.examples),
        ]
        object["cycle"] = [
            "id": cycle["id"] ?? .null, "state": cycle["state"] ?? .null, "duration_ms": cycle["duration_ms"] ?? .null,
            "queue_at_start": cycle["queue_at_start"] ?? .null, "scrubbed": cycle["scrubbed"] ?? .null,
            "outcomes": cycle["outcomes"] ?? [:], "repairs": cycle["repairs"] ?? [:], "detected": cycle["detected"] ?? [:],
            "events": .number(Double(cycleEvents.count)),
        ]
        object["recovery"] = [
            "exact": .number(Double(exact.count)), "exact_pct": .number(share(exact.count)),
            "reconstructed": .number(Double(rebuilt.count)), "reconstructed_pct": .number(share(rebuilt.count)),
            "still_blank": .number(Double(blank.count)), "still_blank_pct": .number(share(blank.count)),
            "seconds_to_recover": Self.distribution(recoverSeconds),
            "repair_ms": Self.distribution(repairMilliseconds),
        ]
        var baselines = JSONObject()
        for name in ["template", "copy_most_similar"] {
            var measures = JSONObject()
            for measure in ["token_f1", "content_word_recall", "rouge_l", "sketch_cosine", "meaning_cosine"] {
                measures[measure] = Self.distribution(rebuilt.compactMap { $0.baselines[name]?[measure] })
            }
            baselines[name] = .object(measures)
        }
        object["similarity"] = [
            "reconstructions": .number(Double(rebuilt.count)),
            "token_f1": Self.distribution(rebuilt.compactMap(\.tokenF1)),
            "content_word_recall": Self.distribution(rebuilt.compactMap(\.contentWordRecall)),
            "rouge_l": Self.distribution(rebuilt.compactMap(\.rougeL)),
            "sketch_cosine": Self.distribution(rebuilt.compactMap(\.sketchCosine)),
            "meaning_cosine": Self.distribution(rebuilt.compactMap(\.meaningCosine)),
            "confidence": Self.distribution(rebuilt.compactMap(\.confidence)),
            "methods": .object(JSONObject(Dictionary(grouping: rebuilt.compactMap(\.method), by: { $0 }).sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number(Double($0.value.count))) })),
            "calibration": Self.calibration(rebuilt),
            "baselines": .object(baselines),
        ]
        object["integrity"] = [
            "undamaged": .number(Double(undamaged)), "undamaged_exact": .number(Double(undamagedExact)),
            "final_check_errors": .number(Double(finalErrors.count)), "final_check_error_examples": JSONValue(Array(finalErrors.prefix(20))),
        ]
        object["pictures"] = JSONValue(pictures + ["latency.svg"])
        object["fragments"] = .array(outcomes.map { outcome in
            var entry: JSONObject = [
                "id": .string(outcome.id), "damage": .string(outcome.damage), "redundancy_lost": .bool(outcome.redundancyLost),
                "outcome": .string(outcome.outcome),
            ]
            if let tier = outcome.tier { entry["tier"] = .string(tier) }
            if let value = outcome.tokenF1 { entry["token_f1"] = .number(Self.round(value)) }
            if let value = outcome.contentWordRecall { entry["content_word_recall"] = .number(Self.round(value)) }
            if let value = outcome.rougeL { entry["rouge_l"] = .number(Self.round(value)) }
            if let value = outcome.sketchCosine { entry["sketch_cosine"] = .number(Self.round(value)) }
            if let value = outcome.meaningCosine { entry["meaning_cosine"] = .number(Self.round(value)) }
            if let value = outcome.method { entry["method"] = .string(value) }
            if let value = outcome.confidence { entry["confidence"] = .number(value) }
            if !outcome.sources.isEmpty { entry["sources"] = JSONValue(outcome.sources) }
            if let value = outcome.secondsToRecover { entry["seconds_to_recover"] = .number(Self.round(value)) }
            if let value = outcome.repairMilliseconds { entry["repair_ms"] = .number(Self.round(value)) }
            if !outcome.baselines.isEmpty {
                entry["baselines"] = .object(JSONObject(outcome.baselines.sorted { $0.key < $1.key }.map { name, scores in
                    (name, JSONValue.object(JSONObject(scores.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number(Self.round($0.value))) })))
                }))
            }
            return .object(entry)
        })
        self.json = .object(object)

        // Markdown.
        let phasesTable = PhaseClock.Phase.allCases.map { candidate -> String in
            let entry = phaseObject[candidate.name]
            let latency = entry?["latency"]
            return "| \(candidate.name.replacingOccurrences(of: "_", with: " ")) | \(Self.int(entry?["queries"])) | \(Self.int(entry?["blank_stubs"])) | \(Self.int(entry?["reconstructions"])) | \(Self.int(entry?["errors"])) | \(Self.num(latency?["p50_ms"])) | \(Self.num(latency?["p99_ms"])) |"
        }.joined(separator: "\n")
        let similarity = object["similarity"]
        let methodNames = Set(rebuilt.compactMap(\.method)).sorted().joined(separator: ", ")
        self.headline = """
            | figure | value |
            |---|---|
            | corpus | \(corpus.fragments.count) fragments (\(corpusPath)) |
            | damage | \(deleted) records zeroed (lost), \(corrupted) corrupted, \(redundancyLost) of them with the redundancy copy destroyed too |
            | queries served | \(verdicts.samples.count) (\(counts.searches) searches), concurrency \(Self.int(parameters["concurrency"])) |
            | errors | \(queryErrors) during the run, \(finalErrors.count) in the final check |
            | blank stubs served | \(counts.blank) (and \(counts.searchBlanks) flagged blanks in search results) |
            | recovered exactly | \(exact.count) of \(damaged) (\(share(exact.count)) %) |
            | reconstructed | \(rebuilt.count) (\(share(rebuilt.count)) %) |
            | still blank | \(blank.count) (\(share(blank.count)) %) |
            | reconstruction similarity (token F1 / ROUGE-L / sketch cosine, mean) | \(Self.num(similarity?["token_f1"]?["mean"])) / \(Self.num(similarity?["rouge_l"]?["mean"])) / \(Self.num(similarity?["sketch_cosine"]?["mean"])) |
            | repair time per fragment in the cycle (p50 / p99) | \(Self.duration(object["recovery"]?["repair_ms"]?["p50"])) / \(Self.duration(object["recovery"]?["repair_ms"]?["p99"])) |
            | dream cycle | \(Self.duration(cycle["duration_ms"])) |
            | undamaged fragments still byte-exact | \(undamagedExact) of \(undamaged) |
            """
        self.markdown = """
            # Resilience experiment

            \(self.headline)

            ## Reconstructions against two baselines (mean over the \(rebuilt.count) reconstructed fragments)

            | method | token F1 | ROUGE-L | sketch cosine | meaning cosine |
            |---|---|---|---|---|
            | \(methodNames) (this store) | \(Self.measures(similarity))
            | fixed template naming the fragment | \(Self.measures(similarity?["baselines"]?["template"]))
            | copy of the most similar surviving fragment | \(Self.measures(similarity?["baselines"]?["copy_most_similar"]))

            Confidence against the real token F1 (calibration, by confidence band): \(Self.calibrationLine(similarity?["calibration"]))

            ## Foreground latency by phase

            | phase | queries | blank stubs | reconstructions | errors | p50 ms | p99 ms |
            |---|---|---|---|---|---|---|
            \(phasesTable)

            ![latency over time](latency.svg)

            ## Topology around `\(focus)` (green ok, red blank, amber reconstructed)

            \(pictures.map { "![\($0)](\($0))" }.joined(separator: "\n"))

            Every figure comes from observations: answers checked one by one while the run went on, the
            server's report of dream cycle \(Self.int(cycle["id"])), and every damaged fragment read back and
            compared with the corpus afterwards (`fragments` in report.json lists each one).
            """
        self.latencySVG = Self.plot(verdicts.samples, phases: phases, startedAt: startedAt)
    }

    func write(to directory: String) throws {
        try Data(Pretty.print(self.json).utf8).write(to: URL(fileURLWithPath: "\(directory)/report.json"))
        try Data(self.markdown.utf8).write(to: URL(fileURLWithPath: "\(directory)/report.md"))
        try Data(self.latencySVG.utf8).write(to: URL(fileURLWithPath: "\(directory)/latency.svg"))
    }

    /// "token F1 | ROUGE-L | sketch cosine | meaning cosine |" means of one method's measures.
    static func measures(_ object: JSONValue?) -> String {
        ["token_f1", "rouge_l", "sketch_cosine", "meaning_cosine"].map { "\(Self.num(object?[$0]?["mean"])) |" }.joined(separator: " ")
    }

    /// Mean confidence and mean real token F1 of the reconstructions, by confidence band, and the mean
    /// absolute gap between confidence and token F1 over all of them.
    static func calibration(_ rebuilt: [FragmentOutcome]) -> JSONValue {
        let pairs = rebuilt.compactMap { outcome in outcome.confidence.flatMap { c in outcome.tokenF1.map { (c, $0) } } }
        guard !pairs.isEmpty else { return .null }
        var bands: [JSONValue] = []
        for low in stride(from: 0.0, to: 1.0, by: 0.2) {
            let band = pairs.filter { $0.0 >= low && ($0.0 < low + 0.2 || low >= 0.8) }
            guard !band.isEmpty else { continue }
            bands.append([
                "confidence_from": .number(low), "count": .number(Double(band.count)),
                "mean_confidence": .number(Self.round(band.map(\.0).reduce(0, +) / Double(band.count))),
                "mean_token_f1": .number(Self.round(band.map(\.1).reduce(0, +) / Double(band.count))),
            ])
        }
        let gap = pairs.map { abs($0.0 - $0.1) }.reduce(0, +) / Double(pairs.count)
        return ["mean_absolute_gap": .number(Self.round(gap)), "bands": .array(bands)]
    }

    static func calibrationLine(_ calibration: JSONValue?) -> String {
        guard let bands = calibration?["bands"]?.arrayValue else { return "–" }
        let parts = bands.map { band in
            "\(Self.int(band["count"])) at confidence \(Self.num(band["mean_confidence"])) had token F1 \(Self.num(band["mean_token_f1"]))"
        }
        return parts.joined(separator: "; ") + "; mean absolute gap \(Self.num(calibration?["mean_absolute_gap"]))."
    }

    static func distribution(_ values: [Double]) -> JSONValue {
        guard !values.isEmpty else { return ["count": 0] }
        let sorted = values.sorted()
        func at(_ q: Double) -> Double { percentile(sorted, q) }
        return [
            "count": .number(Double(values.count)), "mean": .number(round(values.reduce(0, +) / Double(values.count))),
            "p50": .number(round(at(0.5))), "p99": .number(round(at(0.99))), "min": .number(round(sorted.first!)),
            "max": .number(round(sorted.last!)),
        ]
    }

    static func round(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
    static func int(_ value: JSONValue?) -> String { value?.doubleValue.map { String(Int($0)) } ?? "–" }
    /// Three significant digits below 1,000, whole numbers with thousands separators above: never
    /// an exponent in a report people read.
    static func num(_ value: JSONValue?) -> String {
        guard let number = value?.doubleValue else { return "–" }
        guard abs(number) >= 1000 else { return String(format: "%.3g", number) }
        let digits = String(Int(number.rounded()).magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return (number < 0 ? "-" : "") + grouped
    }

    /// Milliseconds as people say them: "357 ms", "8.9 s", "2.4 min".
    static func duration(_ milliseconds: JSONValue?) -> String {
        guard let ms = milliseconds?.doubleValue else { return "–" }
        if ms < 1000 { return "\(num(.number(ms))) ms" }
        if ms < 60_000 { return String(format: "%.1f s", ms / 1000) }
        return String(format: "%.1f min", ms / 60_000)
    }

    /// Latency of every query over time (a sample of at most 6000 points), the 99th percentile per
    /// second, and the damage and dream-cycle windows.
    static func plot(_ samples: [LoadDriver.Sample], phases: PhaseClock, startedAt: Date) -> String {
        let width = 900.0, height = 360.0, left = 60.0, bottom = 40.0, top = 20.0, right = 20.0
        guard let last = samples.map(\.at).max(), last > 0 else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
        let latencies = samples.map { max($0.latency * 1000, 0.01) }
        let maxLatency = max(latencies.max() ?? 1, 1)
        let logMin = log10(0.05), logMax = log10(maxLatency * 1.2)
        func x(_ t: Double) -> Double { left + t / last * (width - left - right) }
        func y(_ ms: Double) -> Double { top + (1 - (log10(max(ms, 0.05)) - logMin) / (logMax - logMin)) * (height - top - bottom) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"Helvetica\" font-size=\"11\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        func offset(_ phase: PhaseClock.Phase) -> Double? { phases.start(of: phase).map { $0.timeIntervalSince(startedAt) } }
        if let damage = offset(.degraded) {
            svg += "<line x1=\"\(x(damage))\" x2=\"\(x(damage))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"#e05d5d\" stroke-dasharray=\"4 3\"/>\n"
            svg += "<text x=\"\(x(damage) + 3)\" y=\"\(top + 12)\" fill=\"#e05d5d\">damage</text>\n"
        }
        if let start = offset(.during) {
            let end = offset(.after) ?? last
            svg += "<rect x=\"\(x(start))\" y=\"\(top)\" width=\"\(max(1, x(end) - x(start)))\" height=\"\(height - top - bottom)\" fill=\"#f2b134\" fill-opacity=\"0.18\"/>\n"
            svg += "<text x=\"\(x(start) + 3)\" y=\"\(top + 26)\" fill=\"#a8761a\">dream cycle</text>\n"
        }
        let step = max(1, samples.count / 6000)
        for index in stride(from: 0, to: samples.count, by: step) {
            svg += "<circle cx=\"\(String(format: "%.1f", x(samples[index].at)))\" cy=\"\(String(format: "%.1f", y(latencies[index])))\" r=\"1\" fill=\"#4a78c2\" fill-opacity=\"0.35\"/>\n"
        }
        var buckets: [Int: [Double]] = [:]
        for (sample, latency) in zip(samples, latencies) { buckets[Int(sample.at), default: []].append(latency) }
        let points = buckets.keys.sorted().map { second -> String in
            let sorted = buckets[second]!.sorted()
            let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * 0.99))]
            return "\(String(format: "%.1f", x(Double(second) + 0.5))),\(String(format: "%.1f", y(p99)))"
        }
        svg += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#1d3f7a\" stroke-width=\"1.5\"/>\n"
        for tick in [0.1, 1, 10, 100, 1000, 10000] where tick <= maxLatency * 1.2 {
            svg += "<line x1=\"\(left - 4)\" x2=\"\(width - right)\" y1=\"\(y(tick))\" y2=\"\(y(tick))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(left - 8)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(tick < 1 ? String(tick) : String(Int(tick))) ms</text>\n"
        }
        svg += "<text x=\"\(width / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\">seconds since the start (dots: queries; line: p99 per second)</text>\n"
        svg += "<text x=\"\(width - right)\" y=\"\(height - bottom + 14)\" text-anchor=\"end\">\(Int(last)) s</text>\n"
        svg += "</svg>\n"
        return svg
    }
}
