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
    let authorization: Authorization?
    private let serverBox = Mutex<HTTPServer?>(nil)
    let ready = Atomic<Bool>(false)

    /// Serves `store` (embedded or cluster); `start` begins serving.
    public init(configuration: ServiceConfiguration, store: any FragmentBackend, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.authorization = configuration.authToken.map(Authorization.init(token:))
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
        let write = self.authorization?.preflight
        let read = self.configuration.protectReads ? write : nil
        let healthy = HTTPResponse.json(200, ["status": "ok"])
        router.add(.get, "/healthz") { _ in .response(healthy) }
        router.add(.get, "/readyz") { [unowned self] _ in self.readiness() }
        router.add(.get, "/metrics", preflight: read) { [unowned self] _ in
            .response(HTTPResponse(
                status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: self.metrics.exposition(store: self.store, engine: self.engine)))
        }
        router.add(.get, "/fragments", preflight: read, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.listFragments(request) })
        router.add(.put, "/fragments/{id}", body: .json, preflight: write, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.putFragment(request) })
        router.add(.get, "/fragments/{id}", preflight: read, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.getFragment(request) })
        router.add(.delete, "/fragments/{id}", preflight: write, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.deleteFragment(request) })
        router.add(.get, "/fragments/{id}/history", preflight: read, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.history(request) })
        router.add(.get, "/fragments/{id}/context", preflight: read, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.context(request) })
        router.add(.post, "/query", body: .json, preflight: read) { [unowned self] in self.query($0) }
        router.add(.post, "/dream", body: .optionalJSON, preflight: write) { [unowned self] in self.startDream($0) }
        router.add(.get, "/dream", preflight: read) { [unowned self] _ in .response(.json(200, self.engine.status())) }
        router.add(.get, "/dream/{cycle}", preflight: read) { [unowned self] in self.dreamReport($0) }
        router.add(.get, "/export", preflight: read) { [unowned self] in self.exportFragments($0) }
        router.add(
            .post, "/import", body: BodyPolicy(required: true, mediaTypes: [Self.ndjson]), preflight: write,
            handler: Self.answering { [unowned self] request throws(HTTPError) in try self.importFragments(request) })
        router.add(.get, "/topology", preflight: read, handler: Self.answering { [unowned self] request throws(HTTPError) in try self.topology(request) })
        self.addConsoleRoutes(to: &router)
        return router
    }

    /// A handler for the router from one that throws its 4xx answer: the request's own faults (a bad
    /// id, a bad query argument) are thrown where they are found instead of caught in every handler.
    private static func answering(_ handler: @escaping @Sendable (HTTPRequest) throws(HTTPError) -> HTTPResult) -> HTTPHandler {
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
