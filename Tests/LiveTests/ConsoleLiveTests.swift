import CarmaClient
import CarmaTesting
import Foundation
import Testing

/// The web console's files as carmad serves them: the right types, the security headers, the very
/// bytes of Sources/CarmaService/Console (so ConsoleAssets.swift was regenerated), and open to
/// anyone even with --protect-reads (they hold no data). The page itself is tested in a real
/// browser by Tests/Console/test_console.py.
@Suite("Console (live)")
struct ConsoleLiveTests {
    static let securityHeaders = [
        "Content-Security-Policy":
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    ]

    static let assets = [
        (path: "/ui", file: "index.html", type: "text/html; charset=utf-8"),
        (path: "/ui/app.js", file: "app.js", type: "text/javascript; charset=utf-8"),
        (path: "/ui/app.css", file: "app.css", type: "text/css; charset=utf-8"),
    ]

    func expectSecurityHeaders(_ response: ClientResponse, _ path: String) {
        for (name, value) in Self.securityHeaders {
            #expect(response.header(name) == value, "\(name) on \(path)")
        }
    }

    @Test("GET / redirects to /ui; the console's files answer with their type, the security headers and the files' bytes; an unknown asset is 404")
    func consoleFiles() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let tokenFile = directory.path + ".token"
        try "console-token-0123456789\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        // --protect-reads: data needs the token, the console's files do not.
        let server = try ServerProcess(
            dataDirectory: directory.path, extraArguments: ["--auth-token-file", tokenFile, "--protect-reads"] + manualDreamOnly)
        let api = server.api()
        #expect(try api.request("GET", "/fragments").status == 401)

        let root = try api.request("GET", "/")
        #expect([302, 303].contains(root.status))
        #expect(root.header("Location") == "/ui")

        for asset in Self.assets {
            let response = try api.request("GET", asset.path)
            #expect(response.status == 200, "\(asset.path)")
            #expect(response.header("Content-Type") == asset.type, "\(asset.path)")
            self.expectSecurityHeaders(response, asset.path)
            let file = try String(contentsOfFile: Repository.root + "/Sources/CarmaService/Console/" + asset.file, encoding: .utf8)
            #expect(response.text == file, "\(asset.path) differs from its file: run scripts/embed-console.py")
            #expect(try api.request("HEAD", asset.path).status == 200)
        }

        let missing = try api.request("GET", "/ui/secrets.json")
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/problem+json")
        #expect(try api.request("GET", "/ui/..%2Fapp.js").status == 404)
        #expect(try api.request("POST", "/ui").status == 405)
    }

    @Test("the page has no inline script or style: scripts and styles come from their own files only")
    func noInlineCode() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        let html = try server.api().request("GET", "/ui").text
        let scripts = html.components(separatedBy: "<script").dropFirst()
        #expect(scripts.count == 1)
        for script in scripts {
            #expect(script.hasPrefix(" src=\"/ui/app.js\""), "\(script.prefix(80))")
            #expect(script.drop(while: { $0 != ">" }).dropFirst().hasPrefix("</script>"), "a script element with a body")
        }
        #expect(!html.contains("<style"))
        #expect(!html.contains("style="))
        #expect(html.range(of: #"\son[a-z]+="#, options: .regularExpression) == nil, "an inline event handler")
        #expect(html.contains("<link rel=\"stylesheet\" href=\"/ui/app.css\">"))
        // The script never writes data as HTML.
        let script = try server.api().request("GET", "/ui/app.js").text
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            #expect(!script.contains(sink), "app.js uses \(sink)")
        }
    }
}
