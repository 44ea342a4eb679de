import ArgumentParser
import CarmaEmbedding
import Foundation

/// `carmad embed`: runs the built-in sentence encoder over lines of standard input, printing one JSON
/// vector per line, or with `--measure` only how fast it went. For evaluation scripts and benchmarks.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed lines of standard input with the built-in model (one JSON array per line), or measure its speed.")

    @Option(help: "The model directory (config.json, vocab.txt, model.safetensors). Default $CARMA_EMBEDDING_MODEL.")
    var model: String?

    @Option(help: "Longest input in tokens; longer text is cut.")
    var maxTokens = 256

    @Option(help: "Arithmetic of the linear layers: auto, fp32, bf16 or int8 (env CARMA_EMBEDDING_PRECISION). Default auto.")
    var precision: String?

    @Option(help: "Texts per call of the encoder (1: one at a time, as a query is embedded).")
    var batch = 64

    @Option(help: "Threads per call, the caller's included.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print fragments per second, mean tokens and the median call's milliseconds instead of the vectors.")
    var measure = false

    @Flag(help: "Embed the lines as queries (after the model's query prefix, if it has one), as POST /query does; with --batch 1 through the query path itself (a query alone splits its layers with a helper thread).")
    var query = false

    func run() throws {
        guard let choice = self.model ?? ProcessInfo.processInfo.environment["CARMA_EMBEDDING_MODEL"] else {
            throw ValidationError("give --model or set CARMA_EMBEDDING_MODEL")
        }
        let name = self.precision ?? ProcessInfo.processInfo.environment["CARMA_EMBEDDING_PRECISION"] ?? "auto"
        guard let precision = EmbeddingPrecision(rawValue: name) else {
            throw ValidationError("--precision must be one of \(EmbeddingPrecision.allCases.map(\.rawValue).joined(separator: ", ")), not '\(name)'")
        }
        guard self.batch >= 1, self.threads >= 1 else { throw ValidationError("--batch and --threads must be at least 1") }
        let encoder = try SentenceEncoder(directory: try ModelChoice.directory(for: choice), maxTokens: self.maxTokens, precision: precision)
        var lines: [String] = []
        while let line = readLine(strippingNewline: true) {
            lines.append((try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])) as? String ?? line)
        }
        let texts = self.query ? lines.map { encoder.card.queryPrefix + $0 } : lines
        var calls: [Double] = []
        let cpuStarted = Self.cpuSeconds()
        let started = ContinuousClock.now
        for start in stride(from: 0, to: texts.count, by: self.batch) {
            let call = ContinuousClock.now
            let vectors =
                self.query && self.batch == 1
                ? [encoder.embedQuery(lines[start])] : encoder.embed(batch: Array(texts[start..<min(texts.count, start + self.batch)]), threads: self.threads)
            calls.append(Double((ContinuousClock.now - call) / .nanoseconds(1)) / 1e6)
            if !self.measure {
                for vector in vectors { print("[" + vector.map { String($0) }.joined(separator: ",") + "]") }
            }
        }
        if self.measure {
            let seconds = Double((ContinuousClock.now - started) / .microseconds(1)) / 1e6
            // CPU time beside wall time: on a machine shared with other work, fragments per CPU-second
            // is what one idle core would do (no SMT here), and wall time is what this run got.
            let cpu = Self.cpuSeconds() - cpuStarted
            let tokens = texts.reduce(0) { $0 + encoder.tokenCount($1) }
            let median = calls.sorted()[calls.count / 2]
            print(
                #"{"fragments": \#(texts.count), "seconds": \#(seconds), "per_second": \#(Double(texts.count) / max(seconds, 1e-9)), "#
                    + #""mean_tokens": \#(Double(tokens) / Double(max(texts.count, 1))), "median_call_ms": \#(median), "#
                    + #""cpu_seconds": \#(cpu), "per_cpu_second": \#(Double(texts.count) / max(cpu, 1e-9)), "#
                    + #""precision": "\#(encoder.precision)", "batch": \#(self.batch), "threads": \#(self.threads)}"#)
        }
    }

    /// User and system CPU time of this process so far.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
