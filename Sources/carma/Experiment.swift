import ArgumentParser
import CarmaClient
import CarmaEmbedding
import CarmaFaults
import CarmaJSON
import CarmaText
import Foundation
import Synchronization

/// The resilience protocol as one command: load a corpus, query it concurrently from start to end,
/// damage the store's files partway through, trigger a dream cycle, and report what every answer was
/// and what came back.
struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the resilience protocol against a running carmad and write report.json, report.md and SVG pictures.",
        discussion: """
            carma runs on the same machine as carmad: it damages the files under --data-dir itself. For reads to \
            find the damage (instead of the payload cache hiding it until the scrub does), run carmad with a \
            cache smaller than the corpus, e.g. --cache-bytes 0.
            """)

    @OptionGroup var server: ServerOption
    @Option(help: "JSONL corpus: one fragment a line with id, content, links, tags, metadata.") var corpus: String
    @Option(help: "carmad's --data-dir (the harness damages the files there).") var dataDir: String
    @Option(help: "carmad's --redundancy-dir. Default <data-dir>/redundancy.") var redundancyDir: String?
    @Option(help: "Directory for the report and pictures.") var out = "experiment-out"
    @Option(help: "Share of fragments whose primary record is zeroed (lost).") var deleteShare = 0.05
    @Option(help: "Share of fragments whose primary record gets a flipped bit.") var corruptShare = 0.01
    @Option(help: "Share of the damaged fragments whose redundancy copy is destroyed too (forces reconstruction).") var loseRedundancy = 0.0
    @Option(help: "Queries to send in all (GETs and searches).") var queries = 100_000
    @Option(help: "Share of queries that are searches (POST /query with a sentence of a fragment); the rest are GETs.") var searchShare = 0.2
    @Option(help: "Concurrent client connections.") var concurrency = 16
    @Option(help: "Seed for every random choice.") var seed: UInt64 = 42
    @Flag(help: "The corpus is already loaded; do not PUT it again.") var skipLoad = false
    @Option(help: "Seconds to wait for the dream cycle.") var dreamTimeout = 3600.0
    @Option(help: "Model directory: reconstructions and baselines are also compared by meaning (the model's cosine to the original).") var embeddingModel: String?

    func validate() throws {
        guard (0...1).contains(self.deleteShare), (0...1).contains(self.corruptShare), self.deleteShare + self.corruptShare <= 1 else {
            throw ValidationError("--delete-share and --corrupt-share are shares between 0 and 1, together at most 1")
        }
        guard (0...1).contains(self.loseRedundancy), (0...1).contains(self.searchShare) else {
            throw ValidationError("--lose-redundancy and --search-share are shares between 0 and 1")
        }
        guard self.queries >= 10, self.concurrency >= 1 else { throw ValidationError("--queries at least 10, --concurrency at least 1") }
    }

    func run() throws {
        let started = Date()
        let corpus = try Corpus.load(self.corpus)
        guard !corpus.fragments.isEmpty else { throw ValidationError("the corpus is empty") }
        try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true)
        let (host, port) = try self.server.endpoint
        let api = try self.server.api()
        let token = api.token
        let originals = Dictionary(uniqueKeysWithValues: corpus.fragments.map { ($0.id, $0.content) })
        log("corpus: \(corpus.fragments.count) fragments from \(self.corpus)")

        // 1. Load.
        if !self.skipLoad {
            let loader = LoadDriver(host: host, port: port, token: token, connections: min(32, self.concurrency * 2))
            let fragments = corpus.fragments
            let connections = loader.connections
            let result = loader.run { worker, sequence in
                let index = sequence * connections + worker
                guard index < fragments.count else { return nil }
                return ("PUT", "/fragments/\(fragments[index].id)", fragments[index].body, { $0.status == 201 || $0.status == 200 })
            }
            let failed = result.samples.filter { !$0.ok }.count
            guard failed == 0 else { throw ValidationError("loading failed for \(failed) fragments: \(result.failures.prefix(3))") }
            log("loaded in \(String(format: "%.1f", result.seconds)) s")
        }
        // A server with a model embeds in the background: damage only once every fragment's meaning
        // is kept, so that reconstruction can aim at it.
        try Self.waitForEmbeddings(api)
        let encoder = try self.embeddingModel.map { try SentenceEncoder(directory: $0) }

        // 2. Choose the damage (deterministic for a seed).
        var random = SplitMix64(seed: self.seed)
        let ids = corpus.fragments.map(\.id).sorted()
        let shuffled = ids.shuffled(using: &random)
        let deleteCount = Int((Double(ids.count) * self.deleteShare).rounded())
        let corruptCount = Int((Double(ids.count) * self.corruptShare).rounded())
        let deleted = Array(shuffled.prefix(deleteCount))
        let corrupted = Array(shuffled.dropFirst(deleteCount).prefix(corruptCount))
        let damaged = deleted + corrupted
        let loseCount = Int((Double(damaged.count) * self.loseRedundancy).rounded())
        let redundancyLost = Set(damaged.shuffled(using: &random).prefix(loseCount))
        // The pictures show the neighbourhood (two links deep) holding the most damaged fragments.
        let links = Dictionary(uniqueKeysWithValues: corpus.fragments.map { ($0.id, $0.links) })
        let damagedSet = Set(damaged)
        func damageNear(_ id: String) -> Int {
            var seen: Set<String> = [id]
            var frontier = [id]
            for _ in 0..<2 {
                frontier = frontier.flatMap { links[$0] ?? [] }.filter { seen.insert($0).inserted }
            }
            return seen.filter { damagedSet.contains($0) }.count
        }
        let focus = damaged.map { ($0, damageNear($0)) }.max { ($0.1, $1.0) < ($1.1, $0.0) }?.0 ?? ids[0]
        let pictures = TopologyPictures(api: api, out: self.out, focus: focus)
        pictures.render("topology-before")

        // 3. Query from start to end; damage at 20% of the queries, dream at 50%.
        let phase = PhaseClock()
        let issued = Atomic<Int>(0)
        // Queries after the cycle: the last 30% of the budget, counted from the cycle's end.
        let afterBudget = max(1, self.queries * 3 / 10)
        let total = self.queries
        let searchShare = self.searchShare
        let sentences = corpus.fragments.map { fragment in
            Tokenizer.sentences(fragment.content).filter { Tokenizer.hashes($0).count >= 6 }.max { $0.count < $1.count } ?? String(fragment.content.prefix(200))
        }
        let fragmentIDs = corpus.fragments.map(\.id)
        let verdicts = VerdictLog()
        let driver = LoadDriver(host: host, port: port, token: token, connections: self.concurrency)
        let seed = self.seed
        let runner = Thread {
            let result = driver.run { worker, sequence in
                let n = issued.add(1, ordering: .relaxed).newValue
                if phase.current == .after, n > phase.issuedAtEnd + afterBudget { return nil }
                var rng = SplitMix64(seed: seed &+ UInt64(worker) &* 1_000_003 &+ UInt64(sequence))
                let pick = Int.random(in: 0..<fragmentIDs.count, using: &rng)
                // Answers are counted in the phase in which they arrive: a read sent just before the
                // damage may come back blank, and then it belongs to the damaged phase.
                if Double.random(in: 0..<1, using: &rng) < searchShare {
                    let body: JSONValue = ["text": .string(sentences[pick]), "k": 5]
                    return ("POST", "/query", body, { verdicts.record(Verdict.search($0, originals: originals), phase: phase.current) })
                }
                let id = fragmentIDs[pick]
                return ("GET", "/fragments/\(id)", nil, { verdicts.record(Verdict.read($0, id: id, original: originals[id] ?? ""), phase: phase.current) })
            }
            verdicts.finish(result)
        }
        runner.stackSize = 1 << 20
        runner.start()

        let damageAt = waitUntil { issued.load(ordering: .relaxed) >= total / 5 }
        // From here on answers may see damage.
        phase.set(.degraded, at: damageAt)
        let disk = DiskDamage(dataDirectory: self.dataDir, redundancyDirectory: self.redundancyDir)
        // In place, as a failing disk would: the running carmad sees it on its next read or scrub.
        let records = disk.records(.primary)
        let missingRecords = Set(deleted).union(corrupted).filter { records[$0] == nil }
        guard missingRecords.isEmpty else { throw ValidationError("no record found for \(missingRecords.prefix(5)); is --data-dir carmad's?") }
        try disk.zero(Set(deleted), in: .primary)
        try disk.flip(Set(corrupted), in: .primary)
        let copiesRuined = try disk.destroyRedundancy(of: redundancyLost).count
        log("damaged \(deleted.count) zeroed + \(corrupted.count) corrupted records, \(copiesRuined) redundancy copies ruined")

        _ = waitUntil { issued.load(ordering: .relaxed) >= total / 2 }
        pictures.render("topology-damaged")
        // The cycle scrubs the whole store, so that damage no query happened to read is found too.
        let dreamResponse = try api.request("POST", "/dream", json: ["scrub_fragments": .number(Double(ids.count))])
        guard dreamResponse.status == 202, let cycleID = try dreamResponse.json()["id"]?.intValue else {
            throw ValidationError("POST /dream answered \(dreamResponse.status): \(dreamResponse.text)")
        }
        phase.set(.during, at: Date())
        log("dream cycle \(cycleID) started")
        let cycle = try api.waitForCycle(cycleID, timeoutSeconds: self.dreamTimeout)
        phase.issuedAtEnd = issued.load(ordering: .relaxed)
        phase.set(.after, at: Date())
        log("dream cycle \(cycleID) \(cycle["state"]?.stringValue ?? "?") in \(cycle["duration_ms"]?.doubleValue.map { String(format: "%.0f", $0) } ?? "?") ms")
        while runner.isExecuting || !verdicts.isFinished { usleep(20_000) }

        // 4. Check every fragment: damaged ones for what came back, the rest for integrity.
        var repairEvents: [String: JSONValue] = [:]
        for event in cycle["events"]?.arrayValue ?? [] where event["action"] == "repair" {
            if let id = event["id"]?.stringValue, ["recovered", "reconstructed"].contains(event["outcome"]?.stringValue ?? "") {
                repairEvents[id] = event
            }
        }
        var outcomes: [FragmentOutcome] = []
        var undamagedExact = 0
        var finalErrors: [String] = []
        for id in ids {
            let response = try api.get(id)
            let verdict = Verdict.read(response, id: id, original: originals[id] ?? "")
            if case .failure(let reason) = verdict.kind { finalErrors.append("\(id): \(reason)") }
            guard damagedSet.contains(id) else {
                if case .exact = verdict.kind { undamagedExact += 1 } else { finalErrors.append("\(id) was not damaged but reads \(verdict.kind)") }
                continue
            }
            var outcome = FragmentOutcome(id: id, damage: deleted.contains(id) ? "deleted" : "corrupted", redundancyLost: redundancyLost.contains(id), outcome: verdict.kind.name)
            if case .reconstructed = verdict.kind, let json = try? response.json(), let content = json["content"]?.stringValue, let original = originals[id] {
                outcome.tokenF1 = TextSimilarity.tokenF1(content, original)
                outcome.contentWordRecall = TextSimilarity.contentWordRecall(content, original)
                outcome.rougeL = TextSimilarity.rougeL(content, original)
                outcome.sketchCosine = TextSimilarity.sketchCosine(content, original)
                outcome.meaningCosine = encoder.map { Self.meaningCosine($0, content, original) }
                outcome.method = json["method"]?.stringValue
                outcome.confidence = json["confidence"]?.doubleValue
                outcome.sources = json["sources"]?.arrayValue?.compactMap(\.stringValue) ?? []
                // Two baselines, scored the same way: a fixed template naming the fragment and its links
                // (what an earlier prototype answered), and a copy of the most similar surviving fragment.
                let template = "Fragment \(id) (lost; linked to \((links[id] ?? []).joined(separator: ", ")))."
                outcome.baselines["template"] = Self.scores(template, original, encoder)
                let context = try api.json("/fragments/\(id)/context?k=10")
                if let nearest = context["similar"]?.arrayValue?.first(where: { $0["status"] == "ok" })?["id"]?.stringValue,
                    let copy = originals[nearest]
                {
                    outcome.baselines["copy_most_similar"] = Self.scores(copy, original, encoder)
                }
            }
            let history = try api.json("/fragments/\(id)/history")
            if let event = history["events"]?.arrayValue?.last(where: { ["recovered", "reconstructed"].contains($0["kind"]?.stringValue ?? "") }),
                let at = event["at"]?.stringValue.flatMap(Self.parseTime)
            {
                outcome.secondsToRecover = at.timeIntervalSince(damageAt)
            }
            if let event = repairEvents[id] {
                outcome.repairMilliseconds = event["duration_ms"]?.doubleValue
                outcome.tier = event["tier"]?.stringValue
            }
            outcomes.append(outcome)
        }
        pictures.render("topology-after")

        // 5. Report.
        let report = ExperimentReport(
            corpusPath: self.corpus, corpus: corpus, parameters: self.parameters, deleted: deleted.count, corrupted: corrupted.count,
            redundancyLost: redundancyLost.count, copiesRuined: copiesRuined, focus: focus, verdicts: verdicts, phases: phase,
            cycle: cycle, outcomes: outcomes, undamaged: ids.count - damaged.count, undamagedExact: undamagedExact, finalErrors: finalErrors,
            pictures: pictures.rendered, seconds: Date().timeIntervalSince(started), startedAt: verdicts.startedAt)
        try report.write(to: self.out)
        log("wrote \(self.out)/report.json, report.md and \(pictures.rendered.count + 1) pictures")
        print(report.headline)
        if report.errors > 0 { throw ExitCode(1) }
    }

    var parameters: JSONValue {
        [
            "delete_share": .number(self.deleteShare), "corrupt_share": .number(self.corruptShare),
            "lose_redundancy": .number(self.loseRedundancy), "queries": .number(Double(self.queries)),
            "search_share": .number(self.searchShare), "concurrency": .number(Double(self.concurrency)),
            "seed": .number(Double(self.seed)),
        ]
    }

    static func scores(_ candidate: String, _ original: String, _ encoder: SentenceEncoder?) -> [String: Double] {
        var scores = [
            "token_f1": TextSimilarity.tokenF1(candidate, original), "rouge_l": TextSimilarity.rougeL(candidate, original),
            "content_word_recall": TextSimilarity.contentWordRecall(candidate, original),
            "sketch_cosine": TextSimilarity.sketchCosine(candidate, original),
        ]
        if let encoder { scores["meaning_cosine"] = Self.meaningCosine(encoder, candidate, original) }
        return scores
    }

    /// The cosine of the model's embeddings of two texts.
    static func meaningCosine(_ encoder: SentenceEncoder, _ a: String, _ b: String) -> Double {
        Double(zip(encoder.embed(a), encoder.embed(b)).reduce(0) { $0 + $1.0 * $1.1 })
    }

    /// Waits until the server's background embedder has no backlog (at once for a server without a model).
    static func waitForEmbeddings(_ api: CarmaAPI) throws {
        var announced = false
        while true {
            let retrieval = try api.json("/readyz")["retrieval"]
            guard retrieval?["embedding_model"]?.stringValue != nil else { return }
            if retrieval?["text_index_ready"] == true, retrieval?["embedding_backlog"] == 0 { return }
            if !announced {
                log("waiting for the server to embed every fragment (backlog \(retrieval?["embedding_backlog"]?.intValue ?? 0))")
                announced = true
            }
            Thread.sleep(forTimeInterval: 1)
        }
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

private func log(_ message: String) {
    FileHandle.standardError.write(Data("experiment: \(message)\n".utf8))
}

/// Polls until `condition` holds; returns when it did.
private func waitUntil(_ condition: () -> Bool) -> Date {
    while !condition() { usleep(5_000) }
    return Date()
}

/// The protocol's phases, with when each began.
final class PhaseClock: Sendable {
    enum Phase: Int, CaseIterable, Sendable {
        case before, degraded, during, after

        var name: String {
            switch self {
            case .before: return "before_damage"
            case .degraded: return "damaged_before_dream"
            case .during: return "during_dream"
            case .after: return "after_dream"
            }
        }
    }

    private let value = Atomic<Int>(0)
    private let starts = Mutex<[Phase: Date]>([.before: Date()])
    private let endCount = Atomic<Int>(Int.max / 2)

    /// Queries issued when the dream cycle ended.
    var issuedAtEnd: Int {
        get { self.endCount.load(ordering: .relaxed) }
        set { self.endCount.store(newValue, ordering: .relaxed) }
    }

    var current: Phase { Phase(rawValue: self.value.load(ordering: .relaxed)) ?? .before }

    func set(_ phase: Phase, at date: Date) {
        self.starts.withLock { $0[phase] = date }
        self.value.store(phase.rawValue, ordering: .relaxed)
    }

    func start(of phase: Phase) -> Date? {
        self.starts.withLock { $0[phase] }
    }
}

/// What one answer was.
struct Verdict {
    enum Kind: CustomStringConvertible {
        /// The fragment, byte-exact.
        case exact
        /// A proper blank stub.
        case blank
        /// A flagged reconstruction.
        case reconstructed
        /// A search answered properly.
        case search(blanks: Int, reconstructions: Int)
        case failure(String)

        var name: String {
            switch self {
            case .exact: return "exact"
            case .blank: return "blank"
            case .reconstructed: return "reconstructed"
            case .search: return "search"
            case .failure: return "failure"
            }
        }

        var description: String {
            if case .failure(let reason) = self { return "failure: \(reason)" }
            return self.name
        }
    }

    var kind: Kind

    /// Checks a GET: the exact original, a proper blank stub, or a flagged reconstruction.
    static func read(_ response: ClientResponse, id: String, original: String) -> Verdict {
        guard response.status == 200 else { return Verdict(kind: .failure("GET \(id) answered \(response.status)")) }
        guard let json = try? response.json(), json["id"]?.stringValue == id else { return Verdict(kind: .failure("GET \(id): body is not the fragment's JSON")) }
        switch (response.header("X-Fragment-Status"), json["status"]?.stringValue) {
        case ("ok"?, "ok"?):
            return json["content"]?.stringValue == original ? Verdict(kind: .exact) : Verdict(kind: .failure("GET \(id): content differs from the original"))
        case ("blank"?, "blank"?):
            guard json["rebuild_needed"] == true, json["content"] == nil, response.header("Cache-Control") == "no-store",
                response.header("Retry-After") != nil, response.header("Cache-Status")?.contains("detail=blank") == true
            else { return Verdict(kind: .failure("GET \(id): malformed blank stub")) }
            return Verdict(kind: .blank)
        case ("reconstructed"?, "reconstructed"?):
            guard let confidence = json["confidence"]?.doubleValue, (0...1).contains(confidence),
                json["sources"]?.arrayValue?.isEmpty == false, json["method"]?.stringValue != nil,
                response.header("ETag")?.hasPrefix("W/") == true
            else { return Verdict(kind: .failure("GET \(id): reconstruction not properly flagged")) }
            return Verdict(kind: .reconstructed)
        default:
            return Verdict(kind: .failure("GET \(id): status \(response.header("X-Fragment-Status") ?? "none")/\(json["status"]?.stringValue ?? "none")"))
        }
    }

    /// Checks a search: every result is byte-exact, a flagged blank or a flagged reconstruction.
    static func search(_ response: ClientResponse, originals: [String: String]) -> Verdict {
        guard response.status == 200, let json = try? response.json(), let results = json["results"]?.arrayValue else {
            return Verdict(kind: .failure("POST /query answered \(response.status)"))
        }
        var blanks = 0
        var reconstructions = 0
        for result in results {
            guard let id = result["id"]?.stringValue, let original = originals[id] else {
                return Verdict(kind: .failure("POST /query returned an unknown id"))
            }
            switch result["status"]?.stringValue {
            case "ok"?:
                guard result["content"]?.stringValue == original else { return Verdict(kind: .failure("POST /query: \(id) content differs")) }
            case "blank"?:
                guard result["rebuild_needed"] == true, result["content"] == nil else { return Verdict(kind: .failure("POST /query: \(id) blank not flagged")) }
                blanks += 1
            case "reconstructed"?:
                guard result["confidence"]?.doubleValue != nil else { return Verdict(kind: .failure("POST /query: \(id) reconstruction not flagged")) }
                reconstructions += 1
            default:
                return Verdict(kind: .failure("POST /query: \(id) has status \(result["status"]?.stringValue ?? "none")"))
            }
        }
        return Verdict(kind: .search(blanks: blanks, reconstructions: reconstructions))
    }
}

/// Every answer the query driver checked, by phase.
final class VerdictLog: @unchecked Sendable {
    // @unchecked: `samples`, `failures` and `seconds` are written once by `finish`, after every worker
    // ended, and read after `isFinished`.
    struct Counts {
        var exact = 0
        var blank = 0
        var reconstructed = 0
        var searches = 0
        var searchBlanks = 0
        var searchReconstructions = 0
        var failures = 0
    }

    private let counts = Mutex<[PhaseClock.Phase: Counts]>([:])
    private let failureExamples = Mutex<[String]>([])
    private let done = Atomic<Bool>(false)
    let startedAt = Date()
    private(set) var samples: [LoadDriver.Sample] = []
    private(set) var transportFailures: [String] = []
    private(set) var seconds: Double = 0

    /// Records a verdict; returns whether the answer was acceptable.
    func record(_ verdict: Verdict, phase: PhaseClock.Phase) -> Bool {
        self.counts.withLock { counts in
            var entry = counts[phase] ?? Counts()
            switch verdict.kind {
            case .exact: entry.exact += 1
            case .blank: entry.blank += 1
            case .reconstructed: entry.reconstructed += 1
            case .search(let blanks, let reconstructions):
                entry.searches += 1
                entry.searchBlanks += blanks
                entry.searchReconstructions += reconstructions
            case .failure(let reason):
                entry.failures += 1
                self.failureExamples.withLock { if $0.count < 20 { $0.append(reason) } }
            }
            counts[phase] = entry
        }
        if case .failure = verdict.kind { return false }
        return true
    }

    func finish(_ result: (samples: [LoadDriver.Sample], failures: [String], seconds: Double)) {
        self.samples = result.samples
        self.transportFailures = result.failures
        self.seconds = result.seconds
        self.done.store(true, ordering: .releasing)
    }

    var isFinished: Bool { self.done.load(ordering: .acquiring) }

    var byPhase: [PhaseClock.Phase: Counts] { self.counts.withLock { $0 } }
    var examples: [String] { self.failureExamples.withLock { $0 } + self.transportFailures.prefix(20) }
}

/// One damaged fragment and what became of it.
struct FragmentOutcome {
    var id: String
    var damage: String
    var redundancyLost: Bool
    var outcome: String
    var tier: String?
    var tokenF1: Double?
    var contentWordRecall: Double?
    var rougeL: Double?
    var sketchCosine: Double?
    /// The model's cosine between the rebuilt text and the original (with --embedding-model).
    var meaningCosine: Double?
    /// The reconstruction method the server recorded.
    var method: String?
    var confidence: Double?
    var sources: [String] = []
    var secondsToRecover: Double?
    var repairMilliseconds: Double?
    /// Baseline name → measure → score, for reconstructed fragments.
    var baselines: [String: [String: Double]] = [:]
}

/// Renders the link graph around the focus fragment to SVG with Graphviz, when `dot` is installed.
final class TopologyPictures {
    let api: CarmaAPI
    let out: String
    let focus: String
    private(set) var rendered: [String] = []

    init(api: CarmaAPI, out: String, focus: String) {
        self.api = api
        self.out = out
        self.focus = focus
    }

    func render(_ name: String) {
        guard let response = try? self.api.request("GET", "/topology?format=dot&around=\(self.focus)&depth=2&limit=100"), response.status == 200 else {
            log("cannot fetch the topology for \(name)")
            return
        }
        let dotPath = "\(self.out)/\(name).dot"
        guard FileManager.default.createFile(atPath: dotPath, contents: Data(response.body)) else {
            log("cannot write \(dotPath)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["dot", "-Ksfdp", "-Goverlap=prism", "-Tsvg", "-o", "\(self.out)/\(name).svg", dotPath]
        do {
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus == 0 { self.rendered.append("\(name).svg") } else { log("dot failed for \(name)") }
        } catch {
            log("Graphviz 'dot' is not installed; \(name).dot is written but not rendered")
        }
    }
}
