import CarmaClient
import CarmaJSON
import Foundation

/// Runs the tools against carmad: checks the arguments, sends the request, and turns the answer
/// into a result. Never throws: whatever goes wrong is an error result the model can read.
public struct CarmaToolbox: Sendable {
    let gateway: any CarmaGateway
    /// Where the memory tools work: their routes are the namespace's (`/namespaces/NS/...`, or the
    /// unprefixed ones for `default`); the ids they take and show are the namespace's own.
    public let namespace: CarmaNamespace
    /// Between two looks at a running cycle, when `dream` waits.
    let pollInterval: Duration
    /// Versions and cycle numbers beyond this are not ones carmad hands out (its ceiling is 2^62).
    static let maxVersion = 1 << 62
    /// Most report events put in a `dream` or `status` result; the rest are counted.
    static let maxEvents = 50

    public init(gateway: any CarmaGateway, namespace: CarmaNamespace = .default, pollInterval: Duration = .milliseconds(200)) {
        self.gateway = gateway
        self.namespace = namespace
        self.pollInterval = pollInterval
    }

    /// The tools offered. In a namespace other than `default`, only the memory tools: `dream` and
    /// `status` act on the whole store (carmad's global routes, which a namespace's token may not
    /// use), so they cannot be kept inside the namespace.
    public var tools: [CarmaTool] {
        self.namespace.isDefault ? CarmaTool.allCases : CarmaTool.allCases.filter(\.isNamespaced)
    }

    /// Calls `tool` with `arguments` (the call's JSON object).
    public func call(_ tool: CarmaTool, arguments: JSONObject) async -> ToolResult {
        guard self.tools.contains(tool) else { return .notOffered(tool, in: self.namespace, offered: self.tools) }
        do {
            let args = try ToolArguments(arguments, allowed: tool.argumentNames)
            switch tool {
            case .remember: return try await self.remember(args)
            case .recall: return try await self.recall(args)
            case .get: return try await self.get(args)
            case .forget: return try await self.forget(args)
            case .list: return try await self.list(args)
            case .dream: return try await self.dream(args)
            case .status: return try await self.status(args)
            }
        } catch let error as ToolInputError {
            return .invalid(error)
        } catch let error as ClientError {
            return .unreachable(error.message)
        } catch let answer as ErrorAnswer {
            return answer.result
        } catch {
            return .unreachable("\(error)")
        }
    }

    // MARK: - Tools

    private func remember(_ args: ToolArguments) async throws -> ToolResult {
        let content = try args.requiredString("content")
        let id = try args.string("id") ?? "mem-" + UUID().uuidString.lowercased()
        try Self.checkNotEmpty(id, "id")
        var body: JSONObject = ["content": .string(content)]
        if let links = try args.strings("links") { body["links"] = JSONValue(links) }
        if let tags = try args.strings("tags") { body["tags"] = JSONValue(tags) }
        if let metadata = try args.object("metadata") { body["metadata"] = .object(metadata) }
        if let embedding = try args.numbers("embedding") { body["embedding"] = .array(embedding.map(JSONValue.number)) }
        var headers: [CarmaRequest.Header] = []
        if let version = try args.integer("if_version", in: 1...Self.maxVersion) {
            headers.append(.init(name: "If-Match", value: "\"\(version)\""))
        }
        let (response, json) = try await self.send(CarmaRequest("PUT", self.namespace.path("/fragments/\(id.pathSegment)"), body: .object(body), headers: headers), expecting: [200, 201])
        let fragment = json?.objectValue ?? [:]
        let created = response.status == 201
        let version = fragment["version"] ?? .null
        return ToolResult(
            text: "\(created ? "Remembered" : "Replaced") '\(id)' (version \(version.intValue.map(String.init) ?? "?")).",
            structured: [
                "id": .string(id), "version": version, "created": .bool(created),
                "status": fragment["status"] ?? "ok", "size": fragment["size"] ?? .null,
            ])
    }

    private func recall(_ args: ToolArguments) async throws -> ToolResult {
        let text = try args.requiredString("text")
        try Self.checkNotEmpty(text, "text")
        var body: JSONObject = ["text": .string(text), "k": .number(Double(try args.integer("k", in: 1...100) ?? 5))]
        if let tags = try args.strings("tags") { body["tags"] = JSONValue(tags) }
        let json: JSONValue?
        do {
            json = try await self.send(CarmaRequest("POST", self.namespace.path("/query"), body: .object(body)), expecting: [200]).1
        } catch let answer as ErrorAnswer where answer.isUnknownNamespace {
            return self.emptyNamespace(["results": []], "Nothing stored matches \"\(text)\"")
        }
        var answer = json?.objectValue ?? [:]
        let hits = (answer["results"]?.arrayValue ?? []).compactMap(\.objectValue).map(FragmentPresentation.flagged)
        answer["results"] = .array(hits.map(JSONValue.object))
        var lines = [hits.isEmpty ? "Nothing stored matches \"\(text)\"." : "\(Self.count(hits.count, "fragment")) for \"\(text)\", best first:"]
        for (rank, hit) in hits.enumerated() {
            let score = hit["score"]?.doubleValue.map { String(format: "%.3f", $0) } ?? "?"
            lines.append("")
            lines.append("\(rank + 1). score \(score): " + FragmentPresentation.describe(hit))
        }
        if answer["index"]?["ready"] == false {
            lines.append("(The store's search index is still loading: results may be incomplete.)")
        }
        return ToolResult(text: lines.joined(separator: "\n"), structured: .object(answer))
    }

    private func get(_ args: ToolArguments) async throws -> ToolResult {
        let id = try args.requiredString("id")
        try Self.checkNotEmpty(id, "id")
        let (_, json) = try await self.send(CarmaRequest("GET", self.namespace.path("/fragments/\(id.pathSegment)")), expecting: [200])
        let fragment = FragmentPresentation.flagged(json?.objectValue ?? [:])
        return ToolResult(text: FragmentPresentation.describe(fragment), structured: .object(fragment))
    }

    private func forget(_ args: ToolArguments) async throws -> ToolResult {
        let id = try args.requiredString("id")
        try Self.checkNotEmpty(id, "id")
        var headers: [CarmaRequest.Header] = []
        if let version = try args.integer("if_version", in: 1...Self.maxVersion) {
            headers.append(.init(name: "If-Match", value: "\"\(version)\""))
        }
        _ = try await self.send(CarmaRequest("DELETE", self.namespace.path("/fragments/\(id.pathSegment)"), headers: headers), expecting: [204])
        return ToolResult(text: "Forgot '\(id)': deleted on purpose, it will not be rebuilt.", structured: ["id": .string(id), "deleted": true])
    }

    private func list(_ args: ToolArguments) async throws -> ToolResult {
        var query = ["limit=\(try args.integer("limit", in: 1...1000) ?? 50)"]
        if let status = try args.string("status") {
            guard ["ok", "blank", "reconstructed"].contains(status) else {
                throw ToolInputError("status", "status is one of ok, blank, reconstructed")
            }
            query.append("status=\(status)")
        }
        if let tag = try args.string("tag") { query.append("tag=\(tag.pathSegment)") }
        if let cursor = try args.string("cursor") { query.append("cursor=\(cursor.pathSegment)") }
        let json: JSONValue?
        do {
            json = try await self.send(CarmaRequest("GET", self.namespace.path("/fragments?" + query.joined(separator: "&"))), expecting: [200]).1
        } catch let answer as ErrorAnswer where answer.isUnknownNamespace {
            return self.emptyNamespace(["items": [], "next_cursor": .null], "No fragments")
        }
        var answer = json?.objectValue ?? [:]
        let items = (answer["items"]?.arrayValue ?? []).compactMap(\.objectValue).map(FragmentPresentation.flagged)
        answer["items"] = .array(items.map(JSONValue.object))
        var lines = [items.isEmpty ? "No fragments." : "\(Self.count(items.count, "fragment")):"]
        lines += items.map { "- " + FragmentPresentation.headline($0) }
        if let cursor = answer["next_cursor"]?.stringValue {
            lines.append("More: call list again with cursor \"\(cursor)\".")
        }
        return ToolResult(text: lines.joined(separator: "\n"), structured: .object(answer))
    }

    private func dream(_ args: ToolArguments) async throws -> ToolResult {
        var budget = JSONObject()
        if let repairs = try args.integer("max_repairs", in: 1...10_000_000) { budget["max_repairs"] = .number(Double(repairs)) }
        if let seconds = try args.number("max_seconds", in: 0.001...86_400) { budget["max_seconds"] = .number(seconds) }
        let wait = try args.bool("wait") ?? false
        let waitSeconds = try args.number("wait_seconds", in: 1...600) ?? 120
        let (_, json) = try await self.send(CarmaRequest("POST", "/dream", body: budget.isEmpty ? nil : .object(budget)), expecting: [202])
        var cycle = json?.objectValue ?? [:]
        if wait, let id = cycle["id"]?.intValue {
            let deadline = ContinuousClock.now + .milliseconds(Int(waitSeconds * 1000))
            while cycle["state"]?.stringValue == "running", ContinuousClock.now < deadline {
                try await Task.sleep(for: self.pollInterval)
                cycle = try await self.send(CarmaRequest("GET", "/dream/\(id)"), expecting: [200]).1?.objectValue ?? cycle
            }
        }
        let report = Self.trimmed(cycle)
        return ToolResult(text: Self.describeCycle(report), structured: .object(report))
    }

    private func status(_ args: ToolArguments) async throws -> ToolResult {
        if let cycle = try args.integer("cycle", in: 1...Self.maxVersion) {
            let (_, json) = try await self.send(CarmaRequest("GET", "/dream/\(cycle)"), expecting: [200])
            let report = Self.trimmed(json?.objectValue ?? [:])
            return ToolResult(text: Self.describeCycle(report), structured: .object(report))
        }
        let (_, json) = try await self.send(CarmaRequest("GET", "/dream"), expecting: [200])
        let state = json?.objectValue ?? [:]
        var lines = ["Dream engine: \(state["state"]?.stringValue ?? "unknown")."]
        if let cycle = state["current_cycle"]?.objectValue {
            lines.append("Current cycle: " + Self.describeCycle(cycle))
        }
        if let queue = state["queue"]?.objectValue {
            let depth = queue["depth"]?.intValue ?? 0
            let ready = queue["ready"]?.intValue ?? 0
            var line = "Repair queue: \(depth) fragments waiting (\(ready) due now, \(depth - ready) waiting for a retry after a failed attempt)"
            if depth > 0 {
                line += queue["eta_seconds"]?.doubleValue.map { String(format: "; the due ones should be repaired in about %.0f s", $0) }
                    ?? "; no repair is due before the retry times"
            }
            lines.append(line + ".")
        }
        if let next = state["next_run_at"]?.stringValue {
            lines.append("Next scheduled cycle: \(next).")
        }
        return ToolResult(text: lines.joined(separator: "\n"), structured: .object(state))
    }

    // MARK: - Helpers

    /// A non-2xx answer, carried out of a tool as its error result.
    private struct ErrorAnswer: Error {
        let result: ToolResult

        /// carmad's 404 for a namespace it does not know (or one the token may not see).
        var isUnknownNamespace: Bool {
            self.result.structured["status"]?.intValue == 404
                && self.result.structured["type"]?.stringValue?.hasSuffix("namespace-not-found") == true
        }
    }

    /// What recall and list answer in a namespace carmad does not know yet: nothing, and why. A
    /// namespace exists from its first write (or its creation by the admin), so a new agent's
    /// first recall finds an empty memory instead of an error. `namespace_exists` says which it was.
    private func emptyNamespace(_ structured: JSONObject, _ nothing: String) -> ToolResult {
        var structured = structured
        structured["namespace"] = .string(self.namespace.name)
        structured["namespace_exists"] = false
        return ToolResult(
            text: "\(nothing): namespace '\(self.namespace.name)' holds nothing yet (carmad does not know it; the first remember creates it "
                + "when the token may, and a token of another namespace sees it as unknown).",
            structured: .object(structured))
    }

    /// Sends a request; an answer outside `expecting` becomes the problem's error result.
    private func send(_ request: CarmaRequest, expecting: Set<Int>) async throws -> (ClientResponse, JSONValue?) {
        let response = try await self.gateway.send(request)
        let json = response.body.isEmpty ? nil : try? response.json()
        guard expecting.contains(response.status) else {
            var body = json
            if var object = json?.objectValue, let retry = response.header("Retry-After").flatMap(Int.init) {
                object["retry_after"] = .number(Double(retry))
                body = .object(object)
            }
            throw ErrorAnswer(result: .problem(status: response.status, body: body, fallback: String(response.text.prefix(300))))
        }
        if !response.body.isEmpty, json == nil {
            throw ClientError("carmad answered \(request.method) \(request.path) with a body that is not JSON")
        }
        return (response, json)
    }

    private static func count(_ n: Int, _ noun: String) -> String {
        "\(n) \(noun)\(n == 1 ? "" : "s")"
    }

    private static func checkNotEmpty(_ value: String, _ field: String) throws(ToolInputError) {
        if value.isEmpty { throw ToolInputError(field, "\(field) must not be empty") }
    }

    /// A cycle report with at most `maxEvents` events (the rest counted in `events_omitted`).
    private static func trimmed(_ report: JSONObject) -> JSONObject {
        guard let events = report["events"]?.arrayValue, events.count > Self.maxEvents else { return report }
        var trimmed = report
        trimmed["events"] = .array(Array(events.prefix(Self.maxEvents)))
        trimmed["events_omitted"] = .number(Double(events.count - Self.maxEvents))
        return trimmed
    }

    private static func describeCycle(_ cycle: JSONObject) -> String {
        let id = cycle["id"]?.intValue.map(String.init) ?? "?"
        let state = cycle["state"]?.stringValue ?? "unknown"
        var line = "Dream cycle \(id): \(state)"
        if let outcomes = cycle["outcomes"]?.objectValue, !outcomes.isEmpty {
            line += "; outcomes: " + outcomes.map { "\($0.key) \($0.value.intValue ?? 0)" }.joined(separator: ", ")
        }
        if state == "running" {
            line += ". Call status with cycle \(id) for its report later"
        }
        return line + "."
    }
}
