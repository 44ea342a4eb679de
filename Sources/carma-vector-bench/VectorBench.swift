import ArgumentParser
import CarmaEmbedding
import CarmaJSON
import CarmaText
import CarmaVectors
import Foundation

/// `carma-vector-bench`: the text index's vector search at a million vectors, exact scan against
/// the HNSW graph, through the very calls a query makes (`TextIndex.nearestMeaning`). Used by
/// bench/vector-1m.sh, which says what the data are.
@main
struct VectorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carma-vector-bench", abstract: "Recall, latency, memory and start-up of vector search at scale.")

    @Option(help: "Vectors in the index.") var count = 1_000_000
    @Option(help: "Values per vector (the model's: 384).") var dimensions = 384
    @Option(help: "Queries per synthetic query set.") var queries = 200
    @Option(help: "Queries with a filter, per filter.") var filteredQueries = 100
    @Option(help: "The embedding model's directory: a sample of real texts and questions embedded by it joins the data.") var model: String?
    @Option(help: "JSONL files whose \"content\" the model embeds into the index.") var corpus: [String] = []
    @Option(help: "JSONL files whose \"question\" the model embeds as queries.") var questions: [String] = []
    @Option(help: "Beam widths (efSearch) to measure, comma-separated.") var ef = "32,64,128,256"
    @Option(help: "The beam width of the filtered queries and the start-up check.") var defaultEf = 128
    @Option(help: "Threads adding vectors during the build.") var threads = 1
    @Option(help: "Links per element (M).") var m = 16
    @Option(help: "efConstruction.") var efConstruction = 100
    @Option(help: "Where the graph is saved.") var work = "/tmp/carma-vector-bench"
    @Option(help: "Write the figures as JSON here.") var output: String?
    @Flag(help: "Also store every vector as a client vector and measure that graph.") var client = false
    @Flag(help: "Keep the graph saved in --work by an earlier run with the same --count: the first build reads it back.") var reuse = false

    func run() throws {
        if !self.reuse { try? FileManager.default.removeItem(atPath: self.work) }
        try FileManager.default.createDirectory(atPath: self.work, withIntermediateDirectories: true)
        var figures: [String: JSONValue] = [
            "count": .number(Double(self.count)), "dimensions": .number(Double(self.dimensions)), "m": .number(Double(self.m)),
            "ef_construction": .number(Double(self.efConstruction)), "build_threads": .number(Double(self.threads)),
        ]
        let rssStart = Self.rssMiB()

        // The data: real embeddings of a sample, planted neighbours, clustered vectors for the rest.
        var real: [[Int8]] = []
        var modelQueries: [[Int8]] = []
        if let directory = self.model {
            let encoder = try SentenceEncoder(directory: directory, maxTokens: 128)
            let texts = try self.corpus.flatMap { try Self.lines($0, field: "content") }
            let asked = try self.questions.flatMap { try Self.lines($0, field: "question") }
            let started = ContinuousClock.now
            real = texts.map { TextIndex.quantize(encoder.embed($0)) }
            modelQueries = asked.map { TextIndex.quantize(encoder.embed($0)) }
            log("embedded \(texts.count) texts and \(asked.count) questions in \(Self.seconds(since: started)) s")
        }
        let data = SyntheticVectors(dimensions: self.dimensions, count: self.count, queriesPerSet: self.queries, real: real)
        figures["model_vectors"] = .number(Double(data.real.count))

        let search = NeighbourSearchConfiguration(
            minimumVectors: 1, parameters: VectorIndex.Parameters(m: self.m, efConstruction: self.efConstruction), efSearch: self.defaultEf,
            budgetShare: 0.1, buildThreads: self.threads, directory: self.work)
        var index: LockedIndex? = LockedIndex(self.dimensions, search)
        var started = ContinuousClock.now
        Self.fill(index!, data, client: self.client)
        log("filled the text index with \(self.count) fragments in \(Self.seconds(since: started)) s")
        let rssFilled = Self.rssMiB()
        figures["rss_mib_text_index"] = .number(Double(rssFilled - rssStart))

        var sets: [(name: String, queries: [[Int8]])] = [("planted", data.plantedQueries), ("clustered", data.clusteredQueries)]
        if !modelQueries.isEmpty { sets.append(("model", modelQueries)) }
        let filters: [(name: String, filter: TextIndex.Filter)] = [
            ("tag_10pct", TextIndex.Filter(tags: ["p10"])), ("tag_1pct", TextIndex.Filter(tags: ["p1"])),
            ("tag_0.1pct", TextIndex.Filter(tags: ["p01"])),
        ]
        let filteredQueries = Array(data.clusteredQueries.prefix(self.filteredQueries))

        // The exact scan: the truth for recall, and today's latency.
        var truth: [String: [[String]]] = [:]
        var exact: [String: JSONValue] = [:]
        for set in sets {
            let (answers, times) = Self.run(index!, set.queries, filter: .none)
            truth[set.name] = answers
            exact[set.name] = object(Self.latency(times))
        }
        for (name, filter) in filters {
            let (answers, times) = Self.run(index!, filteredQueries, filter: filter)
            truth[name] = answers
            exact[name] = object(Self.latency(times))
        }
        figures["exact"] = object(exact)
        log("exact: \(exact.mapValues { $0["p50_ms"]!.doubleValue! })")

        // The build, as the store's builder thread does it (it also saves the graph).
        started = ContinuousClock.now
        NeighbourBuilder().buildDue(index!)
        let buildSeconds = Self.seconds(since: started)
        let status = index!.read { $0.neighbours!.status }
        let rssBuilt = Self.rssMiB()
        figures[self.reuse ? "read_back_seconds" : "build_seconds"] = .number(buildSeconds)
        figures["graph_memory_mib"] = .number(Double(status[0].memoryBytes >> 20))
        figures["rss_mib_graph"] = .number(Double(rssBuilt - rssFilled))
        log("built in \(buildSeconds) s, graph \(status[0].memoryBytes >> 20) MiB, RSS +\(rssBuilt - rssFilled) MiB")

        // Recall@10 and latency through the graph, at each beam width.
        var approximate: [String: JSONValue] = [:]
        // Each beam as given (not narrowed by the size), then the store's default (narrowed below a million).
        var widths: [(name: String, width: Int, beamVectors: Int)] = self.ef.split(separator: ",").compactMap { Int($0) }.map { ("ef_\($0)", $0, 0) }
        let store = NeighbourSearchConfiguration()
        widths.append(("store_default", store.efSearch, store.beamVectors))
        for (name, width, beamVectors) in widths {
            index!.write {
                $0.neighbours!.configuration.efSearch = width
                $0.neighbours!.configuration.beamVectors = beamVectors
            }
            var row: [String: JSONValue] = [:]
            for set in sets {
                let (answers, times) = Self.run(index!, set.queries, filter: .none)
                var figures = Self.latency(times)
                figures["recall_at_10"] = .number(Self.recall(answers, truth[set.name]!))
                row[set.name] = object(figures)
            }
            approximate[name] = object(row)
            log("\(name): \(row.mapValues { "recall \($0["recall_at_10"]!.doubleValue!), p50 \($0["p50_ms"]!.doubleValue!) ms" })")
        }
        index!.write {
            $0.neighbours!.configuration.efSearch = self.defaultEf
            $0.neighbours!.configuration.beamVectors = 0
        }
        var filtered: [String: JSONValue] = [:]
        for (name, filter) in filters {
            let (answers, times) = Self.run(index!, filteredQueries, filter: filter)
            var row = Self.latency(times)
            row["recall_at_10"] = .number(Self.recall(answers, truth[name]!))
            // Every answer carries the tag (the filter is never loosened).
            let tag = filter.tags.first!
            row["all_pass_filter"] = .bool(answers.allSatisfy { $0.allSatisfy { SyntheticVectors.tags(of: Int($0.dropFirst())!).contains(tag) } })
            filtered[name] = object(row)
        }
        figures["approximate"] = object(approximate)
        figures["filtered"] = object(filtered)
        log("filtered (ef \(self.defaultEf)): \(filtered.mapValues { "recall \($0["recall_at_10"]!.doubleValue!), p50 \($0["p50_ms"]!.doubleValue!) ms" })")

        if self.client {
            let (answers, times) = Self.runClient(index!, data.clusteredFloatQueries, exact: true)
            let (found, graphTimes) = Self.runClient(index!, data.clusteredFloatQueries, exact: false)
            var row = Self.latency(graphTimes)
            row["recall_at_10"] = .number(Self.recall(found, answers))
            row["exact_p50_ms"] = Self.latency(times)["p50_ms"]!
            row["build_seconds_included_above"] = .bool(true)
            figures["client"] = object(row)
            log("client vectors: \(row)")
        }

        // The saved graph: its size, and reading it back (checked whole).
        let graph = index!.read { $0.neighbours!.meaning.serving! }
        let path = "\(self.work)/meaning-vectors.hnsw"
        started = ContinuousClock.now
        try graph.save(to: "\(self.work)/copy.hnsw")
        figures["save_seconds"] = .number(Self.seconds(since: started))
        try? FileManager.default.removeItem(atPath: "\(self.work)/copy.hnsw")
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        figures["file_mib"] = .number(Double(fileBytes >> 20))
        started = ContinuousClock.now
        let loaded = try VectorIndex.load(path: path, dimensions: self.dimensions)
        figures["load_seconds"] = .number(Self.seconds(since: started))
        log("saved graph: \(fileBytes >> 20) MiB; loaded (checked) in \(figures["load_seconds"]!.doubleValue!) s, \(loaded.count) vectors")

        // A restart: a new text index with the same fragments reads the saved graph and checks it
        // against them instead of building.
        index = nil
        let restarted = LockedIndex(self.dimensions, search)
        Self.fill(restarted, data, client: false)
        started = ContinuousClock.now
        NeighbourBuilder().buildDue(restarted)
        figures["restart_graph_seconds"] = .number(Self.seconds(since: started))
        let again = restarted.read { $0.neighbours!.status[0] }
        figures["restart_loaded_from_file"] = .bool(again.loadedFromFile)
        let (answers, _) = Self.run(restarted, data.plantedQueries, filter: .none)
        figures["restart_recall_at_10_planted"] = .number(Self.recall(answers, truth["planted"]!))
        log("restart: the graph serving after \(figures["restart_graph_seconds"]!.doubleValue!) s (from file: \(again.loadedFromFile))")

        let json = object(figures)
        let text = String(decoding: json.bytes, as: UTF8.self)
        if let output = self.output { try text.write(toFile: output, atomically: true, encoding: .utf8) }
        print(text)
    }

    // MARK: Measuring

    /// Each query as the store asks it (the pool of 100 a fused query takes), timed; the ids of the top 10.
    static func run(_ index: LockedIndex, _ queries: [[Int8]], filter: TextIndex.Filter) -> ([[String]], [Double]) {
        var answers: [[String]] = []
        var times: [Double] = []
        for query in queries {
            let started = ContinuousClock.now
            let hits = index.read { $0.nearestMeaning(to: query, k: 100, filter: filter) }
            times.append(Self.milliseconds(since: started))
            answers.append(hits.prefix(10).map(\.id))
        }
        return (answers, times)
    }

    static func runClient(_ index: LockedIndex, _ queries: [[Float]], exact: Bool) -> ([[String]], [Double]) {
        var answers: [[String]] = []
        var times: [Double] = []
        for query in queries {
            let norm = query.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            let started = ContinuousClock.now
            let hits = index.read { exact ? $0.exactClient(to: query, norm: norm, k: 100) : $0.nearest(to: query, k: 100) }
            times.append(Self.milliseconds(since: started))
            answers.append(hits.prefix(10).map(\.id))
        }
        return (answers, times)
    }

    static func recall(_ found: [[String]], _ truth: [[String]]) -> Double {
        var hits = 0, total = 0
        for (answer, expected) in zip(found, truth) {
            hits += Set(answer).intersection(expected).count
            total += expected.count
        }
        return total == 0 ? 1 : (Double(hits) / Double(total) * 10_000).rounded() / 10_000
    }

    static func latency(_ times: [Double]) -> [String: JSONValue] {
        let sorted = times.sorted()
        func at(_ p: Double) -> JSONValue { .number((sorted[Int(p * Double(sorted.count - 1))] * 1000).rounded() / 1000) }
        return ["p50_ms": at(0.5), "p99_ms": at(0.99), "queries": .number(Double(times.count))]
    }

    static func fill(_ index: LockedIndex, _ data: SyntheticVectors, client: Bool) {
        let sketch = Sketch(terms: [], vector: [Int8](repeating: 0, count: Sketch.dimensions), words: 0, bytes: 0)
        var batch: [(TextIndex.Document, [Int8])] = []
        batch.reserveCapacity(8192)
        func flush() {
            index.write { index in
                for (document, meaning) in batch {
                    index.upsert(document)
                    index.setMeaning(document.id, version: 1, meaning)
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        for n in 0..<data.count {
            let vector = data.vector(n)
            let document = TextIndex.Document(
                id: "v\(n)", version: 1, sketch: sketch, terms: [:], words: 0, tags: SyntheticVectors.tags(of: n), links: [], metadata: [],
                clientEmbedding: client ? vector.float : nil)
            batch.append((document, vector.int8))
            if batch.count == 8192 { flush() }
        }
        flush()
    }

    static func lines(_ path: String, field: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            (try? JSONParser.parse(String(line), maxDepth: 16))?[field]?.stringValue
        }
    }

    static func rssMiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ")[1]) ?? 0) / 1024
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        (Self.milliseconds(since: start) / 10).rounded() / 100
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}

func object(_ members: [String: JSONValue]) -> JSONValue {
    .object(JSONObject(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// A text index behind one read-write lock, as a store holds it.
final class LockedIndex: TextIndexLock, @unchecked Sendable {
    private var lock = pthread_rwlock_t()
    private var value: TextIndex

    init(_ dimensions: Int, _ search: NeighbourSearchConfiguration) {
        self.value = TextIndex(meaningDimensions: dimensions, neighbours: NeighbourIndexes(configuration: search, meaningDimensions: dimensions))
        pthread_rwlock_init(&self.lock, nil)
    }

    func read<T>(_ body: (borrowing TextIndex) throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(&self.lock)
        defer { pthread_rwlock_unlock(&self.lock) }
        return try body(self.value)
    }

    func write<T>(_ body: (inout TextIndex) throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(&self.lock)
        defer { pthread_rwlock_unlock(&self.lock) }
        return try body(&self.value)
    }
}
