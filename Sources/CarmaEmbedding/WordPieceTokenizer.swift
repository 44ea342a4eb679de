import Foundation

/// BERT's uncased tokenizer: the basic pass (drop control characters, split Chinese characters, lower
/// case, strip accents, split off punctuation) and then greedy longest-match WordPiece over
/// `vocab.txt`. The same steps as scripts/minilm.py, which the tests compare against.
struct WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    let classify: Int32
    let separator: Int32
    let unknown: Int32

    init(vocabularyFile path: String) throws(EmbeddingModelError) {
        let text = try ModelFile.text(path, maxBytes: 16 << 20)
        var vocabulary: [String: Int32] = [:]
        var index: Int32 = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty, vocabulary[token] == nil { vocabulary[token] = index }
            index += 1
        }
        guard let classify = vocabulary["[CLS]"], let separator = vocabulary["[SEP]"], let unknown = vocabulary["[UNK]"] else {
            throw .malformed(path, "the vocabulary lacks [CLS], [SEP] or [UNK]")
        }
        self.vocabulary = vocabulary
        self.classify = classify
        self.separator = separator
        self.unknown = unknown
    }

    var vocabularySize: Int { (self.vocabulary.values.max().map(Int.init) ?? -1) + 1 }

    /// Token ids for `text`: [CLS], word pieces, [SEP], cut to `maxTokens` in all.
    func tokenIDs(_ text: String, maxTokens: Int) -> [Int32] {
        var ids: [Int32] = [self.classify]
        let budget = max(2, maxTokens) - 1
        // A word is at least one token: the first maxTokens words are all that can be used.
        for word in Self.basicTokens(text, limit: maxTokens) {
            guard ids.count < budget else { break }
            ids.append(contentsOf: self.wordPieces(word))
        }
        if ids.count > budget { ids.removeLast(ids.count - budget) }
        ids.append(self.separator)
        return ids
    }

    func wordPieces(_ word: String) -> [Int32] {
        let scalars = Array(word.unicodeScalars)
        guard scalars.count <= 100 else { return [self.unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var piece = start == 0 ? "" : "##"
                piece.unicodeScalars.append(contentsOf: scalars[start..<end])
                if let id = self.vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [self.unknown] }
            pieces.append(found)
            start = end
        }
        return pieces
    }

    /// The basic pass: words and single punctuation marks, lower-cased, accents stripped; stops
    /// once `limit` of them are found (the text is not read further).
    static func basicTokens(_ text: String, limit: Int = .max) -> [String] {
        var cleaned = String.UnicodeScalarView()
        var words = 0
        var inWord = false
        for scalar in text.unicodeScalars {
            // Enough words for `limit` tokens (punctuation splits only add tokens): stop reading.
            let space = scalar.properties.isWhitespace
            if !space, !inWord {
                words += 1
                if words > limit { break }
            }
            inWord = !space
            let value = scalar.value
            if value == 0 || value == 0xFFFD { continue }
            let category = scalar.properties.generalCategory
            if scalar == "\t" || scalar == "\n" || scalar == "\r" || category == .spaceSeparator {
                cleaned.append(" ")
            } else if category == .control || category == .format {
                continue
            } else if isCJK(value) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var tokens: [String] = []
        for word in String(cleaned).split(separator: " ") {
            var lowered = word.lowercased()
            if !lowered.utf8.allSatisfy({ $0 < 0x80 }) {
                lowered = String(String.UnicodeScalarView(
                    lowered.decomposedStringWithCanonicalMapping.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }))
            }
            var current = String.UnicodeScalarView()
            for scalar in lowered.unicodeScalars {
                if isPunctuation(scalar) {
                    if !current.isEmpty { tokens.append(String(current)) }
                    tokens.append(String(scalar))
                    current = String.UnicodeScalarView()
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { tokens.append(String(current)) }
            if tokens.count >= limit { break }
        }
        return tokens
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isCJK(_ value: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) || (0x20000...0x2A6DF).contains(value)
            || (0x2A700...0x2B73F).contains(value) || (0x2B740...0x2B81F).contains(value) || (0x2B820...0x2CEAF).contains(value)
            || (0xF900...0xFAFF).contains(value) || (0x2F800...0x2FA1F).contains(value)
    }
}
