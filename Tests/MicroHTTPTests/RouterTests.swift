import Testing

@testable import MicroHTTP

@Suite("Router")
struct RouterTests {
    let router: Router = {
        var router = Router()
        let ok: HTTPHandler = { _ in .response(HTTPResponse(status: 200)) }
        router.add(.get, "/fragments", handler: ok)
        router.add(.get, "/fragments/{id}", handler: ok)
        router.add(.put, "/fragments/{id}", body: .json, handler: ok)
        router.add(.delete, "/fragments/{id}", handler: ok)
        router.add(.get, "/fragments/{id}/history", handler: ok)
        router.add(.get, "/dream/{cycle}", handler: ok)
        router.add(.get, "/dream/latest", handler: ok)
        return router
    }()

    @Test("a path parameter is captured and percent-decoded")
    func parameterDecoded() throws {
        guard case .found(let route, let parameters) = router.resolve(.get, path: "/fragments/a%20b%2Fc") else {
            Issue.record("no match")
            return
        }
        #expect(route.template.description == "/fragments/{id}")
        #expect(parameters["id"] == "a b/c")
    }

    @Test("an encoded slash stays inside its segment instead of adding one")
    func encodedSlashIsNotASeparator() {
        guard case .found(let route, _) = router.resolve(.get, path: "/fragments/..%2Fetc") else {
            Issue.record("no match")
            return
        }
        #expect(route.template.description == "/fragments/{id}")
    }

    @Test("a literal segment wins over a parameter")
    func literalBeatsParameter() {
        guard case .found(let route, _) = router.resolve(.get, path: "/dream/latest") else {
            Issue.record("no match")
            return
        }
        #expect(route.template.description == "/dream/latest")
    }

    @Test("an unknown path is not found, and so is a trailing slash")
    func unknownPath() {
        for path in ["/nope", "/fragments/", "/fragments/a/b", "", "fragments"] {
            guard case .notFound = router.resolve(.get, path: path) else {
                Issue.record("\(path) should be 404")
                continue
            }
        }
    }

    @Test("a known path with the wrong method lists the allowed methods, HEAD included")
    func methodNotAllowed() {
        guard case .methodNotAllowed(let route, let allowed) = router.resolve(.post, path: "/fragments/x") else {
            Issue.record("expected 405")
            return
        }
        #expect(route == "/fragments/{id}")
        #expect(Set(allowed.map(\.rawValue)) == ["GET", "PUT", "DELETE", "HEAD"])
    }

    @Test("HEAD is served by the GET route")
    func headUsesGet() {
        guard case .found(let route, _) = router.resolve(.head, path: "/fragments/x") else {
            Issue.record("no match")
            return
        }
        #expect(route.method == .get)
    }

    @Test("templates of every shape are told apart: segment counts and first-segment lengths")
    func shapes() {
        let cases: [(String, String?)] = [
            ("/fragments", "/fragments"), ("/fragments/x", "/fragments/{id}"), ("/fragments/x/history", "/fragments/{id}/history"),
            ("/dream/7", "/dream/{cycle}"), ("/dream/latest", "/dream/latest"), ("/fragment/x", nil), ("/fragmentsx/x", nil),
            ("/", nil), ("//", nil), ("/fragments//history", nil),
        ]
        for (path, expected) in cases {
            switch router.resolve(.get, path: path) {
            case .found(let route, _): #expect(route.template.description == expected, "\(path)")
            default: #expect(expected == nil, "\(path)")
            }
        }
    }

    @Test("raw UTF-8 in a parameter is taken as it is")
    func rawBytes() {
        guard case .found(_, let parameters) = router.resolve(.get, path: "/fragments/café") else {
            Issue.record("no match")
            return
        }
        #expect(parameters["id"] == "café")
    }

    @Test("a malformed escape in a parameter is reported, not guessed")
    func malformedEscape() {
        for path in ["/fragments/%zz", "/fragments/%4", "/fragments/%ff"] {
            guard case .malformedPath(let route) = router.resolve(.get, path: path) else {
                Issue.record("\(path) should be malformed")
                continue
            }
            #expect(route == "/fragments/{id}")
        }
    }
}

@Suite("Request parsing")
struct RequestParsingTests {
    @Test("percent-decoding handles UTF-8 and rejects invalid bytes")
    func percentDecoding() {
        #expect(PercentEncoding.decode("caf%C3%A9") == "café")
        #expect(PercentEncoding.decode("a+b") == "a+b")
        #expect(PercentEncoding.decode("a+b", plusIsSpace: true) == "a b")
        #expect(PercentEncoding.decode("%C3") == nil)
        #expect(PercentEncoding.decode("%00") == "\u{0}")
        #expect(PercentEncoding.decode("100%") == nil)
    }

    @Test("a query string splits into decoded pairs")
    func queryDecoding() throws {
        let pairs = try #require(PercentEncoding.decodeQuery("status=blank&tag=a%20b&flag&x=1+2"))
        #expect(pairs.map(\.name) == ["status", "tag", "flag", "x"])
        #expect(pairs.map(\.value) == ["blank", "a b", "", "1 2"])
        #expect(PercentEncoding.decodeQuery("a=%G1") == nil)
    }

    @Test("encoding leaves unreserved characters alone")
    func encoding() {
        #expect(PercentEncoding.encode("a-b_c.d~e") == "a-b_c.d~e")
        #expect(PercentEncoding.encode("a b/é") == "a%20b%2F%C3%A9")
    }

    @Test("header names compare case-insensitively")
    func headers() {
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        headers.add("X-A", "1")
        headers.add("x-a", "2")
        #expect(headers["content-type"] == "application/json")
        #expect(headers.values("X-a") == ["1", "2"])
        headers.set("X-A", "3")
        #expect(headers.values("x-a") == ["3"])
    }

    @Test("a media type is split into its essence and parameters")
    func mediaType() {
        let type = MediaType("Application/JSON; charset=\"UTF-8\"")
        #expect(type.essence == "application/json")
        #expect(type.parameters["charset"] == "UTF-8")
        #expect(HTTPRequest(method: .put, path: "/", headers: ["content-type": "text/plain;x=1"]).mediaType == "text/plain")
    }

    @Test("a problem response is RFC 9457 JSON with a stable type")
    func problem() {
        let response = HTTPResponse.problem(404, type: "not-found", title: "Not found", detail: "nothing here")
        #expect(response.status == 404)
        #expect(response.headers["Content-Type"] == "application/problem+json")
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text == #"{"type":"urn:carma:problem:not-found","title":"Not found","status":404,"detail":"nothing here"}"#)
    }
}
