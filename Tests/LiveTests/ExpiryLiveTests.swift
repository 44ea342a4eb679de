import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

/// Per-fragment expiry through HTTP: validated on PUT, honoured across a restart, and reclaimed by
/// a dream cycle's compaction.
@Suite("Expiry (live)", .serialized)
struct ExpiryLiveTests {
    /// Waits (up to `seconds`) until `condition` holds: tests assert outcomes, never timings.
    static func eventually(within seconds: Double = 30, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    @Test("bad, contradictory and past expiries are 400 and change nothing")
    func validation() throws {
        let directory = TemporaryDirectory("expiry-validation")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        defer { server.stop() }
        let api = server.api()
        #expect(try api.put("a", ["content": "kept"]).status == 201)
        for (body, field): (JSONValue, String) in [
            (["content": "x", "ttl": 0], "ttl"), (["content": "x", "ttl": -5], "ttl"), (["content": "x", "ttl": 1.5], "ttl"),
            (["content": "x", "ttl": "60"], "ttl"), (["content": "x", "ttl": 1e300], "ttl"),
            (["content": "x", "ttl": 60, "expires_at": "2099-01-01T00:00:00Z"], "ttl"),
            (["content": "x", "expires_at": "2000-01-01T00:00:00Z"], "expires_at"),
            (["content": "x", "expires_at": "2099-02-30T00:00:00Z"], "expires_at"), (["content": "x", "expires_at": 5], "expires_at"),
            (["content": "x", "expires_at": "soon"], "expires_at"),
        ] {
            let response = try api.put("a", body)
            #expect(response.status == 400, "\(body): \(response.status)")
            #expect(try response.json()["field"]?.stringValue == field, "\(body): \(response.text)")
        }
        let stored = try api.get("a")
        #expect(try stored.json()["content"] == "kept" && stored.json()["version"] == 1 && stored.json()["expires_at"] == nil)
        let later = try api.put("a", ["content": "dated", "expires_at": "2099-01-01T01:00:00+01:00"])
        #expect(later.status == 200)
        #expect(try later.json()["expires_at"] == "2099-01-01T00:00:00.000Z")
        #expect(try api.json("/fragments")["items"]?.arrayValue?.first?["expires_at"] == "2099-01-01T00:00:00.000Z")
    }

    @Test("a fragment with a ttl is served until it expires, also after a restart, and answers 404 afterwards; one without stays")
    func honouredAcrossRestart() throws {
        let directory = TemporaryDirectory("expiry-restart")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        let api = server.api()
        let put = try api.put("short", ["content": "short-lived", "ttl": 3])
        #expect(put.status == 201)
        let expiresAt = try put.json()["expires_at"]?.stringValue
        #expect(expiresAt != nil)
        #expect(try api.put("long", ["content": "an hour", "ttl": 3600]).status == 201)
        #expect(try api.put("forever", ["content": "no expiry"]).status == 201)
        #expect(try api.get("short").status == 200)
        #expect(server.stop() == 0)

        server = try server.restarted()
        defer { server.stop() }
        let again = server.api()
        let before = try again.get("short")
        // Before its expiry it is served with the same expiry; the restart may already be past it.
        if before.status == 200 { #expect(try before.json()["expires_at"]?.stringValue == expiresAt) }
        #expect(try Self.eventually { try again.get("short").status == 404 })
        #expect(try again.request("GET", "/fragments/short/history").status == 404)
        #expect(try again.delete("short").status == 404)
        #expect(try again.get("long").status == 200)
        #expect(try again.get("forever").status == 200)
        let listed = try again.json("/fragments")["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        #expect(listed == ["forever", "long"])
        // The id is free again.
        #expect(try again.put("short", ["content": "new"], headers: [("If-None-Match", "*")]).status == 201)
    }

    @Test("a dream cycle's compaction deletes expired fragments and reclaims their segments; they stay gone after a restart", .timeLimit(.minutes(3)))
    func reclaimedByCompaction() throws {
        let directory = TemporaryDirectory("expiry-compaction")
        defer { directory.remove() }
        var server = try ServerProcess(
            dataDirectory: directory.path, extraArguments: ["--segment-bytes", "65536", "--cache-bytes", "0", "--dream-duty-cycle", "1"] + manualDreamOnly)
        let api = server.api()
        let filler = String(repeating: "expiring words ", count: 60)
        for index in 0..<240 {
            #expect(try api.put("e\(index)", ["content": .string("e\(index) \(filler)"), "ttl": 2]).status == 201)
        }
        for index in 0..<20 {
            #expect(try api.put("k\(index)", ["content": .string("kept \(index)")]).status == 201)
        }
        let bytesBefore = Self.bytes(under: directory.path)
        #expect(try Self.eventually { try api.get("e239").status == 404 })
        let report = try api.dream(budget: ["scrub_fragments": 0])
        let compaction = report["compaction"]
        #expect(compaction?["expired"]?.intValue == 240, "\(report)")
        #expect((compaction?["segments_removed"]?.intValue ?? 0) >= 2, "\(report)")
        #expect((compaction?["bytes_reclaimed"]?.doubleValue ?? 0) > 0)
        #expect(Self.bytes(under: directory.path) < bytesBefore)
        #expect(try api.json("/readyz")["fragments"]?.intValue == 20)
        #expect(server.stop() == 0)
        server = try server.restarted()
        defer { server.stop() }
        for index in [0, 120, 239] { #expect(try server.api().get("e\(index)").status == 404) }
        for index in 0..<20 { #expect(try server.api().get("k\(index)").status == 200) }
    }

    /// Bytes of the segment files under a directory.
    static func bytes(under path: String) -> Int {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".seg") else { continue }
            total += ((try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)"))?[.size] as? Int) ?? 0
        }
        return total
    }
}
