import FragmentCore
import CarmaJSON
import CarmaTesting
import CarmaText
import Foundation
@testable import FragmentStore
import Logging
import Testing

/// The store's vector queries through the graphs answer as the exact scan does, on a store small
/// enough that the graph's recall must be perfect.
@Suite struct NeighbourSearchStoreTests {
    static let dimensions = 16

    static func configuration(_ path: String, graphs: Bool) -> StoreConfiguration {
        StoreConfiguration(
            dataDirectory: path, cacheBytes: 1 << 20,
            neighbourSearch: graphs ? NeighbourSearchConfiguration(minimumVectors: 10, efSearch: 400, beamVectors: 0, minimumBudget: 1_000_000) : nil)
    }

    static func vector(_ n: Int) -> [Double] {
        var state = UInt64(n) &* 0x9e37_79b9_7f4a_7c15 | 1
        return (0..<dimensions).map { d in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // 12 clusters: the fragment's cluster direction plus noise.
            let cluster = Double((n % 12) * 7 + d) .truncatingRemainder(dividingBy: 5) - 2
            return cluster + Double(Int64(bitPattern: state >> 11) % 1000) / 1000
        }
    }

    static func queries() -> [QueryRequest] {
        (0..<12).flatMap { n -> [QueryRequest] in
            let embedding = Self.vector(1_000 + n)
            return [
                QueryRequest(embedding: embedding, mode: .vector, k: 10),
                QueryRequest(embedding: embedding, mode: .vector, k: 25, tags: ["t\(n % 3)"]),
                QueryRequest(embedding: embedding, mode: .vector, k: 10, statuses: [.ok]),
                QueryRequest(embedding: embedding, mode: .vector, k: 10, metadata: ["group": .string("g\(n % 4)")]),
            ]
        }
    }

    static func answers(_ store: FragmentStore) throws -> [[String]] {
        try Self.queries().map { request in
            try store.query(request).hits.map { "\($0.id) \($0.score)" }
        }
    }

    @Test func vectorQueriesAnswerAsTheExactScanWithTheirFilters() throws {
        let directory = TemporaryDirectory("neighbours")
        defer { directory.remove() }
        var store = try FragmentStore(configuration: Self.configuration(directory.path, graphs: true), logger: Logger(label: "test"))
        for n in 0..<300 {
            let input = FragmentInput(
                content: "fragment \(n)", tags: ["t\(n % 3)"], metadata: ["group": .string("g\(n % 4)")], embedding: Self.vector(n))
            _ = try wait { done in store.put("f\(n)", input, precondition: .none, completion: done) }
        }
        for n in stride(from: 0, to: 300, by: 10) {
            try wait { done in store.delete("f\(n)", precondition: .none, completion: done) }
        }
        let deadline = Date().addingTimeInterval(30)
        while store.vectorIndexStatus.first(where: { $0.kind == .client })?.state != .serving, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let client = try #require(store.vectorIndexStatus.first { $0.kind == .client })
        #expect(client.state == .serving)
        #expect(client.vectors == 270)
        let throughGraph = try Self.answers(store)
        #expect(throughGraph.allSatisfy { !$0.isEmpty })
        store.close()
        #expect(FileManager.default.fileExists(atPath: directory.path + "/vectors/client-vectors.hnsw"))

        store = try FragmentStore(configuration: Self.configuration(directory.path, graphs: false), logger: Logger(label: "test"))
        while !store.textIndexReady { Thread.sleep(forTimeInterval: 0.05) }
        #expect(store.vectorIndexStatus.isEmpty)
        let scanned = try Self.answers(store)
        #expect(throughGraph == scanned)
        store.close()

        // The next start reads the saved graph instead of building it.
        store = try FragmentStore(configuration: Self.configuration(directory.path, graphs: true), logger: Logger(label: "test"))
        defer { store.close() }
        let again = Date().addingTimeInterval(30)
        while store.vectorIndexStatus.first(where: { $0.kind == .client })?.state != .serving, Date() < again {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(store.vectorIndexStatus.first { $0.kind == .client }?.loadedFromFile == true)
        #expect(try Self.answers(store) == scanned)
    }
}
