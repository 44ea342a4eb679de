import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

/// Issue 28, "Hardening, second round": each defect caused for real against a running carmad (or
/// the carma CLI), asserting what the client sees.
@Suite("Hardening, second round (live)")
struct SecondHardeningLiveTests {
    /// Sends raw bytes on a fresh connection; returns every response the server sent until it
    /// closed the connection (or a second of silence), and whether it closed it.
    static func exchange(_ server: ServerProcess, _ bytes: [UInt8]) throws -> (responses: [ClientResponse], closed: Bool) {
        let connection = try server.connection(timeoutSeconds: 5)
        try connection.send(bytes)
        var responses: [ClientResponse] = []
        while connection.isOpen {
            guard let response = try? connection.readResponse() else { break }
            responses.append(response)
            if !connection.isOpen || connection.waitForClose(seconds: 1) { break }
        }
        return (responses, connection.waitForClose(seconds: 2))
    }

    @Test("a request smuggled behind Content-Length: 0 by a second Content-Length is never run: 400 and the connection closed")
    func duplicateContentLength() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        defer { _ = server.stop() }
        #expect(try server.api().put("victim", ["content": "must survive"]).status == 201)
        let hidden = "DELETE /fragments/victim HTTP/1.1\r\nHost: x\r\n\r\n"
        let smuggling = "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: \(hidden.utf8.count)\r\n\r\n\(hidden)"
        let (responses, closed) = try Self.exchange(server, Array(smuggling.utf8))
        #expect(responses.map(\.status) == [400], "before the fix: 200 then 204 (the hidden DELETE ran)")
        #expect(responses.first?.text.contains("conflicting-content-length") == true)
        #expect(closed)
        #expect(try server.api().get("victim").status == 200)
        // The same with the lengths the other way round, and on a write.
        let put = "PUT /fragments/victim HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 24\r\nContent-Length: 2\r\n\r\n{\"content\":\"overwrite\"}"
        #expect(try Self.exchange(server, Array(put.utf8)).responses.map(\.status) == [400])
        #expect(try server.api().get("victim").json()["content"] == "must survive")
    }

    @Test(
        "malformed heads get a 400 problem and a closed connection, not a 200",
        arguments: [
            ("no Host in HTTP/1.1", "GET /healthz HTTP/1.1\r\n\r\n", "missing-host"),
            ("two Host fields", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "duplicate-host"),
            ("whitespace before the colon", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Note : b\r\n\r\n", "malformed-header"),
            ("whitespace before the colon of Host", "GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n", "malformed-header"),
            // libmicrohttpd 0.9.75 drops a folded field before carmad sees it: a folded Host is a missing one.
            ("a folded Host", "GET /healthz HTTP/1.1\r\nHost:\r\n a\r\n\r\n", "missing-host"),
        ])
    func malformedHeads(_ name: String, _ head: String, _ problem: String) throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        defer { _ = server.stop() }
        let (responses, closed) = try Self.exchange(server, Array(head.utf8))
        #expect(responses.map(\.status) == [400], "\(name)")
        #expect(responses.first?.header("Content-Type") == "application/problem+json", "\(name)")
        #expect(responses.first?.text.contains("urn:carma:problem:\(problem)") == true, "\(name): \(responses.first?.text ?? "")")
        #expect(closed, "\(name)")
        // HTTP/1.0 needs no Host; a sound request is still served.
        #expect(try Self.exchange(server, Array("GET /healthz HTTP/1.0\r\n\r\n".utf8)).responses.map(\.status) == [200])
        #expect(try server.api().json("/healthz")["status"] == "ok")
    }

    @Test("a request line that is not HTTP gets a 400 where libmicrohttpd can parse it at all")
    func garbageRequestLine() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        defer { _ = server.stop() }
        #expect(try Self.exchange(server, Array("\u{1}\u{2}garbage line\r\n\r\n".utf8)).responses.map(\.status) == [400])
        #expect(try Self.exchange(server, Array("GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n".utf8)).responses.map(\.status) == [505])
        #expect(try server.api().json("/healthz")["status"] == "ok")
    }

    static let bigVersion: Int64 = 9_007_199_254_740_993  // 2^53 + 1: no double holds it

    @Test("versions past 2^53 stay exact integers: import, GET, ETag, the next PUT, listings and the export", arguments: TestBackend.allCases)
    func exactVersions(_ backend: TestBackend) throws {
        let node = try TestNode(backend, arguments: manualDreamOnly)
        defer { node.remove() }
        let api = node.api()
        let stamp = "2026-01-02T03:04:05.006Z"
        let line = #"{"id":"big","version":\#(Self.bigVersion),"content":"far ahead","created_at":"\#(stamp)","updated_at":"\#(stamp)"}"#
        let imported = try api.raw("POST", "/import", body: Array(line.utf8), headers: [("Content-Type", "application/x-ndjson")])
        #expect(imported.status == 200, "\(imported.text)")
        let read = try api.get("big")
        #expect(read.header("ETag") == "\"\(Self.bigVersion)\"")
        #expect(read.text.contains("\"version\":\(Self.bigVersion),"), "before the fix: 9007199254740992: \(read.text)")
        #expect(try read.json()["version"]?.exactInteger == Self.bigVersion)
        // Every later write, by anyone, gets an exact version above it.
        let written = try api.put("big", ["content": "written after"])
        #expect(written.header("ETag") == "\"\(Self.bigVersion + 1)\"")
        #expect(written.text.contains("\"version\":\(Self.bigVersion + 1),"), "\(written.text)")
        let other = try api.put("other", ["content": "someone else"])
        #expect(try other.json()["version"]?.exactInteger == Self.bigVersion + 2)
        #expect(other.text.contains("\"version\":\(Self.bigVersion + 2),"))
        let listing = try api.request("GET", "/fragments")
        #expect(listing.text.contains("\"version\":\(Self.bigVersion + 1)") && listing.text.contains("\"version\":\(Self.bigVersion + 2)"), "\(listing.text)")
        let export = try api.request("GET", "/export")
        #expect(export.text.contains("\"version\":\(Self.bigVersion + 1),"), "\(export.text)")
        #expect(!export.text.contains("e+"), "no version in exponent form: \(export.text)")
        // A small version prints as an integer too, never 7.0.
        #expect(try api.put("small", ["content": "x"]).text.contains("\"version\":\(Self.bigVersion + 3),"))

        // What cannot be represented exactly is refused, naming the field and the line.
        for bad in ["1e17", "9007199254740993.0", "4611686018427387904", "18446744073709551616", "1.5", "0", "-3"] {
            let body = "\n" + #"{"id":"bad","version":\#(bad),"content":"x","created_at":"\#(stamp)","updated_at":"\#(stamp)"}"#
            let refused = try api.raw("POST", "/import", body: Array(body.utf8), headers: [("Content-Type", "application/x-ndjson")])
            #expect(refused.status == 400, "version \(bad): \(refused.status)")
            let problem = try refused.json()
            #expect(problem["field"] == "version" && problem["line"] == 2, "version \(bad): \(problem.serialized)")
        }
        #expect(try api.get("bad").status == 404)
    }

    @Test("an expired fragment does not leave through /export, and a live expiry survives export and import exactly", arguments: TestBackend.allCases)
    func expiryInExports(_ backend: TestBackend) throws {
        let node = try TestNode(backend, arguments: manualDreamOnly)
        defer { node.remove() }
        let api = node.api()
        #expect(try api.put("brief", ["content": "gone soon", "ttl": 1]).status == 201)
        #expect(try api.put("timed", ["content": "kept an hour", "ttl": 3600]).status == 201)
        #expect(try api.put("plain", ["content": "kept"]).status == 201)
        usleep(1_300_000)
        #expect(try api.get("brief").status == 404)
        let export = try api.request("GET", "/export")
        #expect(export.status == 200)
        let lines = try export.text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        let ids = lines.compactMap { $0["id"]?.stringValue }
        #expect(ids == ["plain", "timed"], "before the fix (embedded) the expired 'brief' was exported too")
        #expect(lines.first?["fragments"] == 2 && lines.last?["fragments"] == 2)
        let timed = try #require(lines.first { $0["id"] == "timed" })
        #expect(timed["expires_at"]?.stringValue != nil)

        // Into a fresh node of the same backend: before the fix the whole file was refused
        // (400 unknown field 'expires_at').
        let target = try TestNode(backend, arguments: manualDreamOnly)
        defer { target.remove() }
        let imported = try target.api().raw("POST", "/import", body: export.body, headers: [("Content-Type", "application/x-ndjson")])
        #expect(imported.status == 200, "\(imported.text)")
        let original = try api.get("timed"), copy = try target.api().get("timed")
        #expect(copy.body == original.body, "byte-exact, expires_at included")
        #expect(copy.header("ETag") == original.header("ETag"))
        // The expiry still works on the copy: it is the same instant.
        #expect(try copy.json()["expires_at"] == original.json()["expires_at"])
    }

    @Test("an import of a stored version with other content is a 409 naming the line; unknown export lines are refused", arguments: TestBackend.allCases)
    func importConflicts(_ backend: TestBackend) throws {
        let node = try TestNode(backend, arguments: manualDreamOnly)
        defer { node.remove() }
        let api = node.api()
        let stamp = "2026-01-02T03:04:05.006Z"
        func line(_ id: String, _ version: Int, _ content: String) -> String {
            #"{"id":"\#(id)","version":\#(version),"content":"\#(content)","created_at":"\#(stamp)","updated_at":"\#(stamp)"}"#
        }
        func post(_ lines: [String]) throws -> ClientResponse {
            try api.raw("POST", "/import", body: Array(lines.joined(separator: "\n").utf8), headers: [("Content-Type", "application/x-ndjson")])
        }
        #expect(try post([line("a", 5, "first"), line("b", 5, "bee")]).status == 200)
        // The same again: unchanged.
        #expect(try post([line("a", 5, "first")]).json()["unchanged"] == 1)
        // Same id, same version, other content: a conflict, and nothing of the request is written.
        let conflict = try post([line("c", 9, "new one"), line("a", 5, "second")])
        #expect(conflict.status == 409, "before the fix: 200 'unchanged', the first content kept silently")
        let problem = try conflict.json()
        #expect(problem["line"] == 2 && problem["field"] == "version", "\(problem.serialized)")
        #expect(try api.get("a").json()["content"] == "first")
        #expect(try api.get("c").status == 404)
        // An export line of a kind no export writes.
        // The same within one body.
        let twice = try post([line("e", 4, "one"), line("e", 4, "two")])
        #expect(twice.status == 409)
        #expect(try twice.json()["line"] == 2)
        #expect(try api.get("e").status == 404)
        #expect(try post([line("e", 4, "one"), line("e", 4, "one")]).status == 200)
        let bogus = try post([#"{"carma_export": "bogus"}"#, line("d", 3, "dee")])
        #expect(bogus.status == 400)
        #expect(try bogus.json()["line"] == 1)
        #expect(try api.get("d").status == 404)
    }

    /// An export file of `count` fragment lines between a header and a closing line counting `closing`.
    static func exportFile(_ path: String, count: Int, closing: Int? = nil, replacing: [Int: String] = [:]) throws {
        let stamp = "2026-01-02T03:04:05.006Z"
        var lines = [#"{"carma_export":"header","format_version":1,"taken_at":"\#(stamp)","max_version":\#(count),"fragments":\#(count)}"#]
        for index in 1...count {
            lines.append(#"{"id":"f\#(index)","version":\#(index),"content":"fragment \#(index)","created_at":"\#(stamp)","updated_at":"\#(stamp)"}"#)
        }
        for (fileLine, text) in replacing { lines[fileLine - 1] = text }
        lines.append(#"{"carma_export":"end","fragments":\#(closing ?? count)}"#)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("carma import: a directory is an error (no crash); a bad line is named by its file line and nothing is written; a wrong closing count is an error")
    func importCommand() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path + "/data", extraArguments: manualDreamOnly)
        defer { _ = server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        func fragments() throws -> Int { try server.api().json("/fragments?limit=1000")["items"]?.arrayValue?.count ?? -1 }

        let folder = directory.path + "/a-directory"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let onDirectory = try ServerProcess.runCarma(["import", "--server", url, folder])
        #expect(onDirectory.status != 0 && onDirectory.status != 4, "before the fix: SIGILL (status 4)")
        #expect(onDirectory.output.contains("is a directory"), "\(onDirectory.output)")

        // Line 1,203 of the file is not JSON: found before anything is written.
        let broken = directory.path + "/broken.ndjson"
        try Self.exportFile(broken, count: 1300, replacing: [1203: #"{"id":"f1202","version": oops}"#])
        let refused = try ServerProcess.runCarma(["import", "--server", url, broken])
        #expect(refused.status != 0)
        #expect(refused.output.contains("broken.ndjson:1203:"), "before the fix: 'line 202' after 1,000 were written: \(refused.output)")
        #expect(refused.output.contains("nothing was imported"))
        #expect(try fragments() == 0)

        // A closing line that disagrees with the lines read (5 for 699): an error, nothing written.
        let miscounted = directory.path + "/miscounted.ndjson"
        try Self.exportFile(miscounted, count: 699, closing: 5)
        let counted = try ServerProcess.runCarma(["import", "--server", url, miscounted])
        #expect(counted.status != 0, "before the fix: exit 0 without a word")
        #expect(counted.output.contains("counts 5 fragments but the file has 699"), "\(counted.output)")
        #expect(try fragments() == 0)

        // A line only carmad can judge (an unknown status) at file line 1,203: named by its file line,
        // with what was written before it and that a re-run resumes.
        let late = directory.path + "/late.ndjson"
        let stamp = "2026-01-02T03:04:05.006Z"
        try Self.exportFile(late, count: 1300, replacing: [1203: #"{"id":"f1202","version":1202,"status":"weird","content":"x","created_at":"\#(stamp)","updated_at":"\#(stamp)"}"#])
        let failed = try ServerProcess.runCarma(["import", "--server", url, late])
        #expect(failed.status != 0)
        #expect(failed.output.contains("late.ndjson:1203:"), "\(failed.output)")
        #expect(failed.output.contains("1000 fragment lines before it") && failed.output.contains("a re-run resumes"), "\(failed.output)")
        #expect(try fragments() == 1000)
    }

    @Test("carmad faults where no store is: an error naming --data-dir, not 'zeroed 0 records' and exit 0")
    func faultsWithoutStore() throws {
        let directory = TemporaryDirectory("faults")
        defer { directory.remove() }
        for action in [["zero", "a"], ["flip", "a"], ["list", "a"], ["drop-segment", "1"]] {
            let run = try ServerProcess.run(["faults", "--data-dir", directory.path + "/nothing-here"] + action)
            #expect(run.status != 0, "\(action): \(run.output)")
            #expect(run.output.contains("no store at") && !run.output.contains("zeroed 0"), "\(action): \(run.output)")
        }
    }
}
