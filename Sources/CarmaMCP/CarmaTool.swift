import CarmaJSON

/// The tools `carma mcp` offers an agent: its memory as remember, recall, get, forget, list, and the
/// dream engine as dream and status.
public enum CarmaTool: String, CaseIterable, Sendable {
    case remember
    case recall
    case get
    case forget
    case list
    case dream
    case status

    /// What the host shows the model: when to use the tool and what it returns.
    public var summary: String {
        switch self {
        case .remember:
            return "Store a memory fragment (text, with optional links to related fragments, tags and metadata). "
                + "Without an id a new one is made; with an existing id the fragment is replaced. Returns the id and version."
        case .recall:
            return "Find the stored fragments most relevant to a question or some words, best first. "
                + "Each hit says its status: 'ok' is the stored text, 'reconstructed' is an approximate rebuild (see confidence), "
                + "'blank' means the content was lost and is being rebuilt (no content given)."
        case .get:
            return "Read one fragment by id. A lost fragment comes back as a flagged blank (status 'blank', rebuild_needed true, no content); "
                + "a rebuilt one as status 'reconstructed' with its confidence: treat both as not the original words."
        case .forget:
            return "Delete a fragment on purpose. It will not be rebuilt and reads as unknown afterwards."
        case .list:
            return "List stored fragments (without their content), optionally only those with a status or a tag; page with the cursor returned."
        case .dream:
            return "Start a dream cycle now: the store repairs lost fragments (exactly from its redundancy copy, or approximately from related fragments) "
                + "and verifies stored data. With wait true, returns the cycle's report when it finishes."
        case .status:
            return "The dream scheduler's state and repair queue (next cycle, queue depth, ETA), or, given a cycle number, that cycle's report."
        }
    }

    /// Whether the tool works on fragments, which live in a namespace (`dream` and `status` work on
    /// the whole store).
    public var isNamespaced: Bool {
        switch self {
        case .remember, .recall, .get, .forget, .list: return true
        case .dream, .status: return false
        }
    }

    /// Whether the tool changes the store (hosts may ask the user first).
    var readOnly: Bool {
        switch self {
        case .recall, .get, .list, .status: return true
        case .remember, .forget, .dream: return false
        }
    }

    /// The JSON Schema of the tool's arguments.
    public var inputSchema: JSONValue {
        switch self {
        case .remember:
            return Self.schema(required: ["content"], [
                "id": Self.idSchema("Id of the fragment; omit to have one made. Reusing an id replaces that fragment."),
                "content": ["type": "string", "description": "The text to remember."],
                "links": ["type": "array", "items": Self.idSchema("Id of a related fragment."), "description": "Ids of related fragments (its context)."],
                "tags": ["type": "array", "items": ["type": "string"], "description": "Tags, for filtering recall and list."],
                "metadata": ["type": "object", "description": "A small JSON object stored with the fragment."],
                "embedding": ["type": "array", "items": ["type": "number"], "description": "Optional vector of the text, one fixed dimension per store."],
                "if_version": ["type": "integer", "minimum": 1, "description": "Replace only if the fragment is still at this version."],
            ])
        case .recall:
            return Self.schema(required: ["text"], [
                "text": ["type": "string", "minLength": 1, "description": "A question or words to look for."],
                "k": ["type": "integer", "minimum": 1, "maximum": 100, "default": 5, "description": "How many fragments at most."],
                "tags": ["type": "array", "items": ["type": "string"], "maxItems": 16, "description": "Only fragments carrying all of these tags."],
            ])
        case .get:
            return Self.schema(required: ["id"], ["id": Self.idSchema("Id of the fragment.")])
        case .forget:
            return Self.schema(required: ["id"], [
                "id": Self.idSchema("Id of the fragment to delete."),
                "if_version": ["type": "integer", "minimum": 1, "description": "Delete only if the fragment is still at this version."],
            ])
        case .list:
            return Self.schema(required: [], [
                "status": ["type": "string", "enum": ["ok", "blank", "reconstructed"], "description": "Only fragments with this status."],
                "tag": ["type": "string", "description": "Only fragments with this tag."],
                "limit": ["type": "integer", "minimum": 1, "maximum": 1000, "default": 50, "description": "Page size."],
                "cursor": ["type": "string", "description": "next_cursor of the previous page."],
            ])
        case .dream:
            return Self.schema(required: [], [
                "wait": ["type": "boolean", "default": false, "description": "Wait for the cycle to finish (up to wait_seconds) and return its report."],
                "wait_seconds": ["type": "number", "minimum": 1, "maximum": 600, "default": 120, "description": "How long to wait at most."],
                "max_repairs": ["type": "integer", "minimum": 1, "maximum": 10_000_000, "description": "Work budget: repairs at most."],
                "max_seconds": ["type": "number", "exclusiveMinimum": 0, "maximum": 86_400, "description": "Time budget of the cycle."],
            ])
        case .status:
            return Self.schema(required: [], [
                "cycle": ["type": "integer", "minimum": 1, "description": "A cycle's number, for its report; omit for the scheduler's state."],
            ])
        }
    }

    /// The argument names the schema allows.
    var argumentNames: Set<String> {
        Set(self.inputSchema["properties"]?.objectValue?.keys ?? [])
    }

    private static func schema(required: [String], _ properties: JSONObject) -> JSONValue {
        ["type": "object", "properties": .object(properties), "required": JSONValue(required), "additionalProperties": false]
    }

    private static func idSchema(_ description: String) -> JSONValue {
        ["type": "string", "pattern": "^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}$", "description": .string(description)]
    }
}
