import CarmaText

/// The benchmark's million vectors, each a pure function of its number (so a restart regenerates
/// the same ones):
///
/// - first, the model's embeddings of a sample of real texts (`real`), if a model was given;
/// - the rest clustered as sentence embeddings are: 20,000 topics (one per 50 vectors), members
///   scattered about their topic (cosine about 0.55 to each other). With the model's sample, each
///   topic is one of its real embeddings moved by 0.8 (so the synthetic vectors fill the model's own
///   region of the space, around the real ones, and the sample is no island); without, topics are
///   random directions sharing a common component (unrelated embeddings of one model have a cosine
///   of about 0.1 to 0.2, not 0). A clustered query is a member moved a little: its neighbours are
///   found by the exact scan, not assumed;
/// - among them, planted neighbours: `queriesPerSet` groups of 10 vectors close around a point of
///   some topic (cosine about 0.94 to it, where the topic's other members are about 0.55 away);
///   each group's query is that point moved a little, so its 10 nearest are known.
///
/// Random vectors scattered over the whole sphere with planted groups among them would make each
/// group an island that no path of the graph leads to (everything else is equally far): no
/// embedding model's output looks like that, and a graph index finds such islands only by luck.
///
/// Tags: every 10th fragment "p10", every 100th "p1", every 1,000th "p01", for filtered queries.
struct SyntheticVectors {
    let dimensions: Int
    let count: Int
    let queriesPerSet: Int
    let real: [[Int8]]
    private var topics: [[Float]] = []
    private let common: [Float]

    init(dimensions: Int, count: Int, queriesPerSet: Int, real: [[Int8]]) {
        self.dimensions = dimensions
        self.count = count
        self.queriesPerSet = queriesPerSet
        self.real = real
        var random = Random(seed: 0xC0FFEE)
        self.common = Self.unit((0..<dimensions).map { _ in random.gaussian() })
        let topicCount = max(1, count / 50)
        let anchors = real.map(TextIndex.unit)
        self.topics = (0..<topicCount).map { [common] topic in
            var random = Random(seed: 0x7091C000 &+ UInt64(topic))
            if !anchors.isEmpty { return Self.moved(anchors[topic % anchors.count], by: 0.8, &random) }
            let own = Self.unit((0..<dimensions).map { _ in random.gaussian() })
            return Self.unit(zip(own, common).map { $0 + 0.4 * $1 })
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
            // Planted: its group's point, moved by 0.35 (cosine about 0.94).
            let centre = self.plantedCentre((n - self.plantedStart) / 10)
            float = Self.moved(centre, by: 0.35, &random)
        } else {
            let topic = self.topics[Int(UInt64(n).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15).low % UInt64(self.topics.count))]
            float = Self.moved(topic, by: 0.9, &random)
        }
        return (TextIndex.quantize(float), float)
    }

    /// A point of a topic, as a member would be.
    func plantedCentre(_ group: Int) -> [Float] {
        var random = Random(seed: 0xCE17_0000 &+ UInt64(group))
        return Self.moved(self.topics[(group &* 7919) % self.topics.count], by: 0.9, &random)
    }

    var plantedQueries: [[Int8]] {
        (0..<self.queriesPerSet).map { group in
            var random = Random(seed: 0x9E_0000 &+ UInt64(group))
            return TextIndex.quantize(Self.moved(self.plantedCentre(group), by: 0.2, &random))
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

/// Gaussians by Box–Muller from the seeded generator.
typealias Random = SplitMix64

extension SplitMix64 {
    mutating func gaussian() -> Float {
        let u = Float(self.next() >> 40 | 1) / Float(1 << 24)
        let v = Float(self.next() >> 40) / Float(1 << 24)
        return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
    }
}

#if canImport(Glibc)
import Glibc
#endif
