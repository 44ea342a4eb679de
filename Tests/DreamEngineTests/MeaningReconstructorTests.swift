import FragmentCore
import CarmaText
@testable import FragmentStore
import Foundation
import Synchronization
import Testing

@testable import DreamEngine

/// Surviving fragments and a toy "model": each word counts towards a concept, and synonyms share one,
/// so that meaning and words can disagree on purpose.
private final class ToyContext: ContextSource {
    static let concepts: [String: Int] = [
        "compress": 0, "compresses": 0, "shrink": 0, "smaller": 0, "squeeze": 0, "size": 0,
        "network": 1, "packets": 1, "host": 1, "remote": 1,
        "files": 2, "file": 2, "archive": 2,
        "history": 3, "written": 3, "year": 3, "author": 3,
    ]
    let contents: [String: String]
    let rowsByID: [String: FragmentRow]
    let sketches: [String: Sketch]
    let meanings: [String: [Float]]

    init(lost: (id: String, original: String, links: [String]), survivors: [String: String], withMeaning: Bool) {
        self.contents = survivors
        var rows: [String: FragmentRow] = [:]
        for id in survivors.keys.sorted() + [lost.id] {
            rows[id] = FragmentRow(
                id: id, version: 1, status: id == lost.id ? .blank : .ok, checksum: 0, recordLength: 1, size: 0,
                links: id == lost.id ? lost.links : [], tags: [], createdAt: .now, updatedAt: .now)
        }
        self.rowsByID = rows
        self.sketches = [lost.id: Sketch.make(lost.original, idf: { _ in 1 })]
        self.meanings = withMeaning ? [lost.id: Self.toyEmbed(lost.original)] : [:]
    }

    static func toyEmbed(_ text: String) -> [Float] {
        var vector = [Float](repeating: 0, count: 4)
        for word in text.lowercased().split(whereSeparator: { (character: Character) in !character.isLetter }) {
            if let concept = concepts[String(word)] { vector[concept] += 1 }
        }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }

    func sketch(of id: String) -> Sketch? { self.sketches[id] }
    func idf(_ hash: UInt32, in namespace: String) -> Double { 1 }
    func content(_ id: String) -> (content: String, status: FragmentStatus)? { self.contents[id].map { ($0, .ok) } }
    func backlinks(_ id: String) -> [String] { [] }
    func rows(_ ids: [String]) -> [FragmentRow?] { ids.map { self.rowsByID[$0] } }
    func similar(to vector: [Int8], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] { [] }
    func related(to sketch: Sketch, k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] { [] }
    func meaning(of id: String) -> [Float]? { self.meanings[id] }
    func embed(_ text: String) -> [Float]? { Self.toyEmbed(text) }
}

@Suite("meaning reconstructor")
struct MeaningReconstructorTests {
    private let lost = (id: "gzip", original: "gzip compresses files to make them smaller.", links: ["notes"])
    // One sentence shares the lost text's words but not its point; others say the same in other words.
    private let survivors = [
        "notes": "The gzip files were written by an author in the year of its history. Squeeze a file to shrink its size. Remote hosts get network packets.",
    ]

    @Test("aims at the kept meaning: a closer combination than the sketch-guided method finds")
    func closerInMeaning() throws {
        let store = ToyContext(lost: self.lost, survivors: self.survivors, withMeaning: true)
        let target = RepairTarget(row: store.rowsByID["gzip"]!)
        let byMeaning = try #require(MeaningReconstructor().reconstruct(target, from: store))
        let bySketch = try #require(ContextReconstructor().reconstruct(target, from: store))
        #expect(byMeaning.method == "context-meaning-v1")
        let goal = ToyContext.toyEmbed(self.lost.original)
        let meaningCosine = MeaningReconstructor.cosine(ToyContext.toyEmbed(byMeaning.content), goal)
        let sketchCosine = MeaningReconstructor.cosine(ToyContext.toyEmbed(bySketch.content), goal)
        #expect(meaningCosine > sketchCosine, "\(byMeaning.content) | \(bySketch.content)")
        #expect(byMeaning.content.contains("Squeeze a file to shrink its size."))
        #expect(!byMeaning.content.contains("network packets"))
        #expect((0...1).contains(byMeaning.confidence))
        #expect(byMeaning.sources == ["notes"])
        // Deterministic.
        #expect(MeaningReconstructor().reconstruct(target, from: store)?.content == byMeaning.content)
    }

    @Test("without a kept meaning it is the sketch-guided method")
    func fallsBack() throws {
        let store = ToyContext(lost: self.lost, survivors: self.survivors, withMeaning: false)
        let target = RepairTarget(row: store.rowsByID["gzip"]!)
        let rebuilt = try #require(MeaningReconstructor().reconstruct(target, from: store))
        #expect(rebuilt.method == "context-extractive-v1")
        #expect(rebuilt.content == ContextReconstructor().reconstruct(target, from: store)?.content)
    }
}
