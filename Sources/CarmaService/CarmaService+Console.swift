import MicroHTTP

/// The web console: static assets (ConsoleAssets.swift, generated from Sources/CarmaService/Console
/// by scripts/embed-console.py) served at `/ui`. They hold no data, so they need no token even with
/// `--protect-reads`; the page itself calls the public API with the token the user gives it.
extension CarmaService {
    /// Sent with every console response: the page runs only its own script and style files and
    /// talks only to this origin, and no other site can frame it.
    static let consoleSecurityHeaders: [(String, String)] = [
        ("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]

    func addConsoleRoutes(to router: inout Router) {
        let index = Self.consoleResponse(ConsoleAssets.index)
        var assets: [String: HTTPResponse] = [:]
        for asset in ConsoleAssets.files {
            assets[asset.name] = Self.consoleResponse(asset)
        }
        let notFound = Self.withConsoleHeaders(
            .problem(404, type: "not-found", title: "Not found", detail: "no such console asset"))
        let redirect = Self.withConsoleHeaders(HTTPResponse(status: 303, headers: ["Location": "/ui"]))
        router.add(.get, "/") { _ in .response(redirect) }
        router.add(.get, "/ui") { _ in .response(index) }
        let served = assets
        router.add(.get, "/ui/{asset}") { request in
            .response(request.pathParameters["asset"].flatMap { served[$0] } ?? notFound)
        }
    }

    private static func consoleResponse(_ asset: ConsoleAssets.Asset) -> HTTPResponse {
        withConsoleHeaders(HTTPResponse(
            status: 200, headers: ["Content-Type": asset.contentType, "Cache-Control": "no-cache"], body: Array(asset.body.utf8)))
    }

    private static func withConsoleHeaders(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        for (name, value) in consoleSecurityHeaders {
            response.headers.set(name, value)
        }
        return response
    }
}
