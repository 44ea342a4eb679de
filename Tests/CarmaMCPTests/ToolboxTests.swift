import CarmaClient
import CarmaJSON
import Synchronization
import Testing

@testable import CarmaMCP

/// Answers requests from a table instead of a server, and remembers what was asked.
final class ScriptedGateway: CarmaGateway {
    let answers: @Sendable (CarmaRequest) -> ClientResponse?
    let requests = Mutex<[CarmaRequest]>([])

    init(_ answers: @escaping @Sendable (CarmaRequest) -> ClientResponse?) {
        self.answers = answers
    }

    func send(_ request: CarmaRequest) async throws(ClientError) -> ClientResponse {
        self.requests.withLock { $0.append(request) }
        guard let response = self.answers(request) else { throw ClientError("connection refused") }
        return response
    }

    static func json(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) -> ClientResponse {
        ClientResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body.bytes)
    }
}

@Suite("MCP tools")
struct ToolboxTests {
    @Test("arguments outside the schema are error results naming the argument, and nothing is sent")
    func invalidArguments() async {
        let gateway = ScriptedGateway { _ in nil }
        let toolbox = CarmaToolbox(gateway: gateway)
        let cases: [(CarmaTool, JSONObject, String)] = [
            (.remember, [:], "content"),
            (.remember, ["content": 1], "content"),
            (.remember, ["content": "x", "tags": [1]], "tags"),
            (.remember, ["content": "x", "metadata": "m"], "metadata"),
            (.recall, ["text": "x", "k": 101], "k"),
            (.recall, ["text": "x", "k": 2.5], "k"),
            (.get, ["id": ""], "id"),
            (.list, ["nope": true], "nope"),
            (.dream, ["wait": "yes"], "wait"),
        ]
        for (tool, arguments, field) in cases {
            let result = await toolbox.call(tool, arguments: arguments)
            #expect(result.isError)
            #expect(result.structured["field"]?.stringValue == field, "\(tool) \(arguments)")
        }
        #expect(gateway.requests.withLock { $0.isEmpty })
    }

    @Test("a problem document becomes an error result with its title, detail and status")
    func problemResult() async {
        let toolbox = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(503, ["type": "urn:carma:problem:read-only-storage", "title": "Storage is read-only", "detail": "disk", "status": 503], headers: [("Retry-After", "60")])
        })
        let result = await toolbox.call(.forget, arguments: ["id": "a"])
        #expect(result.isError)
        #expect(result.text == "Storage is read-only (HTTP 503): disk Retry in 60 s.")
        #expect(result.structured["status"] == 503)
    }

    @Test("ids are sent as one path segment: dots, slashes and other bytes percent-encoded")
    func pathEncoding() async {
        let gateway = ScriptedGateway { _ in ScriptedGateway.json(404, ["title": "Fragment not found", "detail": "no"]) }
        _ = await CarmaToolbox(gateway: gateway).call(.get, arguments: ["id": "../a b/é"])
        #expect(gateway.requests.withLock { $0.map(\.path) } == ["/fragments/%2E%2E%2Fa%20b%2F%C3%A9"])
    }

    @Test("a blank stub is flagged: rebuild_needed, not exact, no content, and the text says BLANK")
    func blankFlagged() async {
        let toolbox = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(200, ["id": "a", "status": "blank", "rebuild_needed": true, "version": 3, "links": [], "tags": [], "reason": "missing", "rebuild": ["state": "queued", "eta_seconds": 5]])
        })
        let result = await toolbox.call(.get, arguments: ["id": "a"])
        #expect(!result.isError)
        #expect(result.structured["rebuild_needed"] == true)
        #expect(result.structured["exact"] == false)
        #expect(result.structured["content"] == nil)
        #expect(result.text.hasPrefix("'a' (version 3): BLANK"))
        #expect(result.text.contains("A repair is planned in about 5 s"))
    }

    @Test("a blank whose repair failed says so, with the error and the real next attempt, or that none is planned")
    func blankFailed() async {
        let failed = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(200, [
                "id": "a", "status": "blank", "version": 3, "reason": "missing",
                "rebuild": ["state": "failed", "attempts": 2, "last_error": "no surviving context", "eta_seconds": 120],
            ])
        })
        let text = await failed.call(.get, arguments: ["id": "a"]).text
        #expect(text.contains("2 repair attempts failed (no surviving context); next attempt in about 120 s"))
        let unplanned = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(200, ["id": "a", "status": "blank", "version": 3, "reason": "missing", "rebuild": ["state": "not_queued"]])
        })
        #expect(await unplanned.call(.get, arguments: ["id": "a"]).text.contains("No repair attempt is planned"))
    }

    @Test("a reconstruction's text says it is approximate and gives the confidence")
    func reconstructionFlagged() async {
        let toolbox = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(200, ["id": "a", "status": "reconstructed", "version": 3, "content": "rebuilt", "confidence": 0.625, "sources": ["b"]])
        })
        let result = await toolbox.call(.get, arguments: ["id": "a"])
        #expect(result.structured["rebuild_needed"] == false)
        #expect(result.structured["exact"] == false)
        #expect(result.text.contains("RECONSTRUCTED"))
        #expect(result.text.contains("confidence 0.62") || result.text.contains("confidence 0.63"))
    }

    @Test("an unreachable server is an error result")
    func unreachable() async {
        let result = await CarmaToolbox(gateway: ScriptedGateway { _ in nil }).call(.status, arguments: [:])
        #expect(result.isError)
        #expect(result.text == "Cannot reach the CARMA store: connection refused.")
    }

    @Test("every tool's schema is an object schema whose required arguments it declares")
    func schemas() {
        for tool in CarmaTool.allCases {
            let schema = tool.inputSchema
            #expect(schema["type"] == "object")
            let properties = Set(schema["properties"]?.objectValue?.keys ?? [])
            let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            #expect(required.isSubset(of: properties))
        }
        #expect(MemoryServer.tools.map(\.name) == CarmaTool.allCases.map(\.rawValue))
    }
}
