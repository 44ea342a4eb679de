import CarmaJSON
import CarmaTesting
import CarmaText
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
