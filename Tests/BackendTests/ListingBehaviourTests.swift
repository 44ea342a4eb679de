import CarmaJSON
import CarmaTesting
import FragmentCore
import Foundation
import Testing

/// Listings, histories, queries and counts: what a store says about many fragments at once, the
/// same on both backends.
@Suite("Listings and queries on both backends")
struct ListingBehaviourTests {
    @Test("listings page in id order and filter by tag and by status; stats count by status", arguments: Backend.allCases)
    func listings(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        for index in 0..<25 {
            try s.put(String(format: "item%02d", index), "note \(index) about nothing special", tags: index % 5 == 0 ? ["fifth", "all"] : ["all"])
        }
        try s.put("lighthouse", "The lighthouse keeper logs every passing ship at dusk.", links: ["item00"])
        try s.put("item03", "note 3, rewritten", tags: ["all"])
        let all = (0..<25).map { String(format: "item%02d", $0) } + ["lighthouse"]

        #expect(try s.listed(pageSize: 10) == all)
        #expect(try s.listed(pageSize: 26) == all)
        s.applied()
        let first = try s.store.list(status: nil, tag: nil, after: nil, limit: 10)
        #expect(first.rows.count == 10)
        #expect(first.nextAfter == "item09")
        let last = try s.store.list(status: nil, tag: nil, after: "item20", limit: 10)
        #expect(last.rows.map(\.id) == ["item21", "item22", "item23", "item24", "lighthouse"])
        #expect(last.nextAfter == nil)
        #expect(try s.store.ids(after: "item22", limit: 3) == ["item23", "item24", "lighthouse"])

        #expect(try s.listed(tag: "fifth", pageSize: 2) == ["item00", "item05", "item10", "item15", "item20"])
        #expect(try s.listed(tag: "all") == Array(all.dropLast()))
        #expect(try s.listed(tag: "none") == [])
        #expect(try s.listed(status: .ok) == all)
        #expect(try s.listed(status: .blank) == [])

        try s.damage(["item01", "item05"], .lose)
        #expect(s.blank("item01") != nil && s.blank("item05") != nil)
        #expect(try s.listed(status: .blank) == ["item01", "item05"])
        #expect(try s.listed(status: .blank, tag: "fifth") == ["item05"])
        #expect(try s.listed(status: .ok).count == 24)
        let stats = s.store.stats()
        #expect(stats.fragments == 26)
        #expect(stats.byStatus[.ok] == 24)
        #expect(stats.byStatus[.blank] == 2)
        #expect(stats.byStatus[.reconstructed, default: 0] == 0)
        #expect(stats.damageDetected[backend.reason(for: .lose)] == 2)
        #expect(s.store.blankCount == 2)
        #expect(s.store.fragmentCount == 26)
        let usage = s.store.diskUsage()
        #expect(usage.primary > 0 && usage.redundancy > 0 && usage.registry > 0, "\(usage)")
        #expect(s.store.backendAvailable)
        #expect(s.store.backendFailures == 0)
        #expect(!s.store.location.isEmpty)
    }

    @Test("a history says created, then updated, with each version and size", arguments: Backend.allCases)
    func history(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let first = try s.put("note", "first words")
        let second = try s.put("note", "second, longer words")
        let events = try #require(try s.history("note"))
        #expect(events.map(\.kind) == ["created", "updated"])
        #expect(events.map { $0.detail["version"]?.intValue } == [Int(first.fragment.version), Int(second.fragment.version)])
        #expect(events.map { $0.detail["size"]?.intValue } == [11, 20])
        #expect(events.allSatisfy { $0.id == "note" })
        #expect(events[0].sequence < events[1].sequence)
        #expect(events[0].at <= events[1].at)
    }

    @Test("a history keeps the newest lines of each fragment, as many as the retention says", arguments: Backend.allCases)
    func historyRetention(_ backend: Backend) throws {
        let s = try BackendStore(backend, retention: Retention(eventsPerFragment: 3))
        var versions: [Int] = []
        for round in 0..<6 { versions.append(Int(try s.put("busy", "round \(round)").fragment.version)) }
        try s.put("quiet", "written once")
        let events = try #require(try s.history("busy"))
        #expect(events.map(\.kind) == ["updated", "updated", "updated"])
        #expect(events.map { $0.detail["version"]?.intValue } == versions.suffix(3).map { $0 })
        #expect(try s.kinds("quiet") == ["created"])
        // A limit asks for the newest lines only.
        #expect(try s.store.history("busy", limit: 1)?.map { $0.detail["version"]?.intValue } == [versions.last])
    }

    @Test("a query by text, by client vector, by tag and status finds what was just written", arguments: Backend.allCases)
    func queries(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        for index in 0..<12 {
            try s.put("filler\(index)", "note \(index) about the weather and the price of bread", tags: ["filler"])
        }
        try s.put("lighthouse", FragmentInput(content: "The lighthouse keeper logs every passing ship at dusk.", tags: ["coast"], embedding: [1, 0, 0, 0]))
        try s.put("harbour", FragmentInput(content: "Fishing boats leave the harbour before dawn.", tags: ["coast"], metadata: ["port": "Ystad"], embedding: [0, 1, 0, 0]))
        try s.put("garden", FragmentInput(content: "Tomatoes ripen late in a cold summer.", embedding: [0, 0, 1, 0]))

        // The text index follows writes in the background on a cluster node (the change feed): wait
        // until it answers, never for a time.
        try s.eventually("a text query finds the lighthouse") {
            try s.store.query(QueryRequest(text: "the lighthouse keeper and passing ships", mode: .text, k: 3)).hits.first?.id == "lighthouse"
        }
        let text = try s.store.query(QueryRequest(text: "the lighthouse keeper and passing ships", mode: .text, k: 3))
        #expect(text.signals == [.text])
        #expect(text.hits.first?.row.version == s.store.row("lighthouse")?.version)
        #expect(text.hits.map(\.score) == text.hits.map(\.score).sorted(by: >))

        let vector = try s.store.query(QueryRequest(embedding: [0.1, 0.9, 0, 0], mode: .vector, k: 2))
        #expect(vector.hits.first?.id == "harbour")
        #expect(vector.signals == [.clientVector])
        let hybrid = try s.store.query(QueryRequest(text: "boats at dawn", embedding: [0, 1, 0, 0], k: 3))
        #expect(hybrid.hits.first?.id == "harbour")

        let coast = try s.store.query(QueryRequest(text: "ship boats harbour lighthouse", k: 10, tags: ["coast"]))
        #expect(Set(coast.hits.map(\.id)) == ["lighthouse", "harbour"])
        let port = try s.store.query(QueryRequest(text: "ship boats harbour lighthouse", k: 10, metadata: ["port": "Ystad"]))
        #expect(port.hits.map(\.id) == ["harbour"])

        // A fragment written again is found by its new words, not its old ones.
        try s.put("garden", "Cucumbers need warm nights and plenty of water.")
        try s.eventually("a query finds the rewritten garden") {
            try s.store.query(QueryRequest(text: "cucumbers warm nights", mode: .text, k: 1)).hits.first?.id == "garden"
        }
        #expect(try s.store.query(QueryRequest(text: "tomatoes ripen", mode: .text, k: 5)).hits.allSatisfy { $0.id != "garden" })

        // Blanks are found by what the store still knows of them, and only when asked for.
        try s.damage(["lighthouse"], .lose)
        #expect(s.blank("lighthouse") != nil)
        try s.eventually("a query for blanks finds the lighthouse") {
            try s.store.query(QueryRequest(text: "lighthouse keeper ship", k: 5, statuses: [.blank])).hits.map(\.id) == ["lighthouse"]
        }
        let okOnly = try s.store.query(QueryRequest(text: "lighthouse keeper ship", k: 5, statuses: [.ok]))
        #expect(!okOnly.hits.contains { $0.id == "lighthouse" })

        try s.delete("harbour")
        try s.eventually("a deleted fragment is no longer found") {
            try s.store.query(QueryRequest(text: "fishing boats harbour dawn", mode: .text, k: 5)).hits.allSatisfy { $0.id != "harbour" }
        }
        s.indexed(14)
    }

    @Test("what reconstruction reads around a fragment: backlinks, contents, rows and sketches", arguments: Backend.allCases)
    func context(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        try s.put("hub", "The hub note about the harbour.", links: ["spoke1"])
        try s.put("spoke1", "The first spoke, about crabs.", links: ["hub"])
        try s.put("spoke2", "The second spoke, about anemones.", links: ["hub", "spoke1"])
        s.eventually("backlinks follow the writes") { s.store.backlinks("hub").sorted() == ["spoke1", "spoke2"] }
        #expect(Set(s.store.backlinks("spoke1")) == ["hub", "spoke2"])
        #expect(s.store.backlinks("nobody") == [])
        #expect(s.store.content("spoke1")?.content == "The first spoke, about crabs.")
        #expect(s.store.content("spoke1")?.status == .ok)
        #expect(s.store.content("nobody") == nil)
        let rows = s.store.rows(["spoke2", "nobody", "hub"])
        #expect(rows.map { $0?.id } == ["spoke2", nil, "hub"])
        #expect(s.store.sketch(of: "hub")?.verbatim?.content == "The hub note about the harbour.")

        try s.damage(["spoke1"], .lose)
        #expect(s.blank("spoke1") != nil)
        #expect(s.store.content("spoke1") == nil, "a blank has no content to offer")
        #expect(s.store.sketch(of: "spoke1") != nil, "its sketch outlives its record")
        try s.delete("spoke2")
        s.eventually("a deleted fragment's links go with it") { s.store.backlinks("hub") == ["spoke1"] }
        #expect(s.store.sketch(of: "spoke2") == nil)
    }
}
