/// Splits text into normalized terms and into sentences. Deterministic and locale-independent.
///
/// A term is a run of letters and digits (Unicode-aware), lowercased, with a light English suffix
/// stripping so that "files", "filed" and "filing" meet; stop words and one-character runs are
/// dropped. Terms are identified by a 32-bit FNV-1a hash, which is what sketches and the index keep.
public enum Tokenizer {
    public static let maxTermLength = 32

    /// The terms of `text`, in order, as strings (for inspection and tests).
    public static func terms(_ text: String) -> [String] {
        var result: [String] = []
        self.forEachTerm(text) { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    /// The words of `text` as written: runs of letters and digits, in order.
    public static func words(_ text: String) -> [String] {
        var result: [String] = []
        var current = ""
        for character in text {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                result.append(current)
                current = ""
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// The term hashes of `text`, in order.
    public static func hashes(_ text: String) -> [UInt32] {
        var result: [UInt32] = []
        self.forEachTerm(text) { result.append(Self.hash($0)) }
        return result
    }

    /// Calls `body` with the UTF-8 bytes of each term. ASCII text (the common case) is handled byte
    /// by byte without building strings; a word with other characters goes through Unicode case
    /// mapping and properties.
    static func forEachTerm(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var scanner = WordScanner()
        var utf8 = text.utf8
        let handled: Void? = utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes { scanner.step(byte, body) }
        }
        if handled == nil {
            utf8 = text.utf8
            for byte in utf8 { scanner.step(byte, body) }
        }
        scanner.flush(body)
    }

    /// Collects the bytes of one word at a time.
    private struct WordScanner {
        var word: [UInt8] = []
        var ascii = true

        init() {
            self.word.reserveCapacity(64)
        }

        @inline(__always)
        mutating func step(_ byte: UInt8, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                self.word.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                self.word.append(byte + 32)
            case 0x80...:
                // Part of a non-ASCII character: keep it in the word and sort it out in `flush`.
                self.word.append(byte)
                self.ascii = false
            default:
                self.flush(body)
            }
        }

        mutating func flush(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
            defer {
                self.word.removeAll(keepingCapacity: true)
                self.ascii = true
            }
            guard !self.word.isEmpty else { return }
            if self.ascii {
                guard self.word.count >= 2, self.word.count <= maxTermLength, !stopWordHashes.contains(Tokenizer.hash(self.word)) else { return }
                Tokenizer.stem(&self.word)
                self.word.withUnsafeBufferPointer { body($0) }
            } else {
                Tokenizer.unicodeTerms(String(decoding: self.word, as: UTF8.self), body)
            }
        }
    }

    /// The slow path for a run of bytes that holds non-ASCII characters: split on characters that are
    /// neither letters nor digits, lowercase with Unicode's mapping.
    fileprivate static func unicodeTerms(_ run: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var current = String.UnicodeScalarView()
        func emit() {
            defer { current.removeAll(keepingCapacity: true) }
            guard current.count >= 2, current.count <= maxTermLength else { return }
            var bytes = Array(String(current).utf8)
            guard !stopWordHashes.contains(Self.hash(bytes)) else { return }
            Self.stem(&bytes)
            bytes.withUnsafeBufferPointer { body($0) }
        }
        for scalar in run.unicodeScalars {
            if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                for lower in scalar.properties.lowercaseMapping.unicodeScalars { current.append(lower) }
            } else {
                emit()
            }
        }
        emit()
    }

    /// Light English stemming on lowercase ASCII bytes, in place: strips a few common suffixes
    /// ("ies"/"ied" become "y"), then a final "e", so that "file", "files", "filed" and "filing" all
    /// become "fil". Never leaves fewer than three characters; leaves non-ASCII words alone.
    static func stem(_ word: inout [UInt8]) {
        guard word.count >= 4, word.allSatisfy({ $0 < 0x80 }) else { return }
        if word.count > 4 {
            for suffix in suffixes {
                guard word.count - suffix.count >= 3, word.ends(with: suffix) else { continue }
                let base = word.count - suffix.count
                if suffix == esSuffix {
                    // Only after s, x, z, ch or sh ("classes", "boxes"); otherwise it is a plain "s".
                    let last = word[base - 1]
                    let two = Array(word[(base - 2)..<base])
                    guard last == UInt8(ascii: "s") || last == UInt8(ascii: "x") || last == UInt8(ascii: "z") || two == Array("ch".utf8)
                        || two == Array("sh".utf8)
                    else { continue }
                } else if suffix == sSuffix {
                    guard !word.ends(with: Array("ss".utf8)), !word.ends(with: Array("us".utf8)) else { continue }
                }
                word.removeLast(suffix.count)
                if suffix == iesSuffix || suffix == iedSuffix {
                    word.append(UInt8(ascii: "y"))
                    return
                }
                break
            }
        }
        if word.count >= 4, word.last == UInt8(ascii: "e") { word.removeLast() }
    }

    /// The stem of a word (for tests and inspection).
    static func stem(_ word: String) -> String {
        var bytes = Array(word.utf8)
        Self.stem(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let esSuffix = Array("es".utf8)
    private static let sSuffix = Array("s".utf8)
    private static let iesSuffix = Array("ies".utf8)
    private static let iedSuffix = Array("ied".utf8)
    private static let suffixes: [[UInt8]] = ["ations", "ation", "ings", "ing", "ies", "ied", "es", "ers", "er", "ed", "ly", "s"].map { Array($0.utf8) }

    /// FNV-1a, 32 bits, of a term's UTF-8 bytes.
    public static func hash(_ term: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in term {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    static func hash(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { Self.hash($0) }
    }

    public static func hash(_ term: String) -> UInt32 {
        Self.hash(Array(term.utf8))
    }

    /// Sentence-like units: split at line breaks and after `.`, `!` or `?` followed by a space;
    /// units shorter than `minimumLength` characters are joined to the next one.
    public static func sentences(_ text: String, minimumLength: Int = 24) -> [String] {
        var units: [String] = []
        var current = ""
        var previous: Character = " "
        func close() {
            let trimmed = current.trimmingWhitespace()
            if !trimmed.isEmpty { units.append(trimmed) }
            current = ""
        }
        for character in text {
            if character == "\n" {
                close()
            } else if character == " ", previous == "." || previous == "!" || previous == "?" {
                close()
            } else {
                current.append(character)
            }
            previous = character
        }
        close()
        var merged: [String] = []
        var pending = ""
        for unit in units {
            pending = pending.isEmpty ? unit : pending + " " + unit
            if pending.count >= minimumLength {
                merged.append(pending)
                pending = ""
            }
        }
        if !pending.isEmpty {
            if let last = merged.popLast() { merged.append(last + " " + pending) } else { merged.append(pending) }
        }
        return merged
    }

    static let stopWordHashes: Set<UInt32> = Set(stopWords.map { Self.hash($0) })

    static let stopWords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
        "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does",
        "doing", "down", "during", "each", "either", "else", "etc", "few", "for", "from", "further", "had", "has", "have",
        "having", "he", "her", "here", "hers", "him", "his", "how", "however", "if", "in", "into", "is", "it", "its", "itself",
        "just", "may", "me", "might", "more", "most", "must", "my", "no", "nor", "not", "now", "of", "off", "on", "once",
        "one", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such",
        "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "thus",
        "to", "too", "under", "until", "up", "upon", "us", "use", "used", "using", "very", "via", "was", "we", "were", "what",
        "when", "where", "whether", "which", "while", "who", "whom", "why", "will", "with", "within", "without", "would",
        "yet", "you", "your", "yours",
    ]
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        self.count >= suffix.count && self[(self.count - suffix.count)...].elementsEqual(suffix)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = self.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
