import ArgumentParser
import CarmaClient
import CarmaMCP
import Logging

/// `carma mcp`: the Model Context Protocol server an agent host starts as a subprocess.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the store to an agent host over the Model Context Protocol (stdio).",
        discussion: """
            Speaks MCP (JSON-RPC, one message per line) on standard input and output until the host \
            closes standard input; logs go to standard error. Tools: remember, recall, get, forget, \
            list, dream, status. Every tool talks to carmad at --server over HTTP.

            With --namespace NS the memory tools work in that namespace only (/namespaces/NS/...; ids \
            are the namespace's own), with the token of --token-file (a token of NS, or the admin's); \
            dream and status, which act on the whole store, are not offered then.
            """)

    @OptionGroup var server: ServerOption
    @OptionGroup var scope: NamespaceOption

    @Option(help: "Log level on standard error: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    @Option(help: "Seconds one tool call may wait for carmad in all; past it the call answers an error result.")
    var timeout = 30

    func validate() throws {
        guard (1...3600).contains(self.timeout) else { throw ValidationError("--timeout is 1 to 3600 seconds") }
    }

    func run() async throws {
        let (host, port) = try self.server.endpoint
        var logger = Logger(label: "carma.mcp", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = self.logLevel
        let gateway = HTTPGateway(host: host, port: port, token: try self.server.bearerToken, timeoutSeconds: self.timeout)
        let toolbox = CarmaToolbox(gateway: gateway, namespace: self.scope.namespace)
        logger.info("serving MCP", metadata: ["namespace": "\(toolbox.namespace)", "tools": "\(toolbox.tools.map(\.rawValue))"])
        try await MemoryServer(toolbox: toolbox, version: "0.1.0").run(logger: logger)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
