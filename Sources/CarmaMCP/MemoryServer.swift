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

    /// The tools as MCP describes them.
    public static var tools: [Tool] {
        CarmaTool.allCases.map { tool in
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

    /// Serves until standard input ends.
    public func run(logger: Logger) async throws {
        let server = Server(
            name: "carma", version: self.version, title: "CARMA fragment store",
            instructions: "Long-term memory for the agent. remember stores a fragment, recall finds fragments by meaning and words, "
                + "get reads one, forget deletes one. A fragment whose status is 'blank' was lost and is being rebuilt (no content); "
                + "'reconstructed' is an approximate rebuild with a confidence: never treat either as the original text.",
            capabilities: .init(tools: .init(listChanged: false)))
        let toolbox = self.toolbox
        await server.withMethodHandler(ListTools.self) { _ in
            ListTools.Result(tools: Self.tools)
        }
        await server.withMethodHandler(CallTool.self) { parameters in
            guard let tool = CarmaTool(rawValue: parameters.name) else {
                throw MCPError.invalidParams("Unknown tool '\(parameters.name)'; the tools are \(CarmaTool.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let arguments = JSONObject((parameters.arguments ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) })
            return Self.callResult(await toolbox.call(tool, arguments: arguments))
        }
        try await server.start(transport: CheckedTransport(StdioTransport(logger: logger), logger: logger))
        await server.waitUntilCompleted()
        await server.stop()
    }
}
