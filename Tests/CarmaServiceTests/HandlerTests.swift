import CarmaJSON
import CarmaTesting
import Dispatch
import FragmentCore
import FragmentStore
import Logging
import MicroHTTP
import Synchronization
import Testing

@testable import CarmaService

/// A service on a temporary store, driven through its router without sockets.
final class TestService {
    let directory = TemporaryDirectory("service")
    let service: CarmaService
    let router: Router

    init(token: String? = nil, maxResponseBytes: Int = 8 << 20) throws {
        let configuration = ServiceConfiguration(server: ServerConfiguration(port: 0), authToken: token, maxResponseBytes: maxResponseBytes)
        let store = try FragmentStore(configuration: StoreConfiguration(dataDirectory: self.directory.path, cacheBytes: 1 << 20), logger: Logger(label: "test"))
        self.service = CarmaService(configuration: configuration, store: store, logger: Logger(label: "test"))
        self.router = self.service.makeRouter()
    }

    deinit {
        self.service.store.close()
        self.directory.remove()
    }

    /// Runs a request through routing, the head checks the server would make, and the handler.
    func send(_ method: HTTPMethod, _ path: String, json: JSONValue? = nil, headers: HTTPHeaders = [:]) -> HTTPResponse {
        let (pathOnly, query) = Self.split(path)
        guard case .found(let route, let parameters) = self.router.resolve(method, path: pathOnly) else {
            return HTTPResponse(status: 404)
        }
        var request = HTTPRequest(method: method, path: pathOnly, route: route.template.description, pathParameters: parameters,
                                  query: PercentEncoding.decodeQuery(query) ?? [], headers: headers, body: json?.bytes ?? [])
        if json != nil { request.headers.add("Content-Type", "application/json") }
        if let early = route.preflight?(request) { return early }
        switch route.handler(request) {
        case .response(let response):
            return response
        case .deferred(let start):
            let box = Mutex<HTTPResponse?>(nil)
            let done = DispatchSemaphore(value: 0)
            start { response in
                box.withLock { $0 = response }
                done.signal()
            }
            done.wait()
            return box.withLock { $0! }
        }
    }

    static func split(_ path: String) -> (String, String) {
        guard let mark = path.firstIndex(of: "?") else { return (path, "") }
        return (String(path[..<mark]), String(path[path.index(after: mark)...]))
    }
}

extension HTTPResponse {
    var json: JSONValue { (try? JSONParser.parse(self.body)) ?? .null }
}

@Suite("Fragment handlers")
struct HandlerTests {
    @Test("PUT validates the body and answers 400 naming the field, storing nothing")
    func validation() throws {
        let test = try TestService()
        let cases: [(JSONValue, String)] = [
            (["links": ["a"]], "content"),
            (["content": 5], "content"),
            (["content": "x", "links": "a"], "links"),
            (["content": "x", "links": [1]], "links"),
            (["content": "x", "links": ["../etc"]], "links"),
            (["content": "x", "tags": [""]], "tags"),
            (["content": "x", "metadata": [1, 2]], "metadata"),
            (["content": "x", "embedding": ["a"]], "embedding"),
            (["content": "x", "surprise": true], "surprise"),
            (["content": "x", "id": "other"], "id"),
            ([1, 2, 3], "body"),
        ]
        for (body, field) in cases {
            let response = test.send(.put, "/fragments/a", json: body)
            #expect(response.status == 400, "\(body.serialized)")
            #expect(response.json["field"]?.stringValue == field, "\(body.serialized): \(String(decoding: response.body, as: UTF8.self))")
            #expect(response.headers["Content-Type"] == "application/problem+json")
        }
        #expect(test.send(.get, "/fragments/a").status == 404)
    }

    @Test("read-only fields sent back from a GET are accepted and ignored")
    func readOnlyFieldsIgnored() throws {
        let test = try TestService()
        let first = test.send(.put, "/fragments/a", json: ["content": "one"])
        #expect(first.status == 201)
        var echoed = first.json.objectValue!
        echoed["content"] = "two"
        echoed["version"] = 999
        let second = test.send(.put, "/fragments/a", json: .object(echoed))
        #expect(second.status == 200)
        #expect(second.json["content"] == "two")
        #expect(second.json["version"]?.intValue != 999)
    }

    @Test("If-Match with a stale ETag is 412 and the fragment keeps its version")
    func optimisticConcurrency() throws {
        let test = try TestService()
        let first = test.send(.put, "/fragments/a", json: ["content": "one"])
        let etag = try #require(first.headers["ETag"])
        #expect(test.send(.put, "/fragments/a", json: ["content": "two"], headers: ["If-Match": etag]).status == 200)
        let stale = test.send(.put, "/fragments/a", json: ["content": "three"], headers: ["If-Match": etag])
        #expect(stale.status == 412)
        #expect(stale.json["current_version"] != nil)
        #expect(test.send(.get, "/fragments/a").json["content"] == "two")
        #expect(test.send(.put, "/fragments/b", json: ["content": "x"], headers: ["If-None-Match": "*"]).status == 201)
        #expect(test.send(.put, "/fragments/b", json: ["content": "y"], headers: ["If-None-Match": "*"]).status == 412)
        #expect(test.send(.delete, "/fragments/b", headers: ["If-Match": "\"1\""]).status == 412)
    }

    @Test("entity tags are the version in quotes, weak for a reconstruction")
    func entityTagFormat() {
        #expect(CarmaService.etag(version: 0, status: .ok) == "\"0\"")
        #expect(CarmaService.etag(version: 42, status: .blank) == "\"42\"")
        #expect(CarmaService.etag(version: 1_234_567, status: .reconstructed) == "W/\"1234567\"")
        #expect(CarmaService.etag(version: UInt64.max, status: .reconstructed) == "W/\"\(UInt64.max)\"")
        #expect(CarmaService.entityTags(CarmaService.etag(version: UInt64.max, status: .ok)) == [UInt64.max])
    }

    @Test("a GET with the current ETag in If-None-Match is 304")
    func notModified() throws {
        let test = try TestService()
        let etag = try #require(test.send(.put, "/fragments/a", json: ["content": "one"]).headers["ETag"])
        let response = test.send(.get, "/fragments/a", headers: ["If-None-Match": etag])
        #expect(response.status == 304)
        #expect(response.body.isEmpty)
    }

    @Test("listing rejects bad parameters and pages with next_cursor")
    func listing() throws {
        let test = try TestService()
        for index in 0..<5 {
            #expect(test.send(.put, "/fragments/f\(index)", json: ["content": "x"]).status == 201)
        }
        #expect(test.send(.get, "/fragments?status=weird").status == 400)
        #expect(test.send(.get, "/fragments?limit=0").status == 400)
        #expect(test.send(.get, "/fragments?limit=abc").status == 400)
        #expect(test.send(.get, "/fragments?cursor=%2F..").status == 400)
        let page = test.send(.get, "/fragments?limit=2")
        #expect(page.json["items"]?.arrayValue?.count == 2)
        let cursor = try #require(page.json["next_cursor"]?.stringValue)
        let next = test.send(.get, "/fragments?limit=10&cursor=\(cursor)")
        #expect(next.json["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["f2", "f3", "f4"])
        #expect(next.json["next_cursor"] == .null)
    }

    @Test("with a token, writes without it are 401 and change nothing; reads stay open")
    func authorization() throws {
        let test = try TestService(token: "0123456789abcdef-secret")
        let denied = test.send(.put, "/fragments/a", json: ["content": "x"])
        #expect(denied.status == 401)
        #expect(denied.headers["WWW-Authenticate"]?.hasPrefix("Bearer") == true)
        #expect(test.send(.put, "/fragments/a", json: ["content": "x"], headers: ["Authorization": "Bearer wrong"]).status == 401)
        #expect(test.send(.get, "/fragments/a").status == 404)
        #expect(test.send(.put, "/fragments/a", json: ["content": "x"], headers: ["Authorization": "Bearer 0123456789abcdef-secret"]).status == 201)
        #expect(test.send(.delete, "/fragments/a").status == 401)
        #expect(test.send(.get, "/fragments/a").status == 200)
    }

    @Test("token comparison does not stop at the first difference")
    func constantTime() {
        #expect(Authorization.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!Authorization.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!Authorization.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!Authorization.constantTimeEqual([], Array("a".utf8)))
    }

    @Test("entity tags parse in lists, weak or strong")
    func entityTags() {
        #expect(CarmaService.entityTags(#""3", W/"5" , "x", 7"#) == [3, 5])
        #expect(CarmaService.precondition(["If-Match": "*"]).matchAny)
        #expect(CarmaService.precondition(["If-None-Match": " * "]).ifNoneMatchAny)
    }
}
