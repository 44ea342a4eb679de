import CarmaText

/// The benchmark's million vectors, each a pure function of its number (so a restart regenerates
/// the same ones):
///
/// - first, the model's embeddings of a sample of real texts (`real`), if a model was given;
/// - then planted neighbours: `queriesPerSet` groups of 10 vectors around a random direction
///   (cosine about 0.85 to it); each group's query is that direction moved a little, so its true
///   neighbours are known to be close and the rest far;
/// - the rest clustered as sentence embeddings are: 20,000 topics (one per 50 vectors), every topic
///   direction sharing a common component (unrelated embeddings of one model have a cosine of about
///   0.1 to 0.2, not 0), members scattered about their topic (cosine about 0.5 to each other). A
///   clustered query is a member moved a little: its neighbours are found by the exact scan, not assumed.
///
/// Tags: every 10th fragment "p10", every 100th "p1", every 1,000th "p01", for filtered queries.
struct SyntheticVectors {
    let dimensions: Int
    let count: Int
    let queriesPerSet: Int
    var real: [[Int8]] = []
    private var topics: [[Float]] = []
    private let common: [Float]

    init(dimensions: Int, count: Int, queriesPerSet: Int) {
        self.dimensions = dimensions
        self.count = count
        self.queriesPerSet = queriesPerSet
        var random = Random(seed: 0xC0FFEE)
        self.common = Self.unit((0..<dimensions).map { _ in random.gaussian() })
        let topicCount = max(1, count / 50)
        self.topics = (0..<topicCount).map { topic in
            var random = Random(seed: 0x7091C000 &+ UInt64(topic))
            let own = Self.unit((0..<dimensions).map { _ in random.gaussian() })
            return Self.unit(zip(own, self.common).map { $0 + 0.4 * $1 })
        }
    }

    var plantedStart: Int { self.real.count }
    var clusteredStart: Int { self.real.count + self.queriesPerSet * 10 }

    func vector(_ n: Int) -> (int8: [Int8], float: [Float]) {
        if n < self.real.count {
            let vector = self.real[n]
            return (vector, TextIndex.unit(vector))
        }
        var random = Random(seed: 0x5EED0000 &+ UInt64(n))
        let float: [Float]
        if n < self.clusteredStart {
            // Planted: its group's direction, moved by 0.6 of its length (cosine about 0.85).
            let centre = self.plantedCentre((n - self.plantedStart) / 10)
            float = Self.moved(centre, by: 0.6, &random)
        } else {
            let topic = self.topics[Int(UInt64(n).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15).low % UInt64(self.topics.count))]
            float = Self.moved(topic, by: 0.9, &random)
        }
        return (TextIndex.quantize(float), float)
    }

    func plantedCentre(_ group: Int) -> [Float] {
        var random = Random(seed: 0xCE17_0000 &+ UInt64(group))
        return Self.unit((0..<self.dimensions).map { _ in random.gaussian() })
    }

    var plantedQueries: [[Int8]] {
        (0..<self.queriesPerSet).map { group in
            var random = Random(seed: 0x9E_0000 &+ UInt64(group))
            return TextIndex.quantize(Self.moved(self.plantedCentre(group), by: 0.3, &random))
        }
    }

    /// Members of the clustered part, evenly spread, each moved a little.
    var clusteredFloatQueries: [[Float]] {
        let step = max(1, (self.count - self.clusteredStart) / max(1, self.queriesPerSet))
        return (0..<self.queriesPerSet).map { q in
            var random = Random(seed: 0x0C1_0000 &+ UInt64(q))
            return Self.moved(self.vector(self.clusteredStart + q * step + 7).float, by: 0.5, &random)
        }
    }

    var clusteredQueries: [[Int8]] { self.clusteredFloatQueries.map(TextIndex.quantize) }

    mutating func rewind() {}

    private static let tagSets: [[String]] = [[], ["p10"], ["p10", "p1"], ["p10", "p1", "p01"]]

    static func tags(of n: Int) -> [String] {
        n % 1000 == 0 ? tagSets[3] : n % 100 == 0 ? tagSets[2] : n % 10 == 0 ? tagSets[1] : tagSets[0]
    }

    /// A unit vector `distance` away from unit `base` in a random direction (noise of that norm).
    static func moved(_ base: [Float], by distance: Float, _ random: inout Random) -> [Float] {
        let noise = Self.unit(base.map { _ in random.gaussian() })
        return Self.unit(zip(base, noise).map { $0 + distance * $1 })
    }

    static func unit(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }
}

/// splitmix64, and Gaussians by Box–Muller.
struct Random {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func gaussian() -> Float {
        let u = Float(self.next() >> 40 | 1) / Float(1 << 24)
        let v = Float(self.next() >> 40) / Float(1 << 24)
        return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
    }
}

#if canImport(Glibc)
import Glibc
#endif
