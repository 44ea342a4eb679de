import ArgumentParser
import CarmaClient
import CarmaJSON
import CarmaText
import Foundation
import Synchronization

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate load from many connections and report throughput and latency.",
        discussion: """
            put: writes ids <prefix><n> for n < --count with --size bytes of content. \
            get: reads random ids among the first --count for --duration seconds. \
            scan: reads each of the first --count ids once. \
            query: POST /query with random sentences from --corpus for --duration seconds.
            """)

    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument(help: "put, get, scan or query.") var mode: String
    @Option(help: "JSONL corpus whose sentences become queries (query mode).") var corpus: String?
    @Option(help: "Fragments to write (put), or ids to pick from (get).") var count = 10_000
    @Option(help: "Id prefix.") var prefix = "load-"
    @Option(help: "Content size in bytes (put).") var size = 1024
    @Option(help: "Concurrent connections.") var connections = 64
    @Option(help: "Seconds to run (get); put stops after --count.") var duration = 10.0
    @Option(help: "Write the summary as JSON here.") var json: String?

    func run() throws {
        guard ["put", "get", "scan", "query"].contains(self.mode) else { throw ValidationError("mode is put, get, scan or query") }
        let (host, port) = try self.server.endpoint
        let token = try self.server.api().token
        let driver = LoadDriver(host: host, port: port, token: token, connections: self.connections)
        let count = self.count, prefix = self.prefix, connections = self.connections
        let namespace = self.scope.namespace
        let filler = String(repeating: "x", count: max(0, self.size - 40))
        let deadline = Date().addingTimeInterval(self.duration)
        let result: (samples: [LoadDriver.Sample], failures: [String], seconds: Double)
        if self.mode == "put" {
            result = driver.run { worker, sequence in
                let n = sequence * connections + worker
                guard n < count else { return nil }
                let content = "fragment \(prefix)\(n) " + filler
                return ("PUT", namespace.path("/fragments/\(prefix)\(n)"), ["content": .string(content)], { $0.status == 201 || $0.status == 200 })
            }
        } else if self.mode == "scan" {
            result = driver.run { worker, sequence in
                let n = sequence * connections + worker
                guard n < count else { return nil }
                return ("GET", namespace.path("/fragments/\(prefix)\(n)"), JSONValue?.none, { $0.status == 200 })
            }
        } else if self.mode == "query" {
            guard let path = self.corpus else { throw ValidationError("query mode needs --corpus") }
            let sentences = try Corpus.load(path).fragments.flatMap { Tokenizer.sentences($0.content).filter { Tokenizer.hashes($0).count >= 4 } }
            guard !sentences.isEmpty else { throw ValidationError("no sentences in \(path)") }
            result = driver.run { _, _ in
                guard Date() < deadline else { return nil }
                let body: JSONValue = ["text": .string(sentences[Int.random(in: 0..<sentences.count)]), "k": 10]
                return ("POST", namespace.path("/query"), body, { $0.status == 200 })
            }
        } else {
            result = driver.run { worker, _ in
                guard Date() < deadline else { return nil }
                return ("GET", namespace.path("/fragments/\(prefix)\(Int.random(in: 0..<count))"), JSONValue?.none, { $0.status == 200 })
            }
        }
        let summary = LatencySummary(result.samples.map(\.latency))
        let failed = result.samples.filter { !$0.ok }.count
        let report: JSONValue = [
            "mode": .string(self.mode), "connections": .number(Double(self.connections)),
            "requests": .number(Double(result.samples.count)), "failed": .number(Double(failed)),
            "seconds": .number((result.seconds * 1000).rounded() / 1000),
            "requests_per_second": .number((Double(result.samples.count) / result.seconds).rounded()),
            "latency": summary.json,
        ]
        print(Pretty.print(report))
        for failure in result.failures.prefix(5) { FileHandle.standardError.write(Data("failure: \(failure)\n".utf8)) }
        if let path = self.json { try Data(report.bytes).write(to: URL(fileURLWithPath: path)) }
        if failed > 0 { throw ExitCode(1) }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an export of `carma export` (exactly: ids, versions, status), or a JSONL corpus (one fragment a line: id, content, links, tags, metadata), into the store.",
        discussion: """
            An export is loaded in batches, each fragment at its own version and only where the store's             version of it is lower: running it again changes nothing, and re-running it after an             interruption completes it.
            """)

    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument(help: "The export (NDJSON) or JSONL corpus.") var file: String
    @Option(help: "Concurrent connections (corpus only).") var connections = 32

    func run() throws {
        if try ExportImport.isExport(self.file) {
            let totals = try ExportImport(api: try self.server.api(namespace: self.scope.namespace, timeoutSeconds: 300), path: self.file).run()
            print("imported \(totals.imported), unchanged \(totals.unchanged), superseded by newer versions \(totals.superseded)")
            return
        }
        let corpus = try Corpus.load(self.file)
        let (host, port) = try self.server.endpoint
        let driver = LoadDriver(host: host, port: port, token: try self.server.api().token, connections: self.connections)
        let connections = self.connections
        let fragments = corpus.fragments
        let namespace = self.scope.namespace
        let result = driver.run { worker, sequence in
            let index = sequence * connections + worker
            guard index < fragments.count else { return nil }
            let fragment = fragments[index]
            return ("PUT", namespace.path("/fragments/\(fragment.id)"), fragment.body, { $0.status == 201 || $0.status == 200 })
        }
        let failed = result.samples.filter { !$0.ok }.count
        print("imported \(result.samples.count - failed) of \(fragments.count) fragments in \(String(format: "%.1f", result.seconds)) s (\(Int(Double(result.samples.count) / result.seconds)) per second)")
        for failure in result.failures.prefix(5) { FileHandle.standardError.write(Data("failure: \(failure)\n".utf8)) }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// A JSONL corpus: one fragment per line.
struct Corpus {
    struct Fragment {
        var id: String
        var content: String
        var links: [String]
        var tags: [String]
        var body: JSONValue
    }

    var fragments: [Fragment]

    static func load(_ path: String) throws -> Corpus {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var fragments: [Fragment] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let lineNumber = index + 1
            let value: JSONValue
            do {
                value = try JSONParser.parse(Array(line))
            } catch {
                throw ValidationError("\(path):\(lineNumber): \(error)")
            }
            guard let id = value["id"]?.stringValue, let content = value["content"]?.stringValue else {
                throw ValidationError("\(path):\(lineNumber): a line needs id and content")
            }
            var body: JSONObject = ["content": .string(content)]
            for key in ["links", "tags", "metadata"] {
                if let member = value[key] { body[key] = member }
            }
            fragments.append(
                Fragment(
                    id: id, content: content, links: value["links"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                    tags: value["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [], body: .object(body)))
        }
        return Corpus(fragments: fragments)
    }
}
