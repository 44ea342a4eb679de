/// What the registry keeps of a fragment's text, so that it can be found and rebuilt when the text
/// itself is lost.
///
/// Two forms, chosen by size:
/// - **verbatim**: a fragment whose content and metadata together fit `verbatimBudget` bytes (an
///   agent's note usually does) keeps the text itself, coded with `CompactText`, and its CRC32C.
///   Recovery from it is exact. Terms, vector and counts are derived from the text.
/// - **terms**: a longer fragment keeps its most characteristic words as written (the first spelling
///   met), in the order they first appear, with their counts, plus a compact 64-dimension vector of
///   the whole text and its size. Reconstruction aims at these words and can put back the ones no
///   surviving fragment says.
///
/// Sizes, measured by `SketchSizeTests` on short notes and on man-page text: a verbatim sketch costs
/// 6 bytes plus about 62% of the text; the older term sketch cost 74 bytes plus 5 per term (32 at
/// most), so for text within the budget the verbatim form is never larger than the term form was.
public struct Sketch: Sendable, Equatable {
    public static let maxTerms = 32
    public static let dimensions = 64
    /// Largest content plus metadata, in UTF-8 bytes, kept verbatim (see the type's comment).
    public static let verbatimBudget = 320
    static let termsFormat: UInt8 = 1
    static let formatVersion: UInt8 = 2

    /// The exact text of a short fragment, with its metadata as canonical JSON, and a checksum of
    /// both (CRC32C of the content's UTF-8 bytes followed by the metadata bytes).
    public struct Verbatim: Sendable, Equatable {
        public var content: String
        public var metadata: [UInt8]
        public var checksum: UInt32

        public init(content: String, metadata: [UInt8]) {
            self.content = content
            self.metadata = metadata
            self.checksum = SoftwareCRC32C.checksum(Array(content.utf8) + metadata)
        }

        /// Whether the text still matches the checksum kept with it.
        public var verifies: Bool { SoftwareCRC32C.checksum(Array(self.content.utf8) + self.metadata) == self.checksum }
    }

    /// Term hashes and their counts in the text (capped at 255), most characteristic first.
    public var terms: [(hash: UInt32, count: UInt8)]
    /// A signed random projection of the text's term weights, quantized to Int8.
    public var vector: [Int8]
    /// Number of terms in the text.
    public var words: Int
    /// UTF-8 bytes of the text.
    public var bytes: Int
    /// The kept terms as written in the text, in the order they first appear there (each with its
    /// term hash); empty for a sketch of the first format, which kept hashes only.
    public var surface: [(word: String, hash: UInt32)]
    /// The whole text, when it fits the budget.
    public var verbatim: Verbatim?

    public init(
        terms: [(hash: UInt32, count: UInt8)], vector: [Int8], words: Int, bytes: Int, surface: [(word: String, hash: UInt32)] = [],
        verbatim: Verbatim? = nil
    ) {
        self.terms = terms
        self.vector = vector
        self.words = words
        self.bytes = bytes
        self.surface = surface
        self.verbatim = verbatim
    }

    public static func == (lhs: Sketch, rhs: Sketch) -> Bool {
        lhs.terms.map(\.hash) == rhs.terms.map(\.hash) && lhs.terms.map(\.count) == rhs.terms.map(\.count)
            && lhs.vector == rhs.vector && lhs.words == rhs.words && lhs.bytes == rhs.bytes
            && lhs.surface.map(\.word) == rhs.surface.map(\.word) && lhs.surface.map(\.hash) == rhs.surface.map(\.hash)
            && lhs.verbatim == rhs.verbatim
    }

    /// Sketches a text (terms form, never verbatim: for comparing texts).
    /// - Parameters:
    ///   - text: The content.
    ///   - idf: Inverse document frequency of a term hash in the store now; picks the terms that
    ///     characterize this text against the rest.
    public static func make(_ text: String, idf: (UInt32) -> Double) -> Sketch {
        let counted = Self.count(text)
        return Self.make(counts: counted.counts, words: counted.words, bytes: text.utf8.count, idf: idf)
    }

    /// Sketches a fragment's text for the registry: verbatim when content and metadata fit the
    /// budget and `verbatimAllowed`, else the terms form with the words as written.
    /// - Parameters:
    ///   - text: The content.
    ///   - metadata: The fragment's metadata as the record writes it (canonical JSON).
    ///   - verbatimAllowed: False to keep the terms form whatever the size.
    ///   - idf: As for `make(_:idf:)`.
    public static func make(fragment text: String, metadata: [UInt8], verbatimAllowed: Bool, idf: (UInt32) -> Double) -> Sketch {
        Self.make(fragment: text, metadata: metadata, verbatimAllowed: verbatimAllowed) { hashes in
            Dictionary(uniqueKeysWithValues: hashes.map { ($0, idf($0)) })
        }
    }

    /// As `make(fragment:metadata:verbatimAllowed:idf:)`, with the idf of the text's terms looked
    /// up at once (`idfOf` gets each distinct term hash, and is called only for the terms form), so
    /// that a caller can read them under one lock.
    public static func make(
        fragment text: String, metadata: [UInt8], verbatimAllowed: Bool, idfOf: ([UInt32]) -> [UInt32: Double]
    ) -> Sketch {
        if verbatimAllowed, text.utf8.count + metadata.count <= verbatimBudget {
            return Self.verbatim(Verbatim(content: text, metadata: metadata))
        }
        let counted = Self.count(text)
        let idf = idfOf(Array(counted.counts.keys))
        var sketch = Self.make(counts: counted.counts, words: counted.words, bytes: text.utf8.count, idf: { idf[$0] ?? 1 })
        sketch.surface = Self.surface(of: text, keeping: Set(sketch.terms.map(\.hash)))
        return sketch
    }

    /// The sketch of a verbatim text: every term, weighed by its count alone, so that the same text
    /// always gives the same sketch (it is derived again when decoded).
    static func verbatim(_ verbatim: Verbatim) -> Sketch {
        let counted = Self.count(verbatim.content)
        var sketch = Self.make(counts: counted.counts, words: counted.words, bytes: verbatim.content.utf8.count, idf: { _ in 1 })
        // No `surface`: the text itself says every word (and this runs for every note at start-up).
        sketch.verbatim = verbatim
        return sketch
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

    /// The first spelling of each kept term in the text, in order of first appearance.
    static func surface(of text: String, keeping kept: Set<UInt32>) -> [(word: String, hash: UInt32)] {
        var result: [(word: String, hash: UInt32)] = []
        var seen = Set<UInt32>()
        for word in Tokenizer.words(text) {
            let hashes = Tokenizer.hashes(word)
            guard hashes.count == 1, let hash = hashes.first, kept.contains(hash), seen.insert(hash).inserted else { continue }
            result.append((word, hash))
        }
        return result
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
}
