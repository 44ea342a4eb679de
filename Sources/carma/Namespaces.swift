import ArgumentParser
import CarmaClient
import CarmaJSON
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `carma namespaces`: the admin's calls on namespaces and their tokens. Everything here but
/// `show` needs the admin token (carmad's --auth-token-file) when carmad has auth.
struct Namespaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespaces",
        abstract: "List, create (with quotas), show and delete namespaces, and make or revoke their tokens (admin).",
        discussion: """
            A namespace's fragments are reached with --namespace NS on put, get, delete, list, history, \
            query, export, import, load and mcp. The namespace 'default' is the unprefixed routes.
            """,
        subcommands: [ListNamespaces.self, ShowNamespace.self, CreateNamespace.self, DeleteNamespace.self, NamespaceTokens.self])
}

/// A namespace named on the command line, checked like --namespace (exit 2 when invalid).
struct NamespaceArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The namespace.", valueName: "namespace"))
    var name: String

    var namespace: CarmaNamespace {
        // validate() ran before run(): the name is valid.
        (try? CarmaNamespace(self.name)) ?? .default
    }

    func validate() throws {
        do {
            _ = try CarmaNamespace(self.name)
        } catch {
            throw usageFailure("\(error)")
        }
    }
}

struct ListNamespaces: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Namespaces by name, with their fragment count and bytes.")
    @OptionGroup var server: ServerOption
    @Option(help: "Namespaces per page.") var limit = 100
    @Option(help: "next_cursor of the previous page.") var cursor: String?
    @Flag(help: "Follow next_cursor to the end and print every namespace.") var all = false

    func validate() throws {
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit is 1 to 10000") }
    }

    func run() throws {
        let api = try self.server.api()
        guard self.all else {
            try show(try api.request("GET", Self.page(limit: self.limit, cursor: self.cursor)))
            return
        }
        var namespaces: [JSONValue] = []
        var cursor = self.cursor
        repeat {
            let response = try api.request("GET", Self.page(limit: self.limit, cursor: cursor))
            guard response.status == 200 else { return try show(response) }
            let page = try response.json()
            namespaces += page["namespaces"]?.arrayValue ?? []
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil
        print(Pretty.print(["namespaces": .array(namespaces), "next_cursor": .null]))
    }

    static func page(limit: Int, cursor: String?) -> String {
        var path = "/namespaces?limit=\(limit)"
        if let cursor { path += "&cursor=" + List.encode(cursor) }
        return path
    }
}

struct ShowNamespace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A namespace's fragments, bytes, quota and creation time (the admin token or one of the namespace's).")
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument

    func run() throws {
        try show(try self.server.api().request("GET", self.target.namespace.resource()))
    }
}

/// A quota given on the command line: a number, or `none` for no limit.
enum QuotaLimit: ExpressibleByArgument, Equatable {
    case limit(Int)
    case unlimited

    init?(argument: String) {
        if argument == "none" {
            self = .unlimited
        } else if let number = Int(argument), number >= 0 {
            self = .limit(number)
        } else {
            return nil
        }
    }

    var json: JSONValue {
        switch self {
        case .limit(let number): return .exact(Int64(number))
        case .unlimited: return .null
        }
    }
}

struct CreateNamespace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a namespace (201), or set the quotas of an existing one (200).",
        discussion: """
            'none' removes a limit. carmad takes a quota as a whole, so when only one of the two is \
            given, the other is read from the namespace first and sent as it is (kept).
            """,
        aliases: ["set"])
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument
    @Option(help: ArgumentHelp("Most fragments the namespace may hold, or 'none'.", valueName: "count|none")) var maxFragments: QuotaLimit?
    @Option(help: ArgumentHelp("Most bytes of content the namespace may hold, or 'none'.", valueName: "bytes|none")) var maxBytes: QuotaLimit?

    /// The request body: none without quotas (an existing namespace is left as it is), else both
    /// limits: those given, and for one not given `current`'s (the namespace's quota now, if any).
    func body(current: JSONValue?) -> JSONValue? {
        guard self.maxFragments != nil || self.maxBytes != nil else { return nil }
        var quota = JSONObject()
        quota["fragments"] = self.maxFragments?.json ?? current?["fragments"] ?? .null
        quota["bytes"] = self.maxBytes?.json ?? current?["bytes"] ?? .null
        return ["quota": .object(quota)]
    }

    func run() throws {
        let api = try self.server.api()
        var current: JSONValue?
        if (self.maxFragments == nil) != (self.maxBytes == nil) {
            // Only one limit given: keep the other (a 404 is a namespace still to be made).
            let existing = try api.request("GET", self.target.namespace.resource())
            if existing.status == 200 {
                current = try existing.json()["quota"]
            } else if existing.status != 404 {
                return try show(existing)
            }
        }
        try show(try api.request("PUT", self.target.namespace.resource(), json: self.body(current: current)))
    }
}

struct DeleteNamespace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a namespace: every fragment tombstoned, its tokens revoked ('default' cannot be deleted).")
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument
    @Flag(help: "Yes, delete it and every fragment in it.") var yes = false

    func validate() throws {
        guard self.yes else {
            throw usageFailure("deleting namespace '\(self.target.name)' tombstones every fragment in it and revokes its tokens: add --yes")
        }
    }

    func run() throws {
        try show(try self.server.api().request("DELETE", self.target.namespace.resource()))
    }
}

struct NamespaceTokens: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "A namespace's tokens: create (the secret is shown once), list, revoke (admin).",
        subcommands: [CreateToken.self, ListTokens.self, RevokeToken.self])
}

struct CreateToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a token of the namespace; it works on that namespace's routes only.",
        discussion: """
            carmad shows the secret once and keeps only its hash. With --out the secret goes to a new \
            file (mode 0600) for --token-file and is not printed; without it, it is printed on \
            standard output.
            """)
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument
    @Option(help: "read, or write (which includes read).") var scope = "write"
    @Option(help: "Write the secret to this new file (mode 0600) instead of printing it.") var out: String?

    func validate() throws {
        guard ["read", "write"].contains(self.scope) else { throw usageFailure("--scope is read or write") }
        if let out = self.out, FileManager.default.fileExists(atPath: out) {
            throw usageFailure("\(out) exists: --out writes a new file only")
        }
    }

    func run() throws {
        let response = try self.server.api().request("POST", self.target.namespace.resource("/tokens"), json: ["scope": .string(self.scope)])
        guard response.status == 201, let out = self.out else { return try show(response) }
        var answer = try response.json().objectValue ?? [:]
        guard let secret = answer["token"]?.stringValue else { return try show(response) }
        do {
            try Self.writeSecret(secret + "\n", to: out)
        } catch {
            // The secret exists on carmad now: give it to the caller rather than lose it.
            FileHandle.standardError.write(Data("cannot write \(out) (\(error)); the token is printed instead\n".utf8))
            return try show(response)
        }
        answer["token"] = nil
        answer["token_file"] = .string(out)
        print(Pretty.print(.object(answer)))
    }

    /// Writes `text` to a file that must not exist yet, readable by its owner only from the start.
    static func writeSecret(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError(String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                unlink(path)
                throw ValidationError(reason)
            }
            offset += written
        }
    }
}

struct ListTokens: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The namespace's tokens: id, scope, created_at (never the secrets).")
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument

    func run() throws {
        try show(try self.server.api().request("GET", self.target.namespace.resource("/tokens")))
    }
}

struct RevokeToken: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token of the namespace at once.")
    @OptionGroup var server: ServerOption
    @OptionGroup var target: NamespaceArgument
    @Argument(help: "The token's id (tok_...), from 'token list' or 'token create'.") var id: String

    func validate() throws {
        guard CarmaNamespace.validate(self.id) == nil else { throw usageFailure("'\(self.id)' is not a token id") }
    }

    func run() throws {
        let response = try self.server.api().request("DELETE", self.target.namespace.resource("/tokens/\(self.id)"))
        if response.status == 204 {
            print("revoked \(self.id)")
            return
        }
        try show(response)
    }
}
