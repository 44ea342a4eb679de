import CarmaClient
import CarmaJSON

/// What a tool call answers, before it is put in MCP's shape: text for the model, the same facts
/// as JSON, and whether it is an error result.
public struct ToolResult: Sendable, Equatable {
    public var text: String
    public var structured: JSONValue
    public var isError: Bool

    init(text: String, structured: JSONValue, isError: Bool = false) {
        self.text = text
        self.structured = structured
        self.isError = isError
    }

    /// Arguments that do not fit the schema.
    static func invalid(_ error: ToolInputError) -> ToolResult {
        ToolResult(
            text: "Invalid arguments: \(error.message).",
            structured: ["type": "invalid-arguments", "title": "Invalid arguments", "field": .string(error.field), "detail": .string(error.message)],
            isError: true)
    }

    /// A tool this server does not offer in its namespace (a host calling one it was not listed).
    static func notOffered(_ tool: CarmaTool, in namespace: CarmaNamespace, offered: [CarmaTool]) -> ToolResult {
        let detail = "'\(tool.rawValue)' acts on the whole store, not on namespace '\(namespace.name)'; the tools here are "
            + offered.map(\.rawValue).joined(separator: ", ")
        return ToolResult(
            text: "Tool not available: \(detail).",
            structured: ["type": "tool-not-available", "title": "Tool not available", "detail": .string(detail)],
            isError: true)
    }

    /// carmad could not be reached or answered something unreadable.
    static func unreachable(_ message: String) -> ToolResult {
        ToolResult(
            text: "Cannot reach the CARMA store: \(message).",
            structured: ["type": "unreachable", "title": "Store unreachable", "detail": .string(message)],
            isError: true)
    }

    /// A 4xx or 5xx from carmad: its problem document's title and detail (RFC 9457).
    static func problem(status: Int, body: JSONValue?, fallback: String) -> ToolResult {
        let object = body?.objectValue ?? [:]
        let title = object["title"]?.stringValue ?? "HTTP \(status)"
        let detail = object["detail"]?.stringValue ?? fallback
        var structured = object
        structured["status"] = .number(Double(status))
        if structured["title"] == nil { structured["title"] = .string(title) }
        if structured["detail"] == nil { structured["detail"] = .string(detail) }
        var text = "\(title) (HTTP \(status)): \(detail)"
        if let retry = object["retry_after"]?.intValue { text += " Retry in \(retry) s." }
        return ToolResult(text: text, structured: .object(structured), isError: true)
    }
}
