import CarmaClient
import CarmaFaults
import CarmaJSON
import CarmaTesting
import Foundation
import Synchronization
import Testing

/// `carma export` and `carma import` against real carmad processes.
@Suite("Export and import (live)")
struct PortabilityLiveTests {
    /// Runs the `carma` CLI to the end.
    static func carma(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ServerProcess.runCarma(arguments)
    }

    static func url(_ server: ServerProcess) -> String { "http://127.0.0.1:\(server.port)" }

    /// An export file's fragment lines by id (failing on an id seen twice), and its header.
    static func read(_ path: String) throws -> (fragments: [String: JSONValue], header: JSONValue, end: JSONValue?) {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
        var fragments: [String: JSONValue] = [:]
        for line in lines.dropFirst() where line["carma_export"] == nil {
            let id = line["id"]!.stringValue!
            #expect(fragments[id] == nil, "\(id) exported twice")
            fragments[id] = line
        }
        return (fragments, lines[0], lines.last.flatMap { $0["carma_export"] == "end" ? $0 : nil })
    }

    /// A store with replaced, deleted, reconstructed and blank fragments, some with metadata and embeddings.
    static func populated(_ directory: TemporaryDirectory) throws -> (server: ServerProcess, deleted: Set<String>) {
        let server = try ServerProcess(
            dataDirectory: directory.path + "/a", extraArguments: ["--cache-bytes", "0", "--reconstruction-floor", "0"] + manualDreamOnly)
        let api = server.api()
        for index in 0..<300 {
            var content = "Fragment \(index) about rack \(index % 7) and the build server number \(index % 11)."
            // p-8 is longer than the sketch's verbatim budget, so that it must be reconstructed.
            if index == 8 { content += String(repeating: " The build server in rack 1 runs the nightly jobs for every team.", count: 5) }
            var body: JSONObject = [
                "content": .string(content),
                "links": [.string("p-\((index + 1) % 300)"), .string("p-\((index + 299) % 300)")],
                "tags": [.string("t\(index % 5)")],
                "metadata": ["n": .number(Double(index)), "nested": ["ok": true, "list": [1, "two", .null]]],
            ]
            if index % 3 == 0 { body["embedding"] = [.number(Double(index) / 300), 0.5, -0.25, 1] }
            #expect(try api.put("p-\(index)", .object(body)).status == 201)
        }
        for index in stride(from: 0, to: 300, by: 6) {
            #expect(try api.put("p-\(index)", ["content": .string("Fragment \(index), replaced: rack \(index % 7) again."), "tags": ["replaced"]]).status == 200)
        }
        var deleted: Set<String> = []
        for index in stride(from: 1, to: 300, by: 10) {
            #expect(try api.delete("p-\(index)").status == 204)
            deleted.insert("p-\(index)")
        }
        // One reconstructed: both copies lost, rebuilt from its neighbours.
        let damage = DiskDamage(dataDirectory: directory.path + "/a")
        _ = try damage.zero(["p-8"], in: .primary)
        _ = try damage.destroyRedundancy(of: ["p-8"])
        #expect(try api.get("p-8").header("X-Fragment-Status") == "blank")
        let report = try api.dream()
        #expect(report["outcomes"]?["reconstructed"] == 1)
        #expect(try api.get("p-8").header("X-Fragment-Status") == "reconstructed")
        // One blank, left blank.
        _ = try damage.zero(["p-4"], in: .primary)
        #expect(try api.get("p-4").header("X-Fragment-Status") == "blank")
        return (server, deleted)
    }

    @Test("export, import into a fresh carmad: every fragment equal (blank and reconstructed too); a second import changes nothing", .timeLimit(.minutes(5)))
    func roundTrip() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let (source, deleted) = try Self.populated(directory)
        let file = directory.path + "/export.ndjson"
        let exported = try Self.carma(["export", "--server", Self.url(source), "--out", file])
        #expect(exported.status == 0, "\(exported.output)")
        let (fragments, header, end) = try Self.read(file)
        #expect(fragments.count == 300 - deleted.count)
        #expect(header["fragments"]?.intValue == fragments.count)
        #expect(end?["fragments"]?.intValue == fragments.count)
        #expect(fragments["p-4"]?["status"] == "blank")
        #expect(fragments["p-4"]?["content"] == nil)
        #expect(fragments["p-8"]?["status"] == "reconstructed")
        #expect(fragments["p-8"]?["confidence"]?.doubleValue != nil)
        #expect(fragments["p-3"]?["embedding"] == [0.01, 0.5, -0.25, 1])
        #expect(fragments.keys.allSatisfy { !deleted.contains($0) })

        let target = try ServerProcess(dataDirectory: directory.path + "/b", extraArguments: manualDreamOnly)
        let imported = try Self.carma(["import", "--server", Self.url(target), file])
        #expect(imported.status == 0, "\(imported.output)")
        #expect(imported.output.contains("imported \(fragments.count), unchanged 0"))

        // Served alike: the same bytes for every fragment, the same stub facts for the blank.
        let sourceAPI = source.api()
        let targetAPI = target.api()
        for (id, line) in fragments where line["status"] != "blank" {
            let original = try sourceAPI.get(id)
            let copy = try targetAPI.get(id)
            #expect(copy.body == original.body, "\(id)")
            #expect(copy.header("ETag") == original.header("ETag"), "\(id)")
            #expect(copy.header("X-Fragment-Status") == original.header("X-Fragment-Status"))
        }
        let stub = try targetAPI.get("p-4").json()
        #expect(stub["status"] == "blank" && stub["rebuild_needed"] == true && stub["reason"] == "checksum_mismatch")
        #expect(stub["version"] == fragments["p-4"]?["version"])
        for id in deleted { #expect(try targetAPI.get(id).status == 404) }

        // Its own export is the same file, line for line (but the header's time).
        let again = directory.path + "/again.ndjson"
        #expect(try Self.carma(["export", "--server", Self.url(target), "--out", again]).status == 0)
        #expect(try Self.read(again).fragments == fragments)

        let second = try Self.carma(["import", "--server", Self.url(target), file])
        #expect(second.status == 0)
        #expect(second.output.contains("imported 0, unchanged \(fragments.count)"))
        // New writes on the target get versions above every imported one.
        let maxVersion = fragments.values.compactMap { $0["version"]?.intValue }.max()!
        let fresh = try targetAPI.put("new-one", ["content": "after the import"])
        #expect(try fresh.json()["version"]!.intValue! > maxVersion)
    }

    @Test("an import cut short and run again completes it, writing only what was missing", .timeLimit(.minutes(5)))
    func resumedImport() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let source = try ServerProcess(dataDirectory: directory.path + "/a", extraArguments: manualDreamOnly)
        _ = try source.api().seed(1200, prefix: "r", size: 200)
        let file = directory.path + "/export.ndjson"
        #expect(try Self.carma(["export", "--server", Self.url(source), "--out", file]).status == 0)
        // What an interrupted run had sent: the first 700 fragments (and no closing line).
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        let cut = directory.path + "/cut.ndjson"
        try (lines.prefix(701).joined(separator: "\n") + "\n").write(toFile: cut, atomically: true, encoding: .utf8)

        let target = try ServerProcess(dataDirectory: directory.path + "/b", extraArguments: manualDreamOnly)
        let first = try Self.carma(["import", "--server", Self.url(target), cut])
        #expect(first.status == 0)
        #expect(first.output.contains("imported 700, unchanged 0"))
        #expect(first.output.contains("may be incomplete"))
        let resumed = try Self.carma(["import", "--server", Self.url(target), file])
        #expect(resumed.status == 0)
        #expect(resumed.output.contains("imported 500, unchanged 700"))
        let again = directory.path + "/again.ndjson"
        #expect(try Self.carma(["export", "--server", Self.url(target), "--out", again]).status == 0)
        #expect(try Self.read(again).fragments == Self.read(file).fragments)
    }

    @Test("bad import input is a 400 naming the line, and changes nothing", .timeLimit(.minutes(10)))
    func badImport() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        let api = server.api()
        let good = #"{"id":"ok-1","version":5,"content":"fine","links":[],"tags":[],"metadata":{},"size":4,"created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","status":"ok"}"#
        let cases: [(String, String)] = [
            (good + "\n{\"id\":\"x\"", "line"),
            (good + "\n" + good.replacingOccurrences(of: "\"version\":5", with: "\"version\":-1"), "version"),
            (good.replacingOccurrences(of: "ok-1", with: ".hidden"), "id"),
            (good.replacingOccurrences(of: "\"fine\"", with: "7"), "content"),
            (good.replacingOccurrences(of: "2026-01-01T00:00:00.000Z\",\"status", with: "yesterday\",\"status"), "updated_at"),
            (good.replacingOccurrences(of: "\"status\":\"ok\"", with: "\"status\":\"ok\",\"checksum\":\"crc32c:00000000\""), "checksum"),
            (good.replacingOccurrences(of: "\"status\":\"ok\"", with: "\"status\":\"lost\""), "status"),
            (good.replacingOccurrences(of: "\"size\"", with: "\"colour\""), "colour"),
            ("\n\n", "body"),
        ]
        for (body, field) in cases {
            let response = try api.raw("POST", "/import", body: Array(body.utf8), headers: [("Content-Type", "application/x-ndjson")])
            #expect(response.status == 400, "\(body)")
            #expect(try response.json()["field"]?.stringValue == field, "\(body)")
            #expect(try response.json()["type"] == "urn:carma:problem:invalid-import")
        }
        #expect(try api.get("ok-1").status == 404)
        #expect(try api.raw("POST", "/import", body: Array(good.utf8), headers: [("Content-Type", "application/json")]).status == 415)
        let written = try api.raw("POST", "/import", body: Array(good.utf8), headers: [("Content-Type", "application/x-ndjson")])
        #expect(try written.json()["imported"] == 1)
        #expect(try api.get("ok-1").json()["version"] == 5)
    }

    @Test("an export taken while writers rewrite everything and a cycle compacts holds each fragment once, at one version, as it was written", .timeLimit(.minutes(5)))
    func exportWhileWriting() throws {
        let directory = TemporaryDirectory("live")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--segment-bytes", "65536"] + manualDreamOnly)
        let api = server.api()
        let count = 1500
        let written = Ledger()
        for index in 0..<count { try written.put(api, "w-\(index)", round: 0) }

        let connection = try server.connection(timeoutSeconds: 120)
        var received: [UInt8] = []
        var disturbed = false
        let response = try connection.stream("/export") { bytes throws(ClientError) in
            received.append(contentsOf: bytes)
            guard !disturbed else { return }
            disturbed = true
            // The snapshot is taken; now every fragment is written again from four writers and a
            // dream cycle compacts the segments the old versions live in.
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                let writer = server.api()
                for index in stride(from: worker, to: count, by: 4) { try? written.put(writer, "w-\(index)", round: 1) }
            }
            _ = try? server.api().dream()
        }
        #expect(response.status == 200)
        let lines = String(decoding: received, as: UTF8.self).split(separator: "\n").map { try? JSONParser.parse(String($0)) }
        let header = lines.first!!
        let maxVersion = header["max_version"]!.intValue!
        var seen: Set<String> = []
        for case let line? in lines.dropFirst() where line["carma_export"] == nil {
            let id = line["id"]!.stringValue!
            #expect(seen.insert(id).inserted, "\(id) twice")
            let version = line["version"]!.intValue!
            #expect(version <= maxVersion)
            #expect(line["status"] == "ok")
            #expect(line["content"]?.stringValue == written.contents.withLock { $0["\(id)@\(version)"] }, "\(id)@\(version)")
        }
        #expect(seen.count == count)
        #expect(lines.last??["carma_export"] == "end")
        // The writes after the snapshot are all there afterwards.
        let after = try api.get("w-0").json()
        #expect(after["content"]?.stringValue?.hasPrefix("w-0 round 1") == true)
    }
}

/// What each (id, version) held, from the acknowledgements of PUTs.
final class Ledger: Sendable {
    let contents = Mutex<[String: String]>([:])

    @Sendable func put(_ api: CarmaAPI, _ id: String, round: Int) throws {
        let content = "\(id) round \(round): " + String(repeating: "payload \(round) ", count: 120)
        let response = try api.put(id, ["content": .string(content)])
        guard let version = try response.json()["version"]?.intValue else { throw ClientError("PUT \(id): \(response.status)") }
        self.contents.withLock { $0["\(id)@\(version)"] = content }
    }
}
