// libFuzzer target: what the HTTP layer does with a request target before a handler runs (Sources/MicroHTTP):
// splitting path and query, percent-decoding each query argument, matching the path against the
// service's route templates and decoding its parameters, and parsing a Content-Type. Built by
// scripts/fuzz.sh with the module's pure sources (not the libmicrohttpd daemon).
//
// The first input byte picks the method; the rest is the request target as libmicrohttpd would hand
// it over (a C string: no NUL, invalid UTF-8 replaced). Nothing may crash; a matched route's
// parameters must be non-empty and contain no '/' unless it was percent-encoded; decoding what
// PercentEncoding.encode produced must give back the original.
//
// The same bytes are also read as a request head (lines split at CRLF, the request line's last word
// the version, each other line a field split at its first colon) and given to RequestHead, the checks
// libmicrohttpd does not make (issue 28: a second, differing Content-Length smuggled a request):
// differing lengths, a repeated Host, or no Host in HTTP/1.1 must always be refused.

import MicroHTTP

let methods: [HTTPMethod] = [.get, .head, .put, .post, .delete, HTTPMethod(rawValue: "PATCH")]

/// The route templates of carmad (CarmaService.makeRouter), with handlers that do nothing.
let router: Router = {
    var router = Router()
    let ok: HTTPHandler = { _ in .response(HTTPResponse(status: 200)) }
    for (method, template) in [
        (HTTPMethod.get, "/healthz"), (.get, "/readyz"), (.get, "/metrics"), (.get, "/fragments"),
        (.put, "/fragments/{id}"), (.get, "/fragments/{id}"), (.delete, "/fragments/{id}"),
        (.get, "/fragments/{id}/history"), (.get, "/fragments/{id}/context"), (.post, "/query"),
        (.post, "/dream"), (.get, "/dream"), (.get, "/dream/{cycle}"), (.get, "/topology"),
    ] {
        router.add(method, template, handler: ok)
    }
    return router
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let method = methods[Int(bytes[0]) % methods.count]
    let rest = bytes.dropFirst()
    guard !rest.contains(0) else { return 0 }
    let target = String(decoding: rest, as: UTF8.self)
    let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    let path = String(parts[0])
    if parts.count > 1 {
        _ = PercentEncoding.decodeQuery(String(parts[1]))
    }
    switch router.resolve(method, path: path) {
    case .found(let route, let parameters):
        for field in parameters.fields where field.value.isEmpty {
            fatalError("\(route.template) matched with an empty parameter '\(field.name)'")
        }
        let rawSlashes = path.utf8.count(where: { $0 == UInt8(ascii: "/") })
        guard rawSlashes == route.template.description.utf8.count(where: { $0 == UInt8(ascii: "/") }) else {
            fatalError("\(route.template) matched a path with another number of segments: \(path)")
        }
    case .notFound, .methodNotAllowed, .malformedPath:
        break
    }
    // Every segment, decoded on its own, and the encoder's output decoded back.
    for segment in path.split(separator: "/") {
        if let decoded = PercentEncoding.decode(segment) {
            guard PercentEncoding.decode(Substring(PercentEncoding.encode(decoded))) == decoded else {
                fatalError("decode(encode(x)) != x for \(decoded)")
            }
        }
    }
    _ = MediaType(target)
    checkHead(String(decoding: bytes, as: UTF8.self))
    return 0
}

func checkHead(_ text: String) {
    let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
    guard let requestLine = lines.first else { return }
    let version = requestLine.split(separator: " ").last.map(String.init) ?? ""
    var fields: [(name: String, value: String)] = []
    for line in lines.dropFirst() {
        if line.isEmpty { break }
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields.append((String(line[..<colon]), String(line[line.index(after: colon)...].drop(while: { $0 == " " }))))
    }
    let refused = RequestHead.problem(version: version, fields: fields) != nil
    let lengths = Set(fields.filter { $0.name.lowercased() == "content-length" }.map(\.value))
    let hosts = fields.filter { $0.name.lowercased() == "host" }.count
    if lengths.count > 1 && !refused { fatalError("differing Content-Length fields accepted: \(lengths)") }
    if hosts > 1 && !refused { fatalError("\(hosts) Host fields accepted") }
    if hosts == 0 && version == "HTTP/1.1" && !refused { fatalError("an HTTP/1.1 head without Host accepted") }
    if refused, let problem = RequestHead.problem(version: version, fields: fields), problem.status != 400 || problem.headers["Connection"] != "close" {
        fatalError("a refused head must be answered 400 and closed")
    }
}
