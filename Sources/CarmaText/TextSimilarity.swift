/// Lexical similarity between a reconstruction and its original, to measure (never to build)
/// reconstructions: token F1 and ROUGE-L F1 over the tokenizer's terms.
public enum TextSimilarity {
    /// F1 of the two bags of terms (multiset overlap).
    public static func tokenF1(_ candidate: String, _ reference: String) -> Double {
        let a = Tokenizer.hashes(candidate), b = Tokenizer.hashes(reference)
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var counts: [UInt32: Int] = [:]
        for hash in b { counts[hash, default: 0] += 1 }
        var overlap = 0
        for hash in a where counts[hash, default: 0] > 0 {
            counts[hash]! -= 1
            overlap += 1
        }
        guard overlap > 0 else { return 0 }
        let precision = Double(overlap) / Double(a.count), recall = Double(overlap) / Double(b.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// The share of the reference's distinct content words (terms: stop words left out) that the
    /// candidate contains: what of the lost text's substance came back, whatever else was added.
    public static func contentWordRecall(_ candidate: String, _ reference: String) -> Double {
        let wanted = Set(Tokenizer.hashes(reference))
        guard !wanted.isEmpty else { return 0 }
        return Double(wanted.intersection(Tokenizer.hashes(candidate)).count) / Double(wanted.count)
    }

    /// ROUGE-L F1: from the longest common subsequence of the two term sequences.
    public static func rougeL(_ candidate: String, _ reference: String) -> Double {
        let a = Tokenizer.hashes(candidate), b = Tokenizer.hashes(reference)
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        // Two rows of the LCS table; O(|a|·|b|) time, O(|b|) memory.
        var previous = [Int](repeating: 0, count: b.count + 1)
        var current = previous
        for i in 1...a.count {
            for j in 1...b.count {
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        let lcs = Double(previous[b.count])
        guard lcs > 0 else { return 0 }
        let precision = lcs / Double(a.count), recall = lcs / Double(b.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// Cosine of the two texts' sketch vectors (with uniform term weights).
    public static func sketchCosine(_ candidate: String, _ reference: String, idf: (UInt32) -> Double = { _ in 1 }) -> Double {
        Sketch.cosine(Sketch.make(candidate, idf: idf).vector, Sketch.make(reference, idf: idf).vector)
    }
}
