/// The terms of the full-text (BM25) index. Unlike sketches, nothing is dropped: every run of
/// letters and digits counts, stop words and one-letter words included (BM25's idf weighs them), and
/// each word is indexed twice: as written (lower-cased) and as its stem, marked apart. An exact
/// match scores on both, an inflected one ("compressing" for "compresses") on the stem alone.
/// Measured on the project's query sets (docs/retrieval.md): known-item queries lost 9 points of hit@1 with
/// the sketch's stop words and stemming, and questions in other words gained 4 with stems; this
/// keeps both.
public enum FullText {
    /// XORed into a stem's hash so that "file" the word and "file" the stem of "files" are two terms.
    public static let stemMarker: UInt32 = 0x5BD1_E995

    /// Term hashes with their counts, and the number of terms (twice the words).
    public static func counts(_ text: String) -> (counts: [UInt32: Int], terms: Int) {
        var counts: [UInt32: Int] = [:]
        var terms = 0
        self.forEachWord(text) { word in
            guard word.count <= Tokenizer.maxTermLength else { return }
            counts[Tokenizer.hash(word), default: 0] += 1
            var stem = Array(word)
            Tokenizer.stem(&stem)
            counts[Tokenizer.hash(stem) ^ stemMarker, default: 0] += 1
            terms += 2
        }
        return (counts, terms)
    }

    /// The full-text term of a sketch term (sketches keep stems).
    public static func term(forSketchTerm hash: UInt32) -> UInt32 { hash ^ stemMarker }

    /// Calls `body` with each lower-cased run of letters and digits, as UTF-8.
    static func forEachWord(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var word: [UInt8] = []
        word.reserveCapacity(64)
        var ascii = true
        func flush() {
            defer {
                word.removeAll(keepingCapacity: true)
                ascii = true
            }
            guard !word.isEmpty else { return }
            if ascii {
                word.withUnsafeBufferPointer(body)
                return
            }
            // Non-ASCII: split on what is not alphanumeric, lower-case with Unicode's mapping.
            var current = String.UnicodeScalarView()
            func emit() {
                guard !current.isEmpty else { return }
                Array(String(current).utf8).withUnsafeBufferPointer(body)
                current.removeAll()
            }
            for scalar in String(decoding: word, as: UTF8.self).unicodeScalars {
                if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                    current.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                } else {
                    emit()
                }
            }
            emit()
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                word.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                word.append(byte + 32)
            case 0x80...:
                word.append(byte)
                ascii = false
            default:
                flush()
            }
        }
        flush()
    }
}
