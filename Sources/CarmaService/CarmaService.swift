import CarmaJSON
import DreamEngine
import FragmentCore
import Logging
import MicroHTTP
import Synchronization

/// The CARMA fragment store as an HTTP service: the store, the routes over it, and the server.
public final class CarmaService: Sendable {
    public let configuration: ServiceConfiguration
    public let store: any FragmentBackend
    public let engine: DreamEngine
    let foreground: Foreground
    let metrics: ServiceMetrics
    let logger: Logger
    let authorization: Authorization
    private let serverBox = Mutex<HTTPServer?>(nil)
    let ready = Atomic<Bool>(false)

    /// Serves `store` (embedded or cluster); `start` begins serving.
    public init(configuration: ServiceConfiguration, store: any FragmentBackend, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.authorization = Authorization(adminToken: configuration.authToken, protectReads: configuration.protectReads, catalog: store.namespaces)
        self.store = store
        let metrics = ServiceMetrics(database: store.kind == .cluster)
        self.metrics = metrics
        self.foreground = Foreground(onRequest: { metrics.requestFinished(route: $0, method: $1, status: $2, duration: $3) })
        self.engine = DreamEngine(
            store: self.store, configuration: configuration.dream, reconstructor: configuration.dream.reconstruction.reconstructor, foreground: self.foreground, observer: metrics,
            logger: logger)
        let server = HTTPServer(configuration: configuration.server, router: self.makeRouter(), observer: self.foreground, logger: logger)
        self.foreground.attach(server)
        self.serverBox.withLock { $0 = server }
    }

    public var server: HTTPServer {
        self.serverBox.withLock { $0! }
    }

    /// Starts listening.
    public func start() throws(HTTPServerError) {
        try self.server.start()
        self.ready.store(true, ordering: .relaxed)
        self.logger.info(
            "carmad listening",
            metadata: ["http.host": "\(self.configuration.server.host)", "http.port": "\(self.server.port ?? 0)",
                       "store.fragments": "\(self.store.stats().fragments)", "store.location": "\(self.store.location)"])
    }

    /// Stops serving (letting requests in flight finish), stops the dream engine, then closes the
    /// store. Blocks. (carmad does the same through its service group.)
    public func shutdown() {
        self.ready.store(false, ordering: .relaxed)
        self.server.shutdown()
        self.engine.stop()
        self.store.close()
    }

    func makeRouter() -> Router {
        var router = Router()
        let auth = self.authorization
        // Global routes. Open reads need no preflight (a bad token on them is not looked at).
        let globalRead = auth.enabled && self.configuration.protectReads ? auth.preflight(.read, namespaced: false) : nil
        let admin = auth.enabled ? auth.preflight(.admin, namespaced: false) : nil
        let healthy = HTTPResponse.json(200, ["status": "ok"])
        router.add(.get, "/healthz") { _ in .response(healthy) }
        router.add(.get, "/readyz") { [unowned self] _ in self.readiness() }
        router.add(.get, "/metrics", preflight: globalRead) { [unowned self] _ in
            .response(HTTPResponse(
                status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: self.metrics.exposition(store: self.store, engine: self.engine)))
        }
        router.add(.post, "/dream", body: .optionalJSON, preflight: admin) { [unowned self] in self.startDream($0) }
        router.add(.get, "/dream", preflight: globalRead) { [unowned self] _ in .response(.json(200, self.engine.status())) }
        router.add(.get, "/dream/{cycle}", preflight: globalRead) { [unowned self] in self.dreamReport($0) }

        // Routes inside a namespace: each without the prefix (the namespace default) and with it.
        let scoped: [(HTTPMethod, String, BodyPolicy, Access, @Sendable (HTTPRequest) throws(HTTPError) -> HTTPResult)] = [
            (.get, "/fragments", .none, .read, { [unowned self] request throws(HTTPError) in try self.listFragments(request) }),
            (.post, "/fragments", .json, .write, { [unowned self] request throws(HTTPError) in try self.putBatch(request) }),
            (.put, "/fragments/{id}", .json, .write, { [unowned self] request throws(HTTPError) in try self.putFragment(request) }),
            (.get, "/fragments/{id}", .none, .read, { [unowned self] request throws(HTTPError) in try self.getFragment(request) }),
            (.delete, "/fragments/{id}", .none, .write, { [unowned self] request throws(HTTPError) in try self.deleteFragment(request) }),
            (.get, "/fragments/{id}/history", .none, .read, { [unowned self] request throws(HTTPError) in try self.history(request) }),
            (.get, "/fragments/{id}/context", .none, .read, { [unowned self] request throws(HTTPError) in try self.context(request) }),
            (.post, "/query", .json, .read, { [unowned self] request throws(HTTPError) in self.query(request) }),
            (.get, "/export", .none, .read, { [unowned self] request throws(HTTPError) in self.exportFragments(request) }),
            (.post, "/import", BodyPolicy(required: true, mediaTypes: [Self.ndjson]), .write, { [unowned self] request throws(HTTPError) in try self.importFragments(request) }),
            (.get, "/topology", .none, .read, { [unowned self] request throws(HTTPError) in try self.topology(request) }),
        ]
        for (method, path, body, access, handler) in scoped {
            let preflight = auth.preflight(access, namespaced: true)
            router.add(method, path, body: body, preflight: preflight, handler: Self.answering(handler))
            router.add(method, "/namespaces/{ns}" + path, body: body, preflight: preflight, handler: Self.answering(handler))
        }
        self.addNamespaceRoutes(to: &router)
        self.addConsoleRoutes(to: &router)
        return router
    }

    /// A handler for the router from one that throws its 4xx answer: the request's own faults (a bad
    /// id, a bad query argument) are thrown where they are found instead of caught in every handler.
    static func answering(_ handler: @escaping @Sendable (HTTPRequest) throws(HTTPError) -> HTTPResult) -> HTTPHandler {
        { request in
            do throws(HTTPError) {
                return try handler(request)
            } catch {
                return .response(error.response)
            }
        }
    }

    private func readiness() -> HTTPResult {
        guard self.ready.load(ordering: .relaxed) else {
            return .response(.problem(503, type: "not-ready", title: "Not ready", detail: "starting or shutting down", headers: ["Retry-After": "5"]))
        }
        guard self.store.backendAvailable else {
            return .response(.problem(
                503, type: "not-ready", title: "Not ready", detail: "the database does not answer; reads are served from this node's cache or as blanks",
                headers: ["Retry-After": "5"]))
        }
        let stats = self.store.stats()
        let meaning = self.store.meaningStatus
        // Ready either way; `retrieval` says what queries can use (words only without a model).
        // `partial` while some fragments are not yet searchable by meaning (or words): queries work,
        // but may miss them.
        let state = !self.store.textIndexReady || (meaning.model != nil && meaning.backlog > 0) ? "partial" : meaning.model == nil ? "text_only" : "ready"
        let retrieval: JSONValue = [
            "state": .string(state),
            "text_index_ready": .bool(self.store.textIndexReady),
            "embedding_model": meaning.model.map(JSONValue.string) ?? .null,
            "signals": .array((meaning.model == nil ? ["text", "client_vector"] : ["text", "meaning", "client_vector"]).map(JSONValue.string)),
            "embedded": .number(Double(meaning.embedded)),
            "embedding_backlog": .number(Double(meaning.backlog)),
            "embedding_replacing": meaning.replacing.map(JSONValue.string) ?? .null,
            "vector_index": .array(self.store.vectorIndexStatus.map { graph in
                ["kind": .string(graph.kind.rawValue), "state": .string(graph.state.rawValue), "vectors": .number(Double(graph.vectors))]
            }),
        ]
        return .response(.json(200, [
            "status": "ready", "fragments": .number(Double(stats.fragments)), "pending_writes": .number(Double(stats.pendingOperations)),
            "retrieval": retrieval,
        ]))
    }
}
