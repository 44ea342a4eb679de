import CarmaJSON
import Dispatch
import FragmentCore
import MicroHTTP

// Namespaces: the namespace of a request, the namespace resources (GET/PUT/DELETE
// /namespaces/{ns}, GET /namespaces), their tokens, and batch writes (POST …/fragments).

extension CarmaService {
    /// The namespace a request is about (the preflight checked its name): `{ns}`, or `default`.
    func namespace(of request: HTTPRequest) -> String {
        request.pathParameters["ns"] ?? Namespace.default
    }

    /// The path of a fragment's key, as a `Location`.
    static func path(of key: String) -> String {
        let (namespace, id) = FragmentKey.split(key)
        return namespace == Namespace.default ? "/fragments/\(id)" : "/namespaces/\(namespace)/fragments/\(id)"
    }

    /// Creates the namespace of an admin's write if it does not exist yet (the preflight let only an
    /// admin's write through to an unknown namespace).
    func ensureNamespace(_ name: String) throws(HTTPError) {
        guard self.store.namespaces.entry(name) == nil else { return }
        do {
            _ = try self.store.namespaces.create(name, quota: nil)
        } catch {
            throw HTTPError(.problem(for: error))
        }
    }

    func addNamespaceRoutes(to router: inout Router) {
        let auth = self.authorization
        let admin = auth.preflight(.admin, namespaced: false)
        let reader = auth.preflight(.read, namespaced: true)
        router.add(.get, "/namespaces", preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.listNamespaces(request) })
        router.add(.get, "/namespaces/{ns}", preflight: reader, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.describeNamespace(request) })
        router.add(.put, "/namespaces/{ns}", body: .optionalJSON, preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.putNamespace(request) })
        router.add(.delete, "/namespaces/{ns}", preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.deleteNamespace(request) })
        router.add(.post, "/namespaces/{ns}/tokens", body: .json, preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.createToken(request) })
        router.add(.get, "/namespaces/{ns}/tokens", preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.listTokens(request) })
        router.add(.delete, "/namespaces/{ns}/tokens/{token}", preflight: admin, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.revokeToken(request) })
    }

    // MARK: The namespace resources

    /// The `{ns}` of an admin route: a valid name (existence is the handler's business).
    private func namespaceName(_ request: HTTPRequest) throws(HTTPError) -> String {
        let name = request.pathParameters["ns"] ?? ""
        if let reason = Namespace.validate(name) {
            throw HTTPError(.badRequest("invalid-namespace", "Invalid namespace", detail: reason))
        }
        return name
    }

    private func existing(_ request: HTTPRequest) throws(HTTPError) -> NamespaceEntry {
        guard let entry = self.store.namespaces.entry(try self.namespaceName(request)) else { throw HTTPError(.namespaceNotFound) }
        return entry
    }

    private func describe(_ entry: NamespaceEntry, usage: NamespaceUsage) -> JSONValue {
        [
            "name": .string(entry.name), "fragments": .exact(Int64(usage.fragments)), "bytes": .exact(usage.bytes),
            "quota": entry.quota.json, "created_at": .string(entry.createdAt.rfc3339),
        ]
    }

    func listNamespaces(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let limit = try request.integer("limit", in: 1...1000, default: 100)
        let cursor = request.queryValue("cursor")
        if let cursor, Namespace.validate(cursor) != nil {
            return .response(.badRequest("invalid-query", "Invalid query", detail: "cursor is not one this server issued"))
        }
        do throws(StoreError) {
            let entries = try self.store.namespaces.entries(after: cursor, limit: limit + 1)
            let usage = self.store.usage()
            let page = entries.prefix(limit)
            return .response(.json(200, [
                "namespaces": .array(page.map { ["name": .string($0.name), "fragments": .exact(Int64(usage[$0.name]?.fragments ?? 0)), "bytes": .exact(usage[$0.name]?.bytes ?? 0)] }),
                "next_cursor": entries.count > limit ? .string(page.last!.name) : .null,
            ]))
        } catch {
            return .response(.problem(for: error))
        }
    }

    func describeNamespace(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let entry = try self.existing(request)
        return .response(.json(200, self.describe(entry, usage: self.store.usage(of: entry.name))))
    }

    func putNamespace(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let name = try self.namespaceName(request)
        var quota: NamespaceQuota?
        if !request.body.isEmpty {
            let value = try request.jsonBody(maxDepth: 4)
            guard let object = value.objectValue else { throw Self.invalidNamespace("the body must be a JSON object") }
            for key in object.keys where key != "quota" { throw Self.invalidNamespace("unknown field '\(key)'") }
            if object["quota"] == .null {
                quota = NamespaceQuota.none
            } else if let raw = object["quota"] {
                guard let members = raw.objectValue else { throw Self.invalidNamespace("quota is an object with fragments and bytes") }
                var parsed = NamespaceQuota()
                for (key, value) in members {
                    guard value == .null || (value.exactInteger ?? -1) >= 0 else {
                        throw Self.invalidNamespace("quota.\(key) is a whole number of at least 0, or null for no limit")
                    }
                    switch key {
                    case "fragments": parsed.fragments = value.exactInteger.map { Int($0) }
                    case "bytes": parsed.bytes = value.exactInteger
                    default: throw Self.invalidNamespace("unknown quota '\(key)'")
                    }
                }
                quota = parsed
            }
        }
        do throws(StoreError) {
            // Without a quota in the body an existing namespace is left as it is.
            let (entry, created) = try self.store.namespaces.create(name, quota: quota)
            return .response(.json(created ? 201 : 200, self.describe(entry, usage: self.store.usage(of: name))))
        } catch {
            return .response(.problem(for: error))
        }
    }

    private static func invalidNamespace(_ detail: String) -> HTTPError {
        HTTPError(.badRequest("invalid-namespace", "Invalid namespace settings", detail: detail))
    }

    func deleteNamespace(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let name = try self.namespaceName(request)
        if name == Namespace.default {
            throw HTTPError(.badRequest("invalid-namespace", "Invalid namespace", detail: "the namespace default cannot be deleted"))
        }
        let store = self.store
        return .deferred { complete in
            store.deleteNamespace(name) { result in
                switch result {
                case .success(let deleted): complete(.json(200, ["name": .string(name), "deleted": .exact(Int64(deleted))]))
                case .failure(let error): complete(.problem(for: error))
                }
            }
        }
    }

    // MARK: Tokens

    private func requireAuth() throws(HTTPError) {
        guard self.authorization.enabled else {
            throw HTTPError(.problem(
                409, type: "auth-disabled", title: "Authentication is off",
                detail: "namespace tokens need an admin token: start carmad with --auth-token-file"))
        }
    }

    func createToken(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        try self.requireAuth()
        let entry = try self.existing(request)
        let value = try request.jsonBody(maxDepth: 4)
        guard let object = value.objectValue, let raw = object["scope"]?.stringValue, let scope = TokenScope(rawValue: raw) else {
            throw HTTPError(.badRequest("invalid-token-request", "Invalid token request", detail: "send {\"scope\": \"read\"} or {\"scope\": \"write\"}"))
        }
        for key in object.keys where key != "scope" {
            throw HTTPError(.badRequest("invalid-token-request", "Invalid token request", detail: "unknown field '\(key)'"))
        }
        let (record, token) = Authorization.issue(namespace: entry.name, scope: scope)
        do throws(StoreError) {
            try self.store.namespaces.addToken(record)
        } catch {
            return .response(.problem(for: error))
        }
        return .response(.json(201, [
            "id": .string(record.id), "token": .string(token), "scope": .string(scope.rawValue), "namespace": .string(entry.name),
            "created_at": .string(record.createdAt.rfc3339),
        ], headers: ["Cache-Control": "no-store"]))
    }

    func listTokens(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        try self.requireAuth()
        let entry = try self.existing(request)
        do throws(StoreError) {
            let tokens = try self.store.namespaces.tokens(of: entry.name)
            return .response(.json(200, [
                "tokens": .array(tokens.map { ["id": .string($0.id), "scope": .string($0.scope.rawValue), "created_at": .string($0.createdAt.rfc3339)] })
            ]))
        } catch {
            return .response(.problem(for: error))
        }
    }

    func revokeToken(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        try self.requireAuth()
        let entry = try self.existing(request)
        let id = request.pathParameters["token"] ?? ""
        do throws(StoreError) {
            guard try self.store.namespaces.revokeToken(id, of: entry.name) else {
                return .response(.problem(404, type: "token-not-found", title: "Token not found", detail: "no token '\(id.prefix(64))' in this namespace"))
            }
            return .response(HTTPResponse(status: 204))
        } catch {
            return .response(.problem(for: error))
        }
    }
}
