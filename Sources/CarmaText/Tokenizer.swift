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
        self.forEachTerm(text) { result.append($0) }
        return result
    }

    /// The term hashes of `text`, in order.
    public static func hashes(_ text: String) -> [UInt32] {
        var result: [UInt32] = []
        self.forEachTerm(text) { result.append(Self.hash($0)) }
        return result
    }

    static func forEachTerm(_ text: String, _ body: (String) -> Void) {
        var current = String.UnicodeScalarView()
        func flush() {
            defer { current.removeAll(keepingCapacity: true) }
            guard current.count >= 2, current.count <= maxTermLength else { return }
            let word = String(current)
            guard !stopWords.contains(word) else { return }
            body(stem(word))
        }
        for scalar in text.unicodeScalars {
            if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                for lower in scalar.properties.lowercaseMapping.unicodeScalars { current.append(lower) }
            } else {
                flush()
            }
        }
        flush()
    }

    /// Strips a few common English suffixes, then a final "e", so that "file", "files", "filed" and
    /// "filing" all become "fil". Never leaves fewer than three characters; leaves non-ASCII alone.
    static func stem(_ word: String) -> String {
        guard word.unicodeScalars.allSatisfy({ $0.isASCII }), word.utf8.count >= 4 else { return word }
        var stem = word
        if word.utf8.count > 4 {
            for suffix in ["ations", "ation", "ings", "ing", "ies", "ied", "es", "ers", "er", "ed", "ly", "s"] {
                guard word.hasSuffix(suffix), word.utf8.count - suffix.utf8.count >= 3 else { continue }
                let base = String(word.dropLast(suffix.utf8.count))
                switch suffix {
                case "ies", "ied": stem = base + "y"
                case "es":
                    // Only after s, x, z, ch or sh ("classes", "boxes"); otherwise it is a plain "s".
                    guard ["s", "x", "z", "ch", "sh"].contains(where: { base.hasSuffix($0) }) else { continue }
                    stem = base
                case "s":
                    guard !word.hasSuffix("ss"), !word.hasSuffix("us") else { continue }
                    stem = base
                default: stem = base
                }
                break
            }
        }
        if stem.hasSuffix("e"), stem.utf8.count >= 4 { stem.removeLast() }
        return stem
    }

    /// FNV-1a, 32 bits.
    public static func hash(_ term: String) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in term.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
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

extension String {
    func trimmingWhitespace() -> String {
        let scalars = self.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
