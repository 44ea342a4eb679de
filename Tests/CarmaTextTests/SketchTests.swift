import Testing

@testable import CarmaText

@Suite("Sketches keep what a short note is")
struct SketchTests {
    static let notes = [
        "Maya Okafor is allergic to peanuts; she carries an EpiPen in her blue backpack.",
        "Jonas moved from Hamburg to Lisbon on 2026-03-14 and now works remotely for Fernhill Labs.",
        "Priya's daughter Anika started violin lessons in March — Tuesdays at 5 pm with Mr. Duarte.",
        "Café Ñandú on Rua Augusta is where Tomás likes to meet: he orders a galão and pastel de nata.",
        "Remind Sam about the dentist appointment (Dr. Ruiz, 9:30 on Friday 12 June).",
    ]

    @Test("the compact code gives back exactly what it coded, for text and for arbitrary bytes")
    func compactTextRoundTrip() throws {
        for note in Self.notes {
            let bytes = Array(note.utf8)
            let coded = CompactText.encode(bytes)
            #expect(coded.count <= bytes.count * 3 / 4, "\(coded.count) of \(bytes.count) bytes")
            #expect(CompactText.decode(coded, count: bytes.count) == bytes)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(CompactText.decode(CompactText.encode(bytes), count: bytes.count) == bytes)
        }
    }

    @Test("decoding untrusted bytes never traps and refuses what runs short")
    func compactTextUntrusted() {
        #expect(CompactText.decode([], count: 1) == nil)
        #expect(CompactText.decode([0xFF, 0xFF], count: 50) == nil)
        #expect(CompactText.decode([1, 2, 3], count: -1) == nil)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = CompactText.decode(bytes, count: Int.random(in: 0...80, using: &generator))
            _ = Sketch.decode([2, UInt8.random(in: 0...2, using: &generator)] + bytes)
        }
    }

    @Test("the software CRC32C gives the standard check value")
    func crc() {
        #expect(SoftwareCRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("a short note's sketch holds its text and metadata verbatim, and round-trips through its bytes")
    func verbatim() throws {
        let metadata = Array(#"{"person":"maya","date":"2026-03-14"}"#.utf8)
        for note in Self.notes {
            let sketch = Sketch.make(fragment: note, metadata: metadata, verbatimAllowed: true, idf: { _ in 1 })
            let verbatim = try #require(sketch.verbatim)
            #expect(verbatim.content == note && verbatim.metadata == metadata && verbatim.verifies)
            let decoded = try #require(Sketch.decode(sketch.encode()))
            #expect(decoded == sketch)
            #expect(decoded.terms.count == Set(Tokenizer.hashes(note)).count, "a verbatim sketch keeps every term")
        }
    }

    @Test("a damaged verbatim sketch never passes as the text: it fails to decode or to verify")
    func damagedVerbatim() throws {
        let sketch = Sketch.make(fragment: Self.notes[0], metadata: Array("{}".utf8), verbatimAllowed: true, idf: { _ in 1 })
        let bytes = sketch.encode()
        for index in 2..<bytes.count {
            var damaged = bytes
            damaged[index] ^= 0x10
            if let decoded = Sketch.decode(damaged), let verbatim = decoded.verbatim {
                #expect(!verbatim.verifies || verbatim.content == Self.notes[0] && verbatim.metadata == Array("{}".utf8), "byte \(index)")
            }
        }
    }

    @Test("no verbatim form when the text is over the budget or the record holds a client vector")
    func verbatimLimits() {
        let long = String(repeating: "The release checklist names every step the on-call engineer takes. ", count: 6)
        #expect(Sketch.make(fragment: long, metadata: Array("{}".utf8), verbatimAllowed: true, idf: { _ in 1 }).verbatim == nil)
        #expect(Sketch.make(fragment: Self.notes[0], metadata: Array("{}".utf8), verbatimAllowed: false, idf: { _ in 1 }).verbatim == nil)
    }

    @Test("a longer text's sketch keeps its characteristic words as written, in the order they appear")
    func surfaceWords() throws {
        let text = String(repeating: "Filler words about nothing much at all, repeated. ", count: 6)
            + "Priya booked the Lisbon flights for June; Anika's violin recital is on the 14th."
        let sketch = Sketch.make(fragment: text, metadata: Array("{}".utf8), verbatimAllowed: true, idf: { _ in 1 })
        #expect(sketch.verbatim == nil)
        let words = sketch.surface.map(\.word)
        #expect(words.contains("Lisbon") && words.contains("Priya") && words.contains("violin"))
        let written = Tokenizer.words(text)
        let positions = words.compactMap { written.firstIndex(of: $0) }
        #expect(positions.count == words.count && positions == positions.sorted(), "in order of first appearance")
        let decoded = try #require(Sketch.decode(sketch.encode()))
        #expect(decoded.surface.map(\.word) == words)
        #expect(Set(decoded.terms.map(\.hash)) == Set(sketch.terms.map(\.hash)))
    }

    @Test("sketches of the first format still decode, and are written back in it")
    func firstFormat() throws {
        let old = Sketch.make("compress files with gzip and decompress them again", idf: { _ in 1 })
        let bytes = old.encode()
        #expect(bytes.first == 1)
        #expect(try #require(Sketch.decode(bytes)) == old)
    }
}

@Suite("Time expressions")
struct TimeExpressionTests {
    @Test("notes that say when: dates, days, months, years, relative periods")
    func mentions() {
        #expect(TimeExpressions.mentionsTime("Maya moved to Bristol on 28 March 2026."))
        #expect(TimeExpressions.mentionsTime("The race is on Saturday."))
        #expect(TimeExpressions.mentionsTime("Booked for 2026-07-10."))
        #expect(TimeExpressions.mentionsTime("She started last week."))
        #expect(!TimeExpressions.mentionsTime("Maya is allergic to peanuts and carries an EpiPen."))
        #expect(!TimeExpressions.mentionsTime("Room 1234 on floor 3."))
    }

    @Test("questions that ask when")
    func asks() {
        #expect(TimeExpressions.asksWhen("When did Jonas start at Kestrel?"))
        #expect(TimeExpressions.asksWhen("On which day is the race?"))
        #expect(TimeExpressions.asksWhen("How long is the flight?"))
        #expect(!TimeExpressions.asksWhen("What can't Maya eat?"))
        #expect(!TimeExpressions.asksWhen(""))
    }
}
