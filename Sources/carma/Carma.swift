import ArgumentParser
import CarmaClient
import CarmaJSON
import Foundation

@main
struct Carma: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carma",
        abstract: "Client for the CARMA fragment store: everyday calls, corpus import, load generation, the resilience experiment and the MCP server.",
        subcommands: [
            Put.self, Get.self, Delete.self, List.self, History.self, Query.self, Dream.self, Status.self, Export.self, Import.self,
            Load.self, Experiment.self, MCPCommand.self, Namespaces.self,
        ])
}

/// Where the server is, shared by every subcommand.
struct ServerOption: ParsableArguments {
    @Option(name: .customLong("server"), help: "Base URL of carmad (env CARMA_SERVER). Default http://127.0.0.1:8080.")
    var url: String?

    @Option(help: "File holding the bearer token: the admin's, or a namespace's for --namespace (env CARMA_AUTH_TOKEN_FILE).")
    var tokenFile: String?

    @Option(help: "The bearer token itself (env CARMA_TOKEN); --token-file keeps it out of the process list.")
    var token: String?

    var endpoint: (host: String, port: Int) {
        get throws {
            let raw = self.url ?? ProcessInfo.processInfo.environment["CARMA_SERVER"] ?? "http://127.0.0.1:8080"
            guard raw.hasPrefix("http://") else { throw ValidationError("--server must be an http:// URL") }
            let rest = raw.dropFirst("http://".count).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            let parts = rest.split(separator: ":")
            guard let host = parts.first, parts.count <= 2 else { throw ValidationError("cannot read host and port from \(raw)") }
            let port = parts.count == 2 ? Int(parts[1]) : 80
            guard let port else { throw ValidationError("bad port in \(raw)") }
            return (host == "localhost" ? "127.0.0.1" : String(host), port)
        }
    }

    /// The token from --token, --token-file, CARMA_TOKEN or CARMA_AUTH_TOKEN_FILE, in that order:
    /// the admin token, or a namespace's (`carma namespaces token create`). Never printed or logged.
    var bearerToken: String? {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            if let token = self.token { return try Self.nonEmpty(token, from: "--token") }
            if let file = self.tokenFile { return try Self.read(file, from: "--token-file") }
            if let token = environment["CARMA_TOKEN"] { return try Self.nonEmpty(token, from: "CARMA_TOKEN") }
            if let file = environment["CARMA_AUTH_TOKEN_FILE"] { return try Self.read(file, from: "CARMA_AUTH_TOKEN_FILE") }
            return nil
        }
    }

    /// The token in `file` (surrounding white space dropped). Errors name the file, never its content.
    private static func read(_ file: String, from source: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read the token file \(file) (\(source))")
        }
        return try Self.nonEmpty(text, from: "\(source) \(file)")
    }

    private static func nonEmpty(_ token: String, from source: String) throws -> String {
        let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ValidationError("the token from \(source) is empty") }
        // A header value cannot hold a line break: refuse instead of sending a broken request.
        guard !trimmed.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw ValidationError("the token from \(source) has more than one line")
        }
        return trimmed
    }

    func api(namespace: CarmaNamespace = .default, timeoutSeconds: Int = 60) throws -> CarmaAPI {
        let (host, port) = try self.endpoint
        return CarmaAPI(host: host, port: port, token: try self.bearerToken, namespace: namespace, timeoutSeconds: timeoutSeconds)
    }
}

/// The namespace of a fragment-scoped command (put, get, delete, list, history, query, export,
/// import, load, mcp): its routes are `/namespaces/NS/...`; without it, the unprefixed ones
/// (the namespace `default`).
struct NamespaceOption: ParsableArguments {
    @Option(
        name: .customLong("namespace"),
        help: ArgumentHelp(
            "Work in this namespace: its routes are /namespaces/NS/... (env CARMA_NAMESPACE). Default: the namespace 'default' (the unprefixed routes).",
            valueName: "NS"))
    var name: String?

    /// --namespace, else CARMA_NAMESPACE, else nil.
    var given: String? {
        self.name ?? ProcessInfo.processInfo.environment["CARMA_NAMESPACE"]
    }

    /// The namespace (checked in `validate`).
    var namespace: CarmaNamespace {
        guard let given = self.given else { return .default }
        // validate() ran before run(): the name is valid.
        return (try? CarmaNamespace(given)) ?? .default
    }

    func validate() throws {
        guard let given = self.given else { return }
        do {
            _ = try CarmaNamespace(given)
        } catch {
            throw usageFailure("\(self.name == nil ? "CARMA_NAMESPACE" : "--namespace"): \(error)")
        }
    }
}

/// Exit status of a command line that names something invalid (a namespace): 2, as usage errors of
/// most Unix tools (ArgumentParser's own validation failures exit 64).
let usageExitCode: Int32 = 2

/// Writes `message` to standard error and returns the exit code to throw (2).
func usageFailure(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(usageExitCode)
}

/// Prints a response: the body (pretty if JSON) and, for failures, the status; exits non-zero on 4xx/5xx.
func show(_ response: ClientResponse, headers: [String] = []) throws {
    for name in headers {
        if let value = response.header(name) { print("\(name): \(value)") }
    }
    if let json = try? response.json() {
        print(Pretty.print(json))
    } else if !response.body.isEmpty {
        print(response.text)
    }
    if response.status >= 400 {
        FileHandle.standardError.write(Data("HTTP \(response.status)\n".utf8))
        throw ExitCode(1)
    }
}

enum Pretty {
    /// Indented JSON for people.
    static func print(_ value: JSONValue, indent: String = "") -> String {
        switch value {
        case .array(let items) where !items.isEmpty:
            let inner = indent + "  "
            return "[\n" + items.map { inner + Self.print($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let object) where !object.isEmpty:
            let inner = indent + "  "
            return "{\n" + object.members.map { inner + JSONValue.string($0.key).serialized + ": " + Self.print($0.value, indent: inner) }.joined(separator: ",\n") + "\n\(indent)}"
        default:
            return value.serialized
        }
    }
}

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Store a fragment.")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument(help: "Fragment id.") var id: String
    @Option(help: "The text (or use --file).") var content: String?
    @Option(help: "Read the text from a file ('-' for standard input).") var file: String?
    @Option(name: .customLong("link"), help: "Id of a related fragment (repeatable).") var links: [String] = []
    @Option(name: .customLong("tag"), help: "A tag (repeatable).") var tags: [String] = []
    @Option(help: "Metadata as a JSON object.") var metadata: String?
    @Option(help: "Only replace this version (If-Match).") var ifVersion: Int?

    func run() throws {
        var text = self.content
        if let file = self.file {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            text = String(decoding: data, as: UTF8.self)
        }
        guard let text else { throw ValidationError("give --content or --file") }
        var body: JSONObject = ["content": .string(text), "links": JSONValue(self.links), "tags": JSONValue(self.tags)]
        if let metadata = self.metadata {
            body["metadata"] = try JSONParser.parse(metadata)
        }
        let headers = self.ifVersion.map { [("If-Match", "\"\($0)\"")] } ?? []
        try show(try self.server.api(namespace: self.scope.namespace).put(self.id, .object(body), headers: headers), headers: ["ETag"])
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read a fragment (a blank stub if it is being rebuilt).")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument var id: String
    @Flag(help: "Fail (503) instead of answering a blank stub.") var strict = false

    func run() throws {
        let headers = self.strict ? [("Prefer", "strict")] : []
        try show(try self.server.api(namespace: self.scope.namespace).get(self.id, headers: headers), headers: ["X-Fragment-Status", "ETag"])
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a fragment on purpose (it will not be rebuilt).")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument var id: String

    func run() throws {
        try show(try self.server.api(namespace: self.scope.namespace).delete(self.id))
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List fragments.")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Option(help: "ok, blank or reconstructed.") var status: String?
    @Option var tag: String?
    @Option var limit = 100
    @Option var cursor: String?

    func run() throws {
        var query = ["limit=\(self.limit)"]
        if let status { query.append("status=\(status)") }
        if let tag { query.append("tag=\(Self.encode(tag))") }
        if let cursor { query.append("cursor=\(cursor)") }
        try show(try self.server.api().request("GET", self.scope.namespace.path("/fragments?" + query.joined(separator: "&"))))
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What happened to a fragment.")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument var id: String

    func run() throws {
        try show(try self.server.api().request("GET", self.scope.namespace.path("/fragments/\(self.id)/history")))
    }
}

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ranked retrieval by text.")
    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption
    @Argument(help: "The query text.") var text: String
    @Option var k = 5
    @Option(name: .customLong("tag"), help: "Only fragments with this tag (repeatable).") var tags: [String] = []

    func run() throws {
        var body: JSONObject = ["text": .string(self.text), "k": .number(Double(self.k))]
        if !self.tags.isEmpty { body["tags"] = JSONValue(self.tags) }
        try show(try self.server.api().request("POST", self.scope.namespace.path("/query"), json: .object(body)))
    }
}

struct Dream: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start a dream cycle (or join the running one).")
    @OptionGroup var server: ServerOption
    @Flag(help: "Wait for the cycle to finish and print its report.") var wait = false
    @Option var maxRepairs: Int?
    @Option var maxSeconds: Double?
    @Option var scrubFragments: Int?

    func run() throws {
        var budget = JSONObject()
        if let maxRepairs { budget["max_repairs"] = .number(Double(maxRepairs)) }
        if let maxSeconds { budget["max_seconds"] = .number(maxSeconds) }
        if let scrubFragments { budget["scrub_fragments"] = .number(Double(scrubFragments)) }
        let api = try self.server.api()
        if self.wait {
            var report = try api.dream(budget: budget.isEmpty ? nil : .object(budget))
            if case .object(var object) = report, let events = object["events"]?.arrayValue, events.count > 20 {
                object["events"] = .array(Array(events.prefix(20)) + [.string("… \(events.count - 20) more")])
                report = .object(object)
            }
            print(Pretty.print(report))
        } else {
            try show(try api.request("POST", "/dream", json: budget.isEmpty ? nil : .object(budget)), headers: ["Location"])
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The dream scheduler's state and the repair queue.")
    @OptionGroup var server: ServerOption

    func run() throws {
        try show(try self.server.api().request("GET", "/dream"))
    }
}
