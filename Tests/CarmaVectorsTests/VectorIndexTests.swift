import CarmaText
import CarmaVectors
import Foundation
import Testing

/// Vectors for tests: random directions in `dimensions`, some with planted neighbours.
struct PlantedVectors {
    var generator: SplitMix64
    let dimensions: Int

    init(dimensions: Int, seed: UInt64 = 7) {
        self.dimensions = dimensions
        self.generator = SplitMix64(seed: seed)
    }

    mutating func random() -> [Float] {
        (0..<self.dimensions).map { _ in self.generator.gaussian() }
    }

    /// `base` moved by `noise` (relative) in a random direction.
    mutating func near(_ base: [Float], noise: Float) -> [Float] {
        let norm = base.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return base.map { $0 + self.generator.gaussian() * noise * norm / Float(self.dimensions).squareRoot() }
    }

    static func quantize(_ vector: [Float]) -> [Int8] {
        let largest = vector.reduce(0) { max($0, abs($1)) }
        return vector.map { Int8(clamping: Int(($0 * 127 / largest).rounded())) }
    }
}

extension SplitMix64 {
    mutating func uniform() -> Float { Float(self.next() >> 40) / Float(1 << 24) }
    mutating func gaussian() -> Float {
        let u = max(self.uniform(), 1e-7), v = self.uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

/// The exact cosine ranking of int8 vectors, the reference for recall.
func exactNearest(_ query: [Int8], in vectors: [UInt64: [Int8]], k: Int, accept: (UInt64) -> Bool = { _ in true }) -> [UInt64] {
    func norm(_ v: [Int8]) -> Double { Double(v.reduce(0) { $0 + Int($1) * Int($1) }).squareRoot() }
    let q = norm(query)
    var scored: [(label: UInt64, score: Double)] = []
    for (label, v) in vectors where accept(label) {
        var dot = 0
        for i in 0..<v.count { dot += Int(query[i]) * Int(v[i]) }
        scored.append((label, Double(dot) / (q * norm(v))))
    }
    scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.label < $1.label }
    return scored.prefix(k).map(\.label)
}

@Suite struct VectorIndexTests {
    /// 3,000 vectors: 2,000 random, 100 queries with 10 planted neighbours each.
    static func planted() -> (vectors: [UInt64: [Int8]], queries: [[Int8]]) {
        var source = PlantedVectors(dimensions: 48)
        var vectors: [UInt64: [Int8]] = [:]
        var queries: [[Int8]] = []
        var label: UInt64 = 1
        for _ in 0..<2_000 {
            vectors[label] = PlantedVectors.quantize(source.random())
            label += 1
        }
        for _ in 0..<100 {
            let centre = source.random()
            queries.append(PlantedVectors.quantize(source.near(centre, noise: 0.1)))
            for _ in 0..<10 {
                vectors[label] = PlantedVectors.quantize(source.near(centre, noise: 0.5))
                label += 1
            }
        }
        return (vectors, queries)
    }

    static func index(_ vectors: [UInt64: [Int8]]) throws -> VectorIndex {
        let index = try VectorIndex(dimensions: 48, capacity: vectors.count)
        for (label, vector) in vectors.sorted(by: { $0.key < $1.key }) { try index.add(vector, label: label) }
        return index
    }

    static func recall(_ index: VectorIndex, _ vectors: [UInt64: [Int8]], _ queries: [[Int8]], ef: Int, accept: ((UInt64) -> Bool)? = nil) -> Double {
        var hits = 0, total = 0
        for query in queries {
            let truth = Set(exactNearest(query, in: vectors, k: 10, accept: accept ?? { _ in true }))
            let found = index.search(query, k: 10, ef: ef, accept: accept).neighbours.map(\.label)
            hits += found.filter(truth.contains).count
            total += truth.count
        }
        return Double(hits) / Double(total)
    }

    @Test func findsPlantedNeighboursWithHighRecall() throws {
        let (vectors, queries) = Self.planted()
        let index = try Self.index(vectors)
        #expect(index.count == vectors.count)
        #expect(Self.recall(index, vectors, queries, ef: 64) >= 0.95)
    }

    @Test func aFilterKeepsOutWhatItRejectsAndStillFindsTheRest() throws {
        let (vectors, queries) = Self.planted()
        let index = try Self.index(vectors)
        let even: (UInt64) -> Bool = { $0 % 2 == 0 }
        for query in queries.prefix(20) {
            #expect(index.search(query, k: 10, ef: 64, accept: even).neighbours.allSatisfy { even($0.label) })
        }
        #expect(Self.recall(index, vectors, queries, ef: 64, accept: even) >= 0.95)
    }

    @Test func aFilterFewPassStopsAtTheBudgetAndSaysSo() throws {
        let (vectors, queries) = Self.planted()
        let index = try Self.index(vectors)
        let answer = index.search(queries[0], k: 10, ef: 64, budget: 500, accept: { $0 == 3 })
        #expect(!answer.complete)
        let unlimited = index.search(queries[0], k: 10, ef: 64, accept: { $0 == 3 || $0 == 5 })
        #expect(unlimited.complete)
        #expect(Set(unlimited.neighbours.map(\.label)).isSubset(of: [3, 5]))
    }

    @Test func aRemovedLabelIsNeverReturnedUntilAddedAgain() throws {
        let (vectors, queries) = Self.planted()
        let index = try Self.index(vectors)
        let first = index.search(queries[0], k: 10, ef: 64).neighbours.map(\.label)
        for label in first { #expect(index.remove(label)) }
        #expect(index.count == vectors.count - first.count)
        let after = index.search(queries[0], k: 10, ef: 64).neighbours.map(\.label)
        #expect(Set(after).isDisjoint(with: first))
        #expect(index.vector(of: first[0]) == nil)
        try index.add(vectors[first[0]]!, label: first[0])
        #expect(index.search(queries[0], k: 10, ef: 64).neighbours.map(\.label).contains(first[0]))
        #expect(index.vector(of: first[0]) == vectors[first[0]])
    }

    @Test func aFullIndexSaysSoAndTakesMoreAfterReserve() throws {
        let index = try VectorIndex(dimensions: 4, capacity: 2)
        try index.add([1, 2, 3, 4], label: 1)
        try index.add([4, 3, 2, 1], label: 2)
        #expect(throws: VectorIndexError.self) { try index.add([1, 1, 1, 1], label: 3) }
        try index.add([2, 2, 3, 4], label: 1)  // a replacement needs no room
        try index.reserve(10)
        try index.add([1, 1, 1, 1], label: 3)
        #expect(index.count == 3)
        #expect(index.search([1, 1, 1, 1], k: 1, ef: 8).neighbours.first?.label == 3)
    }

    @Test func aSavedIndexLoadsAndAnswersTheSame() throws {
        let (vectors, queries) = Self.planted()
        let index = try Self.index(vectors)
        index.remove(5)
        let path = NSTemporaryDirectory() + "/vectors-\(UUID().uuidString).hnsw"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try index.save(to: path)
        let loaded = try VectorIndex.load(path: path, dimensions: 48, extraCapacity: 10)
        #expect(loaded.count == index.count)
        #expect(loaded.removed == 1)
        #expect(loaded.capacity == index.elements + 10)
        for query in queries.prefix(20) {
            #expect(loaded.search(query, k: 10, ef: 64).neighbours == index.search(query, k: 10, ef: 64).neighbours)
        }
        try loaded.add(vectors[5]!, label: 5)
        #expect(loaded.count == index.count + 1)
    }

    @Test func aDamagedOrForeignFileIsRefusedNotUsed() throws {
        let (vectors, _) = Self.planted()
        let index = try Self.index(vectors)
        let path = NSTemporaryDirectory() + "/vectors-\(UUID().uuidString).hnsw"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try index.save(to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))

        func refused(_ bytes: Data, dimensions: Int = 48) -> Bool {
            try? bytes.write(to: URL(fileURLWithPath: path))
            do {
                _ = try VectorIndex.load(path: path, dimensions: dimensions)
                return false
            } catch {
                return error.isDamaged
            }
        }
        var flipped = whole
        flipped[whole.count / 2] ^= 0x10
        #expect(refused(flipped))
        #expect(refused(whole.prefix(whole.count - 100)))
        #expect(refused(whole.prefix(40)))
        #expect(refused(Data()))
        #expect(refused(Data(repeating: 0x41, count: 4096)))
        #expect(refused(whole + Data([0])))
        #expect(refused(whole, dimensions: 64))

        // A link past the last element, with the checksum made to match: the structure check refuses it.
        var crafted = whole
        let header = 64
        crafted.withUnsafeMutableBytes { bytes in
            // Element 0's bottom-layer list: a count (uint16) and flags, then the links.
            bytes.storeBytes(of: UInt16(1), toByteOffset: header, as: UInt16.self)
            bytes.storeBytes(of: UInt32(9_999_999), toByteOffset: header + 4, as: UInt32.self)
        }
        crafted = Self.resealed(crafted)
        #expect(refused(crafted))
        // The same file resealed unchanged loads: the checksum is the one the test computes.
        #expect(!refused(Self.resealed(whole)))
    }

    /// The file with its trailing checksum computed again (FNV-1a over 64-bit words, as chnsw.cpp).
    static func resealed(_ file: Data) -> Data {
        let body = file.prefix(file.count - 8)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        body.withUnsafeBytes { bytes in
            var at = 0
            while at + 8 <= bytes.count {
                hash = (hash ^ bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) &* 0x100_0000_01b3
                at += 8
            }
            while at < bytes.count {
                hash = (hash ^ UInt64(bytes[at])) &* 0x100_0000_01b3
                at += 1
            }
        }
        var sealed = Data(body)
        withUnsafeBytes(of: hash.littleEndian) { sealed.append(contentsOf: $0) }
        return sealed
    }
}
