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
        #expect(MemoryServer.tools().map(\.name) == CarmaTool.allCases.map(\.rawValue))
    }
}

@Suite("namespaces")
struct NamespaceTests {
    @Test("names follow the id rules: 1 to 200 of A-Z a-z 0-9 . _ ~ -, not starting with '.'")
    func validation() throws {
        for name in ["alice", "default", "a", "A.b_c~d-e", "0", "team.alpha", "-x", "~", String(repeating: "n", count: 200)] {
            #expect(CarmaNamespace.validate(name) == nil, "\(name)")
            #expect(try CarmaNamespace(name).name == name)
        }
        let bad: [(String, String)] = [
            ("", "must not be empty"),
            (String(repeating: "n", count: 201), "at most 200"),
            (".hidden", "must not start with '.'"),
            ("..", "must not start with '.'"),
            ("a/b", "only letters"),
            ("a b", "only letters"),
            ("é", "only letters"),
            ("a%2Fb", "only letters"),
            ("a?b", "only letters"),
            ("a\nb", "only letters"),
        ]
        for (name, reason) in bad {
            #expect(CarmaNamespace.validate(name)?.contains(reason) == true, "\(name.debugDescription)")
            #expect(throws: NamespaceNameError.self) { try CarmaNamespace(name) }
        }
        let error = #expect(throws: NamespaceNameError.self) { try CarmaNamespace("a/b") }
        #expect(error?.description.hasPrefix("invalid namespace name 'a/b': ") == true)
    }

    @Test("fragment routes get the /namespaces/NS prefix; 'default' keeps the unprefixed routes")
    func paths() throws {
        let alice = try CarmaNamespace("alice")
        #expect(alice.path("/fragments/a") == "/namespaces/alice/fragments/a")
        #expect(alice.path("/fragments?limit=5&tag=x") == "/namespaces/alice/fragments?limit=5&tag=x")
        #expect(alice.path("/query") == "/namespaces/alice/query")
        #expect(alice.path("/export") == "/namespaces/alice/export")
        #expect(alice.path("/import") == "/namespaces/alice/import")
        #expect(alice.path("/fragments/a/history") == "/namespaces/alice/fragments/a/history")
        #expect(alice.resource() == "/namespaces/alice")
        #expect(alice.resource("/tokens/tok_1") == "/namespaces/alice/tokens/tok_1")
        #expect(!alice.isDefault)
        for namespace in [CarmaNamespace.default, try CarmaNamespace("default")] {
            #expect(namespace.isDefault)
            #expect(namespace.path("/fragments/a") == "/fragments/a")
            #expect(namespace.path("/export") == "/export")
            #expect(namespace.resource() == "/namespaces/default")
        }
        #expect(try CarmaNamespace("a.b~c").path("/query") == "/namespaces/a.b~c/query")
    }

    @Test("CarmaAPI's put, get, delete and scoped use its namespace; other paths stay as given")
    func apiPaths() throws {
        let api = CarmaAPI(port: 1, namespace: try CarmaNamespace("bob"))
        #expect(api.scoped("/import") == "/namespaces/bob/import")
        #expect(CarmaAPI(port: 1).scoped("/import") == "/import")
        #expect(CarmaAPI(port: 1).namespace == .default)
    }

    /// Answers every request 200 with an empty fragment, a listing or a query answer.
    static func okGateway() -> ScriptedGateway {
        ScriptedGateway { request in
            switch request.method {
            case "PUT": return ScriptedGateway.json(201, ["id": "x", "namespace": "alice", "version": 1, "status": "ok", "size": 1])
            case "DELETE": return ClientResponse(status: 204, headers: [], body: [])
            case "POST": return ScriptedGateway.json(200, ["results": []])
            default:
                return request.path.contains("/fragments?")
                    ? ScriptedGateway.json(200, ["items": [], "next_cursor": .null])
                    : ScriptedGateway.json(200, ["id": "x", "namespace": "alice", "version": 1, "content": "c"])
            }
        }
    }

    @Test("every memory tool in a namespace calls that namespace's routes, ids as local ids")
    func toolPaths() async throws {
        let gateway = Self.okGateway()
        let toolbox = CarmaToolbox(gateway: gateway, namespace: try CarmaNamespace("alice"))
        let calls: [(CarmaTool, JSONObject)] = [
            (.remember, ["id": "note-1", "content": "c", "links": ["note-2"]]),
            (.recall, ["text": "c"]),
            (.get, ["id": "note-1"]),
            (.forget, ["id": "note-1"]),
            (.list, ["tag": "t", "limit": 2]),
            (.get, ["id": "../x"]),
        ]
        for (tool, arguments) in calls {
            let result = await toolbox.call(tool, arguments: arguments)
            #expect(!result.isError, "\(tool): \(result.text)")
        }
        let sent = gateway.requests.withLock { $0.map { "\($0.method) \($0.path)" } }
        #expect(sent == [
            "PUT /namespaces/alice/fragments/note-1",
            "POST /namespaces/alice/query",
            "GET /namespaces/alice/fragments/note-1",
            "DELETE /namespaces/alice/fragments/note-1",
            "GET /namespaces/alice/fragments?limit=2&tag=t",
            "GET /namespaces/alice/fragments/%2E%2E%2Fx",
        ])
        // The remembered fragment's links are sent as given: local ids.
        #expect(gateway.requests.withLock { $0[0].body?["links"] } == ["note-2"])
    }

    @Test("without a namespace, or in 'default', the tools call the unprefixed routes and all seven are offered")
    func defaultPaths() async throws {
        for namespace in [CarmaNamespace.default, try CarmaNamespace("default")] {
            let gateway = Self.okGateway()
            let toolbox = CarmaToolbox(gateway: gateway, namespace: namespace)
            #expect(toolbox.tools == CarmaTool.allCases)
            _ = await toolbox.call(.get, arguments: ["id": "a"])
            _ = await toolbox.call(.recall, arguments: ["text": "a"])
            #expect(gateway.requests.withLock { $0.map(\.path) } == ["/fragments/a", "/query"])
        }
        #expect(CarmaToolbox(gateway: Self.okGateway()).namespace == .default)
    }

    @Test("in a namespace, dream and status (whole-store routes) are neither listed nor callable")
    func storeToolsHidden() async throws {
        let gateway = Self.okGateway()
        let toolbox = CarmaToolbox(gateway: gateway, namespace: try CarmaNamespace("alice"))
        #expect(toolbox.tools == [.remember, .recall, .get, .forget, .list])
        #expect(MemoryServer.tools(toolbox.tools).map(\.name) == ["remember", "recall", "get", "forget", "list"])
        for tool in [CarmaTool.dream, .status] {
            let result = await toolbox.call(tool, arguments: [:])
            #expect(result.isError)
            #expect(result.structured["type"] == "tool-not-available")
            #expect(result.text.contains("namespace 'alice'"))
        }
        #expect(gateway.requests.withLock { $0.isEmpty })
        #expect(MemoryServer.instructions(namespace: toolbox.namespace).contains("namespace 'alice'"))
        #expect(!MemoryServer.instructions(namespace: .default).contains("namespace"))
    }

    @Test("recall and list in a namespace carmad does not know answer an empty memory; get, remember and forget its 404")
    func unknownNamespace() async throws {
        let gateway = ScriptedGateway { _ in
            ScriptedGateway.json(404, [
                "type": "urn:carma:problem:namespace-not-found", "title": "Namespace not found", "status": 404, "detail": "no namespace 'alice'",
            ])
        }
        let toolbox = CarmaToolbox(gateway: gateway, namespace: try CarmaNamespace("alice"))
        let recalled = await toolbox.call(.recall, arguments: ["text": "anything"])
        #expect(!recalled.isError)
        #expect(recalled.structured["results"] == [])
        #expect(recalled.structured["namespace_exists"] == false)
        #expect(recalled.text.hasPrefix("Nothing stored matches \"anything\": namespace 'alice' holds nothing yet"))
        let listed = await toolbox.call(.list, arguments: [:])
        #expect(!listed.isError)
        #expect(listed.structured["items"] == [])
        for (tool, arguments) in [(CarmaTool.get, ["id": "a"] as JSONObject), (.forget, ["id": "a"]), (.remember, ["id": "a", "content": "c"])] {
            let result = await toolbox.call(tool, arguments: arguments)
            #expect(result.isError, "\(tool)")
            #expect(result.structured["status"] == 404)
            #expect(result.text == "Namespace not found (HTTP 404): no namespace 'alice'")
        }
        // A fragment's 404 stays an error for recall's neighbours too: only namespace-not-found is empty.
        let fragmentMissing = CarmaToolbox(gateway: ScriptedGateway { _ in
            ScriptedGateway.json(404, ["type": "urn:carma:problem:fragment-not-found", "title": "Fragment not found", "status": 404])
        }, namespace: try CarmaNamespace("alice"))
        #expect(await fragmentMissing.call(.list, arguments: [:]).isError)
    }
}
