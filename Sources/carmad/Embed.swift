import ArgumentParser
import CarmaEmbedding
import Foundation

/// `carmad embed`: runs the built-in sentence encoder over lines of standard input, printing one JSON
/// vector per line, or with `--measure` only how fast it went. For evaluation scripts and benchmarks.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed lines of standard input with the built-in model (one JSON array per line), or measure its speed.")

    @Option(help: "The model: minilm, bge-small or a model directory (config.json, vocab.txt, model.safetensors). Default $CARMA_EMBEDDING_MODEL.")
    var model: String?

    @Option(help: "Longest input in tokens; longer text is cut.")
    var maxTokens = 256

    @Flag(help: "Print fragments per second and mean tokens instead of the vectors.")
    var measure = false

    @Flag(help: "Embed the lines as queries (after the model's query prefix, if it has one), as POST /query does.")
    var query = false

    func run() throws {
        guard let choice = self.model ?? ProcessInfo.processInfo.environment["CARMA_EMBEDDING_MODEL"] else {
            throw ValidationError("give --model or set CARMA_EMBEDDING_MODEL")
        }
        let encoder = try SentenceEncoder(directory: try ModelChoice.directory(for: choice), maxTokens: self.maxTokens)
        var count = 0
        var tokens = 0
        let started = ContinuousClock.now
        while let line = readLine(strippingNewline: true) {
            let text = (try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])) as? String ?? line
            let vector = self.query ? encoder.embedQuery(text) : encoder.embed(text)
            count += 1
            if self.measure {
                tokens += encoder.tokenCount(text)
            } else {
                print("[" + vector.map { String($0) }.joined(separator: ",") + "]")
            }
        }
        if self.measure {
            let seconds = Double((ContinuousClock.now - started) / .microseconds(1)) / 1e6
            print(#"{"fragments": \#(count), "seconds": \#(seconds), "per_second": \#(Double(count) / max(seconds, 1e-9)), "mean_tokens": \#(Double(tokens) / Double(max(count, 1)))}"#)
        }
    }
}
