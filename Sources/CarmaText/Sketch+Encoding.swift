// The registry's bytes of a sketch. Read from disk, so decoding trusts nothing: any malformed input
// gives nil, never a trap.
//
// Format 2 (written now):
//   2, form
//   form 0 (terms):    n, then n × (count, word length, word bytes as written); 64 vector bytes;
//                      words (u32 LE); bytes (u32 LE). A term's hash is derived from its word.
//   form 1 (verbatim): checksum (u32 LE), content length (varint), metadata length (varint), then
//                      content followed by metadata, coded with CompactText.
// Format 1 (read; written again only for a sketch decoded from it): 1, n, n × (hash u32 LE, count), 64 vector bytes, words, bytes.

extension Sketch {
    public func encode() -> [UInt8] {
        if let verbatim = self.verbatim {
            let content = Array(verbatim.content.utf8)
            var bytes: [UInt8] = [Self.formatVersion, 1]
            Self.append32(verbatim.checksum, to: &bytes)
            Self.appendVarint(content.count, to: &bytes)
            Self.appendVarint(verbatim.metadata.count, to: &bytes)
            bytes.append(contentsOf: CompactText.encode(content + verbatim.metadata))
            return bytes
        }
        if self.surface.isEmpty, !self.terms.isEmpty { return self.encodeFirstFormat() }
        var bytes: [UInt8] = [Self.formatVersion, 0]
        let spelled = Dictionary(self.surface.map { ($0.hash, $0.word) }, uniquingKeysWith: { first, _ in first })
        let counts = Dictionary(self.terms.map { ($0.hash, $0.count) }, uniquingKeysWith: { first, _ in first })
        // Terms whose spelling is known, in text order; a term without one cannot be written in this
        // format and is left out (it could only come from a first-format sketch).
        let entries = self.surface.filter { counts[$0.hash] != nil }.prefix(255)
        bytes.append(UInt8(entries.count))
        for entry in entries {
            let word = Array((spelled[entry.hash] ?? entry.word).utf8.prefix(255))
            bytes.append(counts[entry.hash] ?? 1)
            bytes.append(UInt8(word.count))
            bytes.append(contentsOf: word)
        }
        bytes.append(contentsOf: self.vector.map { UInt8(bitPattern: $0) })
        Self.append32(UInt32(min(self.words, Int(UInt32.max))), to: &bytes)
        Self.append32(UInt32(min(self.bytes, Int(UInt32.max))), to: &bytes)
        return bytes
    }

    /// A sketch that knows its terms' hashes only (decoded from the first format) is written in it.
    private func encodeFirstFormat() -> [UInt8] {
        var bytes: [UInt8] = [Self.termsFormat, UInt8(min(self.terms.count, 255))]
        for term in self.terms.prefix(255) {
            Self.append32(term.hash, to: &bytes)
            bytes.append(term.count)
        }
        bytes.append(contentsOf: self.vector.map { UInt8(bitPattern: $0) })
        Self.append32(UInt32(min(self.words, Int(UInt32.max))), to: &bytes)
        Self.append32(UInt32(min(self.bytes, Int(UInt32.max))), to: &bytes)
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) -> Sketch? {
        guard bytes.count >= 2 else { return nil }
        switch bytes[0] {
        case termsFormat: return self.decodeFirstFormat(bytes)
        case formatVersion where bytes[1] == 0: return self.decodeTerms(bytes)
        case formatVersion where bytes[1] == 1: return self.decodeVerbatim(bytes)
        default: return nil
        }
    }

    private static func decodeVerbatim(_ bytes: [UInt8]) -> Sketch? {
        var at = 2
        guard let checksum = Self.read32(bytes, &at), let contentLength = Self.readVarint(bytes, &at),
            let metadataLength = Self.readVarint(bytes, &at), contentLength + metadataLength <= verbatimBudget * 4,
            let decoded = CompactText.decode(bytes[at...], count: contentLength + metadataLength),
            let content = String(validating: decoded[..<contentLength], as: UTF8.self)
        else { return nil }
        var verbatim = Verbatim(content: content, metadata: Array(decoded[contentLength...]))
        // Keep the checksum that was stored: a mismatch must show as `verifies == false`.
        verbatim.checksum = checksum
        return self.verbatim(verbatim)
    }

    private static func decodeTerms(_ bytes: [UInt8]) -> Sketch? {
        guard bytes.count >= 3 else { return nil }
        var at = 3
        let count = Int(bytes[2])
        var terms: [(hash: UInt32, count: UInt8)] = []
        var surface: [(word: String, hash: UInt32)] = []
        for _ in 0..<count {
            guard at + 2 <= bytes.count else { return nil }
            let termCount = bytes[at], length = Int(bytes[at + 1])
            at += 2
            guard at + length <= bytes.count, let word = String(validating: bytes[at..<(at + length)], as: UTF8.self) else { return nil }
            at += length
            let hashes = Tokenizer.hashes(word)
            guard hashes.count == 1 else { return nil }
            terms.append((hashes[0], termCount))
            surface.append((word, hashes[0]))
        }
        guard bytes.count == at + dimensions + 8 else { return nil }
        let vector = bytes[at..<(at + dimensions)].map { Int8(bitPattern: $0) }
        at += dimensions
        guard let words = Self.read32(bytes, &at), let size = Self.read32(bytes, &at) else { return nil }
        return Sketch(terms: terms, vector: vector, words: Int(words), bytes: Int(size), surface: surface)
    }

    private static func decodeFirstFormat(_ bytes: [UInt8]) -> Sketch? {
        let count = Int(bytes[1])
        guard bytes.count == 2 + count * 5 + dimensions + 8 else { return nil }
        var at = 2
        var terms: [(hash: UInt32, count: UInt8)] = []
        for _ in 0..<count {
            guard let hash = Self.read32(bytes, &at) else { return nil }
            terms.append((hash, bytes[at]))
            at += 1
        }
        let vector = bytes[at..<(at + dimensions)].map { Int8(bitPattern: $0) }
        at += dimensions
        guard let words = Self.read32(bytes, &at), let size = Self.read32(bytes, &at) else { return nil }
        return Sketch(terms: terms, vector: vector, words: Int(words), bytes: Int(size))
    }

    private static func append32(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private static func read32(_ bytes: [UInt8], _ at: inout Int) -> UInt32? {
        guard at + 4 <= bytes.count else { return nil }
        defer { at += 4 }
        return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    private static func appendVarint(_ value: Int, to bytes: inout [UInt8]) {
        var rest = UInt(value)
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private static func readVarint(_ bytes: [UInt8], _ at: inout Int) -> Int? {
        var value = 0
        for shift in stride(from: 0, through: 21, by: 7) {
            guard at < bytes.count else { return nil }
            let byte = bytes[at]
            at += 1
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }
}
