import FragmentCore
import CarmaJSON
import CarmaTesting
import CarmaText
import Foundation
import Testing

@testable import FragmentStore

@Suite("The sketch tier")
struct SketchRecoveryTests {
    /// What the first sketch format cost for a text: 2 bytes, 5 per term (32 at most), 72.
    private func firstFormatBytes(_ text: String) -> Int {
        2 + 5 * Sketch.make(text, idf: { _ in 1 }).terms.count + Sketch.dimensions + 8
    }

    @Test("an agent's note kept verbatim costs no more registry bytes than the first format's term sketch")
    func noteSizes() {
        var verbatimTotal = 0, firstTotal = 0
        for (index, note) in AgentNotes.notes.enumerated() {
            let metadata = FragmentRecord.metadataBytes(AgentNotes.metadata(index))
            let sketch = Sketch.make(fragment: note.content, metadata: metadata, verbatimAllowed: true, idf: { _ in 1 })
            #expect(sketch.verbatim != nil)
            let bytes = sketch.encode().count
            #expect(bytes <= self.firstFormatBytes(note.content), "\(note.id): \(bytes) bytes")
            verbatimTotal += bytes
            firstTotal += self.firstFormatBytes(note.content)
        }
        #expect(verbatimTotal < firstTotal)
    }

    /// Registry bytes of each note's sketch in the agent-memory evaluation set, verbatim (with and
    /// without its metadata) and in the first format, by shape.
    private func evaluationSetSizes() throws -> [String: [(verbatim: Int, contentOnly: Int, first: Int)]] {
        var sizes: [String: [(verbatim: Int, contentOnly: Int, first: Int)]] = [:]
        for shape in ["facts", "dialog"] {
            let text = try String(contentsOfFile: Repository.root + "/corpus/agent-memory/\(shape).jsonl", encoding: .utf8)
            for line in text.split(separator: "\n") where !line.isEmpty {
                let object = try #require(try JSONParser.parse(Array(line.utf8)).objectValue)
                let content = try #require(object["content"]?.stringValue)
                let metadata = FragmentRecord.metadataBytes(object["metadata"]?.objectValue ?? [:])
                let sketch = Sketch.make(fragment: content, metadata: metadata, verbatimAllowed: true, idf: { _ in 1 })
                #expect(sketch.verbatim != nil, "every note fits the budget with its metadata")
                let contentOnly = Sketch.make(fragment: content, metadata: Array("{}".utf8), verbatimAllowed: true, idf: { _ in 1 })
                sizes[shape, default: []].append((sketch.encode().count, contentOnly.encode().count, self.firstFormatBytes(content)))
            }
        }
        return sizes
    }

    @Test("on the evaluation set: a note's text alone always costs fewer sketch bytes than the first format; facts with their metadata too")
    func evaluationSet() throws {
        let sizes = try self.evaluationSetSizes()
        for (shape, notes) in sizes {
            #expect(notes.allSatisfy { $0.contentOnly <= $0.first }, "\(shape)")
        }
        // Facts carry small metadata (person, date, topic); conversation turns carry more (session,
        // date, both speakers), which costs them 8% more than before on average (docs/decisions.md).
        #expect(try #require(sizes["facts"]).allSatisfy { $0.verbatim <= $0.first })
    }

    private func row(for record: FragmentRecord, checksum: UInt32, length: Int) -> FragmentRow {
        FragmentRow(
            id: record.id, version: record.version, status: .blank, checksum: checksum, recordLength: length, size: record.size, links: record.links,
            tags: record.tags, createdAt: record.createdAt, updatedAt: record.updatedAt, expiresAt: record.expiresAt)
    }

    @Test("the record rebuilt from a verbatim sketch and the row is the original byte for byte, or nothing")
    func exactRecord() throws {
        let input = FragmentInput(
            content: AgentNotes.notes[4].content, links: ["rosa-03", "rosa-06"], tags: ["rosa"], metadata: AgentNotes.metadata(4),
            expiresAt: Timestamp(milliseconds: 1_900_000_000_000))
        let record = FragmentRecord(id: "rosa-05", version: 42, input: input, createdAt: Timestamp(milliseconds: 1_780_000_000_000), updatedAt: Timestamp(milliseconds: 1_780_000_100_000))
        let bytes = record.encode()
        let sketch = Sketch.make(fragment: input.content, metadata: FragmentRecord.metadataBytes(input.metadata), verbatimAllowed: true, idf: { _ in 1 })
        let target = RepairTarget(row: self.row(for: record, checksum: CRC32C.checksum(bytes), length: bytes.count))
        #expect(SketchRecovery.record(target, sketch: Sketch.decode(sketch.encode())) == bytes)

        // A row that no longer matches (another tag), a sketch of other text, or no sketch: nothing.
        var changed = target
        changed.row.tags = ["other"]
        #expect(SketchRecovery.record(changed, sketch: sketch) == nil)
        let other = Sketch.make(fragment: "Another note entirely.", metadata: Array("{}".utf8), verbatimAllowed: true, idf: { _ in 1 })
        #expect(SketchRecovery.record(target, sketch: other) == nil)
        #expect(SketchRecovery.record(target, sketch: nil) == nil)
        // A reconstruction that kept no original (imported as such) is never turned exact.
        var reconstructed = target
        reconstructed.row.status = .reconstructed
        #expect(SketchRecovery.record(reconstructed, sketch: sketch) == nil)
    }
}
