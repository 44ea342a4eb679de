import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

/// The HTTP foundation, spoken to over real sockets.
@Suite("HTTP foundation (live)")
struct FoundationLiveTests {
    @Test("many requests travel on one keep-alive connection")
    func keepAlive() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        let connection = try server.connection()
        for _ in 0..<500 {
            let response = try connection.request("GET", "/healthz")
            #expect(response.status == 200)
            #expect(response.header("Connection")?.lowercased() != "close")
        }
        #expect(connection.isOpen)
        #expect(try connection.request("GET", "/readyz").status == 200)
        #expect(server.stop() == 0)
    }

    @Test("unknown paths answer 404 and wrong methods 405 with Allow, as problem documents")
    func notFoundAndMethodNotAllowed() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        let connection = try server.connection()
        let missing = try connection.request("GET", "/nope")
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/problem+json")
        #expect(try missing.json()["status"] == 404)
        let wrong = try connection.request("POST", "/fragments/x")
        #expect(wrong.status == 405)
        #expect(Set((wrong.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) == ["GET", "PUT", "DELETE", "HEAD"])
        #expect(try wrong.json()["type"]?.stringValue?.hasPrefix("urn:carma:problem:") == true)
        // Both kept the connection usable.
        #expect(try connection.request("GET", "/healthz").status == 200)
    }

    @Test("an oversized Content-Length is answered 413 at once, before any body is sent")
    func oversizedBody() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--max-body-bytes", "4096"])
        let connection = try server.connection(timeoutSeconds: 5)
        let started = Date()
        try connection.send(Array("PUT /fragments/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n".utf8))
        let response = try connection.readResponse()
        #expect(response.status == 413)
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(try response.json()["max_body_bytes"] == 4096)
        #expect(connection.waitForClose(seconds: 3), "the server should close instead of reading 100 MB")
        let after = try server.api().get("big")
        #expect(after.status == 404)
    }

    @Test("bodies need a length and the right media type")
    func bodyRules() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        var connection = try server.connection(timeoutSeconds: 5)
        try connection.send(Array("PUT /fragments/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8))
        #expect(try connection.readResponse().status == 411)
        connection = try server.connection(timeoutSeconds: 5)
        #expect(try connection.request("PUT", "/fragments/a", headers: [("Content-Type", "text/plain")], body: Array("hi".utf8)).status == 415)
        connection = try server.connection(timeoutSeconds: 5)
        #expect(try connection.request("PUT", "/fragments/a", headers: [("Content-Type", "application/json")], body: Array("{".utf8)).status == 400)
        #expect(try connection.request("PUT", "/fragments/a", headers: [("Content-Type", "application/json; charset=latin1")], body: Array("{}".utf8)).status == 415)
        #expect(try server.api().get("a").status == 404)
    }

    @Test("a silent client is dropped after the connection timeout")
    func silentClientDropped() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--connection-timeout", "1"])
        let connection = try server.connection()
        let started = Date()
        #expect(connection.waitForClose(seconds: 10))
        let elapsed = Date().timeIntervalSince(started)
        // Not before the timeout; how long after it depends on the machine's load, so only the
        // 10 s wait above bounds it.
        #expect(elapsed >= 0.9, "dropped after \(elapsed) s")
        // Others are still served.
        #expect(try server.connection().request("GET", "/healthz").status == 200)
    }

    @Test("SIGTERM lets a request in flight finish, then carmad exits 0")
    func gracefulShutdown() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path)
        let connection = try server.connection(timeoutSeconds: 20)
        let body = Array(#"{"content":"written while the server was asked to stop"}"#.utf8)
        try connection.send(Array("PUT /fragments/inflight HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body.prefix(10))
        usleep(300_000)
        kill(server.process.processIdentifier, SIGTERM)
        usleep(500_000)
        #expect(server.process.isRunning, "carmad must wait for the request in flight")
        try connection.send(Array(body.dropFirst(10)))
        let response = try connection.readResponse()
        #expect(response.status == 201)
        #expect(server.stop() == 0)
        let restarted = try server.restarted()
        let read = try restarted.api().get("inflight")
        #expect(read.status == 200)
        #expect(try read.json()["content"] == "written while the server was asked to stop")
        #expect(restarted.stop() == 0)
    }
}
