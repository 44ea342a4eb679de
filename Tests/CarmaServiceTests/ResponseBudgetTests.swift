import FragmentCore
import CarmaJSON
import MicroHTTP
import Testing

@testable import CarmaService

/// Answers that could grow with what a client asks for stop at `maxResponseBytes` and say so.
@Suite("Response budget")
struct ResponseBudgetTests {
    static let budget = 64 << 10

    /// A 180-character id, so that links make summaries and graphs large quickly.
    static func longID(_ index: Int) -> String {
        "n\(index)-" + String(repeating: "x", count: 180 - "n\(index)-".count)
    }

    /// Stores `count` fragments with long ids, each linking to the `links` that follow it (round the end).
    static func seedLinked(_ test: TestService, count: Int, links: Int = 200) {
        for index in 0..<count {
            let links = (1...links).map { JSONValue.string(Self.longID((index + $0) % count)) }
            let response = test.send(.put, "/fragments/\(Self.longID(index))", json: ["content": .string("linked \(index)"), "links": .array(links)])
            #expect(response.status == 201)
        }
        // A listing waits for the registry to take in every acknowledged write; topology reads it as is.
        #expect(test.send(.get, "/fragments?limit=1").status == 200)
    }

    @Test("a query whose hits would pass the budget keeps every hit in rank order and leaves later contents out, flagged")
    func queryContentOmitted() throws {
        let test = try TestService(maxResponseBytes: Self.budget)
        for index in 0..<10 {
            let content = "needle \(index) " + String(repeating: "hay ", count: 5_000)
            #expect(test.send(.put, "/fragments/big\(index)", json: ["content": .string(content)]).status == 201)
        }
        let response = test.send(.post, "/query", json: ["text": "needle hay", "k": 10])
        #expect(response.status == 200)
        #expect(response.body.count <= Self.budget + 4096)
        let results = try #require(response.json["results"]?.arrayValue)
        #expect(results.count == 10)
        let withContent = results.filter { $0["content"] != nil }
        let omitted = results.filter { $0["content_omitted"] == true }
        #expect(!withContent.isEmpty && !omitted.isEmpty)
        #expect(withContent.count + omitted.count == 10)
        #expect(response.json["content_omitted"]?.intValue == omitted.count)
        // The content that is sent comes first: budget is spent in rank order.
        #expect(results.prefix(withContent.count).allSatisfy { $0["content"] != nil })
        // The same query under the default budget leaves nothing out.
        let roomy = try TestService()
        for index in 0..<10 {
            _ = roomy.send(.put, "/fragments/big\(index)", json: ["content": .string("needle \(index) " + String(repeating: "hay ", count: 5_000))])
        }
        let full = roomy.send(.post, "/query", json: ["text": "needle hay", "k": 10])
        #expect(full.json["content_omitted"] == 0)
        #expect(full.json["results"]?.arrayValue?.allSatisfy { $0["content"] != nil } == true)
    }

    /// Follows a paged endpoint to its end: `path` with `cursorParameter` set from each answer's
    /// `cursorField`. Every page must be non-empty and within the budget (plus `slack`).
    /// - Returns: The ids of `itemsField` in the order served, and how many pages it took.
    static func follow(
        _ test: TestService, _ path: String, itemsField: String, cursorField: String, cursorParameter: String, slack: Int
    ) throws -> (ids: [String], pages: Int) {
        var ids: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let response = test.send(.get, path + (cursor.map { "&\(cursorParameter)=\($0)" } ?? ""))
            #expect(response.status == 200)
            #expect(response.body.count <= Self.budget + slack)
            let items = try #require(response.json[itemsField]?.arrayValue)
            #expect(!items.isEmpty)
            ids += items.compactMap { $0["id"]?.stringValue }
            cursor = response.json[cursorField]?.stringValue
            if let truncated = response.json["truncated"] {
                #expect(truncated.boolValue == (cursor != nil))
            }
            pages += 1
        } while cursor != nil && pages < 100
        return (ids, pages)
    }

    @Test("a listing page ends at the budget with a cursor, and following the cursors lists every fragment once")
    func listingPagesWithinBudget() throws {
        let test = try TestService(maxResponseBytes: Self.budget)
        Self.seedLinked(test, count: 40)
        let listed = try Self.follow(test, "/fragments?limit=1000", itemsField: "items", cursorField: "next_cursor", cursorParameter: "cursor", slack: 1024)
        #expect(listed.pages > 1)
        #expect(listed.ids == (0..<40).map(Self.longID).sorted())
    }

    @Test("topology past the budget is truncated with next_after, in JSON and DOT, and paging covers every node")
    func topologyWithinBudget() throws {
        let test = try TestService(maxResponseBytes: Self.budget)
        Self.seedLinked(test, count: 40, links: 30)
        let drawn = try Self.follow(test, "/topology?limit=10000", itemsField: "nodes", cursorField: "next_after", cursorParameter: "after", slack: 0)
        #expect(drawn.pages > 1)
        #expect(drawn.ids == (0..<40).map(Self.longID).sorted())

        let dot = test.send(.get, "/topology?limit=10000&format=dot")
        #expect(dot.body.count <= Self.budget)
        #expect(String(decoding: dot.body, as: UTF8.self).contains("// truncated"))
        let around = test.send(.get, "/topology?limit=10000&depth=3&around=\(Self.longID(0))")
        #expect(around.body.count <= Self.budget)
        #expect(around.json["truncated"] == true)
        #expect(around.json["next_after"] == .null)
    }

    @Test("a fragment's context cuts its backlinks at the budget and says so")
    func contextBacklinksWithinBudget() throws {
        let test = try TestService(maxResponseBytes: Self.budget)
        Self.seedLinked(test, count: 400)
        let response = test.send(.get, "/fragments/\(Self.longID(0))/context?k=0")
        #expect(response.status == 200)
        #expect(response.body.count <= Self.budget + 4096)
        let backlinks = try #require(response.json["backlinks"]?.arrayValue)
        #expect(backlinks.count < 200)
        #expect(response.json["backlinks_truncated"] == true)
        #expect(response.json["links"]?.arrayValue?.count == 200)
    }

    @Test("a body with more JSON values than a request may hold is 413 json-too-complex, on every JSON route")
    func tooManyJSONValues() throws {
        let test = try TestService()
        var wide = JSONObject()
        for index in 0..<80_000 { wide["k\(index)"] = 0 }
        for (method, path) in [(HTTPMethod.post, "/query"), (.put, "/fragments/a"), (.post, "/dream")] {
            let response = test.send(method, path, json: .object(wide))
            #expect(response.status == 413, "\(method) \(path)")
            #expect(response.json["type"] == "urn:carma:problem:json-too-complex")
            #expect(response.json["max_values"]?.intValue == HTTPRequest.maxJSONValues)
        }
        // Under the limit, a wide body is parsed whole and answered for what it says.
        var unknown = JSONObject()
        for index in 0..<40_000 { unknown["k\(index)"] = 0 }
        let response = test.send(.post, "/query", json: .object(unknown))
        #expect(response.status == 400)
        #expect(response.json["field"] == "k0")
        #expect(test.send(.get, "/fragments/a").status == 404)
    }
}
