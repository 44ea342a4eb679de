import CHNSW

/// An approximate nearest-neighbour index: an HNSW graph (hnswlib) over int8 vectors compared by
/// cosine, each under a 64-bit label. The only Swift file that calls the CHNSW shim.
///
/// Thread safety, hnswlib's own: `search`, `vector(of:)` and `add` may run on any number of threads
/// at once (it locks per element); `remove`, `retain`, `reserve` and `save` need the index to
/// themselves, which the caller arranges (the text index calls them under its write lock, searches
/// under its read lock; a build adds from several threads to an index no one searches yet).
///
/// `@unchecked Sendable`: the handle is used only as described above.
public final class VectorIndex: @unchecked Sendable {
    /// How the graph is built.
    public struct Parameters: Sendable, Equatable {
        /// Links per element and layer (twice that in the bottom layer): memory and recall grow with it.
        public var m: Int
        /// Candidates weighed when an element is linked: build time and graph quality grow with it.
        public var efConstruction: Int
        /// The seed of the level draw, so that a build is repeatable.
        public var seed: UInt64

        /// - Parameters:
        ///   - m: Default 16.
        ///   - efConstruction: Default 100.
        ///   - seed: Default 100.
        public init(m: Int = 16, efConstruction: Int = 100, seed: UInt64 = 100) {
            self.m = m
            self.efConstruction = efConstruction
            self.seed = seed
        }
    }

    public struct Neighbour: Sendable, Equatable {
        public var label: UInt64
        /// 1 − cosine of the vectors as stored.
        public var distance: Float
    }

    public struct Answer: Sendable {
        /// Nearest first.
        public var neighbours: [Neighbour]
        /// False when the search stopped at its budget: closer accepted labels may have been missed.
        public var complete: Bool
        /// Distances computed.
        public var computed: Int
    }

    private let handle: OpaquePointer
    public let dimensions: Int

    /// An empty index.
    /// - Parameters:
    ///   - dimensions: Values per vector.
    ///   - capacity: Elements it has room for before `reserve` (removed ones count until re-added).
    public init(dimensions: Int, capacity: Int, parameters: Parameters = Parameters()) throws(VectorIndexError) {
        guard dimensions > 0, dimensions <= 65_536, capacity >= 0 else { throw VectorIndexError(.invalid, "bad dimensions or capacity") }
        var message = [CChar](repeating: 0, count: 256)
        guard
            let handle = chnsw_create(
                UInt32(dimensions), UInt64(max(capacity, 1)), UInt32(clamping: parameters.m), UInt32(clamping: parameters.efConstruction),
                parameters.seed, &message, message.count)
        else { throw VectorIndexError(.memory, Self.text(message)) }
        self.handle = handle
        self.dimensions = dimensions
    }

    private init(handle: OpaquePointer, dimensions: Int) {
        self.handle = handle
        self.dimensions = dimensions
    }

    /// The integer dot product of `query` with each of the `count` rows of `query.count` values
    /// stored one after the other in `rows` (an exact scan's inner loop, with the graph's AVX2 kernel).
    public static func dots(_ query: UnsafeBufferPointer<Int8>, rows: UnsafePointer<Int8>, count: Int, into out: UnsafeMutablePointer<Int32>) {
        guard count > 0, let base = query.baseAddress else { return }
        chnsw_dots(base, rows, UInt64(count), UInt32(query.count), out)
    }

    /// Reads an index that `save` wrote. The file is checked whole (checksum, sizes, every link)
    /// before it is used; anything wrong throws an error whose `isDamaged` is true.
    /// - Parameters:
    ///   - extraCapacity: Room for elements beyond those in the file.
    public static func load(path: String, dimensions: Int, extraCapacity: Int = 0) throws(VectorIndexError) -> VectorIndex {
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = chnsw_load(path, UInt32(clamping: dimensions), UInt64(max(0, extraCapacity)), &message, message.count) else {
            throw VectorIndexError(.damaged, Self.text(message))
        }
        return VectorIndex(handle: handle, dimensions: dimensions)
    }

    deinit {
        chnsw_free(self.handle)
    }

    /// Adds `vector` under `label`, or replaces the vector of a label already there (also a removed one).
    /// - Throws: An error whose `isFull` is true when there is no room: `reserve`, then add again.
    public func add(_ vector: [Int8], label: UInt64) throws(VectorIndexError) {
        guard vector.count == self.dimensions else { throw VectorIndexError(.invalid, "a vector of \(vector.count) values, not \(self.dimensions)") }
        var message = [CChar](repeating: 0, count: 256)
        let result = vector.withUnsafeBufferPointer { chnsw_add(self.handle, label, $0.baseAddress, &message, message.count) }
        switch result {
        case 0: return
        case -1: throw VectorIndexError(.full, "the vector index is full (\(self.capacity) elements)")
        default: throw VectorIndexError(.memory, Self.text(message))
        }
    }

    /// Never returned again until added anew; returns whether it was there.
    @discardableResult
    public func remove(_ label: UInt64) -> Bool {
        chnsw_remove(self.handle, label) == 1
    }

    /// The vector stored under a live label.
    public func vector(of label: UInt64) -> [Int8]? {
        var out = [Int8](repeating: 0, count: self.dimensions)
        let found = out.withUnsafeMutableBufferPointer { chnsw_get(self.handle, label, $0.baseAddress) }
        return found == 1 ? out : nil
    }

    /// Removes every live label `keep` rejects; returns how many.
    @discardableResult
    public func retain(where keep: (UInt64) -> Bool) -> Int {
        withoutActuallyEscaping(keep) { keep in
            var box = keep
            return withUnsafeMutablePointer(to: &box) { context in
                Int(
                    chnsw_retain(
                        self.handle,
                        { label, context in context!.assumingMemoryBound(to: ((UInt64) -> Bool).self).pointee(label) },
                        context))
            }
        }
    }

    /// Room for at least `capacity` elements (copies the graph: the caller holds the index alone).
    public func reserve(_ capacity: Int) throws(VectorIndexError) {
        var message = [CChar](repeating: 0, count: 256)
        guard chnsw_resize(self.handle, UInt64(max(capacity, 0)), &message, message.count) == 0 else {
            throw VectorIndexError(.memory, Self.text(message))
        }
    }

    /// The `k` nearest live labels that `accept` lets through (nil: all), nearest first.
    /// - Parameters:
    ///   - ef: Candidates kept in the beam (at least `k`): recall and time grow with it.
    ///   - budget: Most distances to compute (0: no limit); past it the answer is marked incomplete.
    ///   - accept: Called for each candidate met, on the calling thread; it must not touch the index.
    public func search(_ query: [Int8], k: Int, ef: Int, budget: Int = 0, accept: ((UInt64) -> Bool)? = nil) -> Answer {
        guard query.count == self.dimensions, k > 0 else { return Answer(neighbours: [], complete: true, computed: 0) }
        var labels = [UInt64](repeating: 0, count: k)
        var distances = [Float](repeating: 0, count: k)
        var found: UInt32 = 0
        var computed: UInt64 = 0
        let stopped: Int32 = query.withUnsafeBufferPointer { query in
            guard let accept else {
                return chnsw_search(
                    self.handle, query.baseAddress, UInt32(k), UInt32(clamping: ef), nil, nil, UInt64(max(0, budget)), &labels, &distances,
                    &found, &computed)
            }
            return withoutActuallyEscaping(accept) { accept in
                var box = accept
                return withUnsafeMutablePointer(to: &box) { context in
                    chnsw_search(
                        self.handle, query.baseAddress, UInt32(k), UInt32(clamping: ef),
                        { label, context in context!.assumingMemoryBound(to: ((UInt64) -> Bool).self).pointee(label) }, context,
                        UInt64(max(0, budget)), &labels, &distances, &found, &computed)
                }
            }
        }
        let neighbours = (0..<Int(found)).map { Neighbour(label: labels[$0], distance: distances[$0]) }
        return Answer(neighbours: neighbours, complete: stopped == 0, computed: Int(computed))
    }

    /// Writes the index to `path` (a temporary file renamed over it, with a checksum).
    public func save(to path: String) throws(VectorIndexError) {
        var message = [CChar](repeating: 0, count: 512)
        guard chnsw_save(self.handle, path, &message, message.count) == 0 else { throw VectorIndexError(.io, Self.text(message)) }
    }

    /// Live labels.
    public var count: Int { Int(chnsw_elements(self.handle) - chnsw_removed(self.handle)) }
    /// Elements in the graph, live and removed.
    public var elements: Int { Int(chnsw_elements(self.handle)) }
    /// Removed elements, still in the graph as waypoints (a rebuild drops them).
    public var removed: Int { Int(chnsw_removed(self.handle)) }
    public var capacity: Int { Int(chnsw_capacity(self.handle)) }
    /// Bytes held in memory, estimated from the index's sizes.
    public var memoryBytes: Int { Int(chnsw_memory_bytes(self.handle)) }

    private static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
