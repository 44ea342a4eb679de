import CarmaClient
import CarmaJSON
import Logging
import MCP

/// `carma mcp`: the store's tools served over the Model Context Protocol on standard input and
/// output, one JSON-RPC message per line. Runs until the host closes standard input.
public struct MemoryServer: Sendable {
    let toolbox: CarmaToolbox
    let version: String

    public init(toolbox: CarmaToolbox, version: String) {
        self.toolbox = toolbox
        self.version = version
    }

    /// The tools as MCP describes them (by default every one; `toolbox.tools` are those served).
    public static func tools(_ offered: [CarmaTool] = CarmaTool.allCases) -> [Tool] {
        offered.map { tool in
            Tool(
                name: tool.rawValue, description: tool.summary, inputSchema: Value(tool.inputSchema),
                annotations: .init(readOnlyHint: tool.readOnly, destructiveHint: tool == .forget, openWorldHint: false))
        }
    }

    /// What a call answers, in MCP's shape: the text, and the same facts as structured content.
    static func callResult(_ result: ToolResult) -> CallTool.Result {
        CallTool.Result(
            content: [.text(text: result.text, annotations: nil, _meta: nil)],
            structuredContent: Optional<Value>.some(Value(result.structured)),
            isError: result.isError)
    }

    /// What the host is told about the server, for the model.
    static func instructions(namespace: CarmaNamespace) -> String {
        var text = "Long-term memory for the agent. remember stores a fragment, recall finds fragments by meaning and words, "
            + "get reads one, forget deletes one. A fragment whose status is 'blank' was lost and is being rebuilt (no content); "
            + "'reconstructed' is an approximate rebuild with a confidence: never treat either as the original text."
        if !namespace.isDefault {
            text += " This memory is the namespace '\(namespace.name)' of the store: every tool reads and writes only there, "
                + "and ids (and links) are the namespace's own."
        }
        return text
    }

    /// Serves until standard input ends.
    public func run(logger: Logger) async throws {
        let server = Server(
            name: "carma", version: self.version, title: "CARMA fragment store",
            instructions: Self.instructions(namespace: self.toolbox.namespace),
            capabilities: .init(tools: .init(listChanged: false)))
        let toolbox = self.toolbox
        let offered = toolbox.tools
        await server.withMethodHandler(ListTools.self) { _ in
            ListTools.Result(tools: Self.tools(offered))
        }
        await server.withMethodHandler(CallTool.self) { parameters in
            guard let tool = CarmaTool(rawValue: parameters.name), offered.contains(tool) else {
                throw MCPError.invalidParams("Unknown tool '\(parameters.name)'; the tools are \(offered.map(\.rawValue).joined(separator: ", "))")
            }
            let arguments = JSONObject((parameters.arguments ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) })
            return Self.callResult(await toolbox.call(tool, arguments: arguments))
        }
        try await server.start(transport: CheckedTransport(StdioTransport(logger: logger), logger: logger))
        await server.waitUntilCompleted()
        await server.stop()
    }
}
