/// What the registry keeps of a fragment's text, so that it can be found and rebuilt when the text
/// itself is lost: its most characteristic terms with their counts, a compact 64-dimension vector of
/// the whole text, and its size.
///
/// Encoded it takes 5 bytes per term (32 at most) plus 72: about 230 bytes, a fifth of a 1 KB
/// fragment and less for larger ones.
public struct Sketch: Sendable, Equatable {
    public static let maxTerms = 32
    public static let dimensions = 64
    static let formatVersion: UInt8 = 1

    /// Term hashes and their counts in the text (capped at 255), most characteristic first.
    public var terms: [(hash: UInt32, count: UInt8)]
    /// A signed random projection of the text's term weights, quantized to Int8.
    public var vector: [Int8]
    /// Number of terms in the text.
    public var words: Int
    /// UTF-8 bytes of the text.
    public var bytes: Int

    public init(terms: [(hash: UInt32, count: UInt8)], vector: [Int8], words: Int, bytes: Int) {
        self.terms = terms
        self.vector = vector
        self.words = words
        self.bytes = bytes
    }

    public static func == (lhs: Sketch, rhs: Sketch) -> Bool {
        lhs.terms.map(\.hash) == rhs.terms.map(\.hash) && lhs.terms.map(\.count) == rhs.terms.map(\.count)
            && lhs.vector == rhs.vector && lhs.words == rhs.words && lhs.bytes == rhs.bytes
    }

    /// Sketches a text.
    /// - Parameters:
    ///   - text: The content.
    ///   - idf: Inverse document frequency of a term hash in the store now; picks the terms that
    ///     characterize this text against the rest.
    public static func make(_ text: String, idf: (UInt32) -> Double) -> Sketch {
        let counted = Self.count(text)
        return Self.make(counts: counted.counts, words: counted.words, bytes: text.utf8.count, idf: idf)
    }

    /// Term counts of a text, and its number of terms.
    public static func count(_ text: String) -> (counts: [UInt32: Int], words: Int) {
        var counts: [UInt32: Int] = [:]
        var words = 0
        Tokenizer.forEachTerm(text) { term in
            counts[Tokenizer.hash(term), default: 0] += 1
            words += 1
        }
        return (counts, words)
    }

    /// Sketches from term counts already made (so that the caller can look up the idf of just these
    /// terms under its own lock).
    public static func make(counts: [UInt32: Int], words: Int, bytes: Int, idf: (UInt32) -> Double) -> Sketch {
        let weighted = counts.map { (hash: $0.key, count: $0.value, weight: Double($0.value) * idf($0.key)) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.hash < $1.hash }
        let terms = weighted.prefix(maxTerms).map { (hash: $0.hash, count: UInt8(min(255, $0.count))) }
        let vector = Self.project(weighted.map { ($0.hash, $0.weight) })
        return Sketch(terms: Array(terms), vector: vector, words: words, bytes: bytes)
    }

    /// Projects weighted terms onto `dimensions` signed axes (each term hash picks a sign per axis)
    /// and quantizes to Int8. Cosine similarity of two projections approximates that of the term
    /// vectors.
    public static func project(_ weights: [(UInt32, Double)]) -> [Int8] {
        var sums = [Double](repeating: 0, count: dimensions)
        for (hash, weight) in weights {
            var state = UInt64(hash) | 0x9E37_79B9_0000_0000
            for block in 0..<(dimensions / 64 + 1) {
                state = state &* 0x5851_F42D_4C95_7F2D &+ 0x1405_7B7E_F767_814F
                let bits = state ^ (state >> 29)
                for bit in 0..<64 where block * 64 + bit < dimensions {
                    sums[block * 64 + bit] += (bits >> UInt64(bit)) & 1 == 1 ? weight : -weight
                }
            }
        }
        let largest = sums.map(abs).max() ?? 0
        guard largest > 0 else { return [Int8](repeating: 0, count: dimensions) }
        return sums.map { Int8(($0 / largest * 127).rounded()) }
    }

    /// Cosine similarity of two quantized vectors, in [-1, 1].
    public static func cosine(_ a: [Int8], _ b: [Int8]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot = 0, na = 0, nb = 0
        for index in 0..<a.count {
            let x = Int(a[index]), y = Int(b[index])
            dot += x * y
            na += x * x
            nb += y * y
        }
        guard na > 0, nb > 0 else { return 0 }
        return Double(dot) / (Double(na).squareRoot() * Double(nb).squareRoot())
    }

    // MARK: Encoding

    public func encode() -> [UInt8] {
        var bytes: [UInt8] = [Self.formatVersion, UInt8(self.terms.count)]
        bytes.reserveCapacity(2 + self.terms.count * 5 + Self.dimensions + 8)
        for term in self.terms {
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: term.hash >> UInt32(shift))) }
            bytes.append(term.count)
        }
        bytes.append(contentsOf: self.vector.map { UInt8(bitPattern: $0) })
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: UInt32(min(self.words, Int(UInt32.max))) >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: UInt32(min(self.bytes, Int(UInt32.max))) >> UInt32(shift))) }
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) -> Sketch? {
        guard bytes.count >= 2, bytes[0] == formatVersion else { return nil }
        let count = Int(bytes[1])
        guard bytes.count == 2 + count * 5 + dimensions + 8 else { return nil }
        func word(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        var terms: [(hash: UInt32, count: UInt8)] = []
        for index in 0..<count {
            terms.append((word(2 + index * 5), bytes[2 + index * 5 + 4]))
        }
        let vectorStart = 2 + count * 5
        let vector = bytes[vectorStart..<(vectorStart + dimensions)].map { Int8(bitPattern: $0) }
        return Sketch(terms: terms, vector: vector, words: Int(word(vectorStart + dimensions)), bytes: Int(word(vectorStart + dimensions + 4)))
    }
}
