import CarmaVectors
import Synchronization

/// How a text index finds the nearest vectors in a large store.
///
/// Each kind of vector (the model's meanings, the clients' embeddings) gets an HNSW graph
/// (`VectorIndex`) once it has `minimumVectors`, built in the background (`NeighbourBuilder`);
/// until the graph serves, queries scan every vector exactly, as they do below the threshold.
public struct NeighbourSearchConfiguration: Sendable, Equatable {
    /// Vectors of a kind at which its graph is built; below, the exact scan is as fast.
    public var minimumVectors: Int
    public var parameters: VectorIndex.Parameters
    /// Candidates a query keeps in its beam at `beamVectors` vectors and beyond (at least the number
    /// it asks for); a smaller graph gets a beam narrowed in proportion (`beam(vectors:fetch:)`).
    public var efSearch: Int
    /// The size at which the beam is `efSearch` whole; 0: always whole.
    public var beamVectors: Int
    /// Distances a query may compute, as a share of the vectors (at least `minimumBudget`); a filter
    /// that few fragments pass makes the graph search stop there, and the exact scan answers.
    public var budgetShare: Double
    public var minimumBudget: Int
    /// Threads that add vectors during a build (queries keep the others).
    public var buildThreads: Int
    /// A graph with this share of its elements removed is rebuilt (hnswlib 0.6 keeps them as waypoints).
    public var rebuildRemovedShare: Double
    /// Where the graphs are kept between runs (nil: built anew at each start). The files are checked
    /// whole before use; a damaged one is rebuilt.
    public var directory: String?

    /// - Parameters:
    ///   - minimumVectors: Default 20,000 (docs/decisions.md, "Vector search at a million": at
    ///     20,000 vectors the exact scan takes about 1 ms).
    ///   - parameters: Default M 32, efConstruction 200: at 1,000,000 vectors M 16 and efConstruction
    ///     100 stopped at recall@10 0.89 however wide the beam (docs/decisions.md).
    ///   - efSearch: Default 1,024: recall@10 ≥ 0.95 on every query set at 1,000,000 vectors (bench/vector-1m.sh).
    ///   - beamVectors: Default 1,000,000. At 300,000 vectors a beam of 307 (this gives 308) had recall@10
    ///     0.98–1.00 in 0.9–1.2 ms; at 100,000 one of 108 had 1.00 in 0.4 ms, where 1,024 went past
    ///     its budget and the scan had to answer after it (docs/decisions.md).
    ///   - budgetShare: Default 0.1 (100,000 distances at 1,000,000 vectors, still well under the scan's cost).
    ///   - minimumBudget: Default 10,000.
    ///   - buildThreads: Default 1, so that a build leaves the other core to queries.
    ///   - rebuildRemovedShare: Default 0.25.
    ///   - directory: Default nil.
    public init(
        minimumVectors: Int = 20_000, parameters: VectorIndex.Parameters = VectorIndex.Parameters(m: 32, efConstruction: 200),
        efSearch: Int = 1024, beamVectors: Int = 1_000_000, budgetShare: Double = 0.1, minimumBudget: Int = 10_000, buildThreads: Int = 1, rebuildRemovedShare: Double = 0.25,
        directory: String? = nil
    ) {
        self.minimumVectors = max(0, minimumVectors)
        self.parameters = parameters
        self.efSearch = max(1, efSearch)
        self.beamVectors = max(0, beamVectors)
        self.budgetShare = budgetShare
        self.minimumBudget = minimumBudget
        self.buildThreads = max(1, buildThreads)
        self.rebuildRemovedShare = rebuildRemovedShare
        self.directory = directory
    }

    /// The beam of a query asking for `fetch` in a graph of `vectors`: `efSearch` scaled by
    /// vectors / `beamVectors` (up to whole), never below `fetch`.
    func beam(vectors: Int, fetch: Int) -> Int {
        guard self.beamVectors > 0, vectors < self.beamVectors else { return max(self.efSearch, fetch) }
        return max(fetch, Int((Double(self.efSearch) * Double(vectors) / Double(self.beamVectors)).rounded(.up)))
    }

    func budget(vectors: Int) -> Int {
        max(self.minimumBudget, Int(Double(vectors) * self.budgetShare))
    }
}

/// What serves one kind of vector search now, for `/readyz`.
public struct NeighbourStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Every query scans (below the threshold, or no graph yet).
        case exact
        /// A graph is being built or loaded; queries scan meanwhile.
        case building
        /// Queries use the graph.
        case serving
    }

    public var kind: NeighbourIndexes.Kind
    public var state: State
    /// Live vectors in the serving graph.
    public var vectors: Int
    /// Removed elements still in the graph.
    public var removed: Int
    public var memoryBytes: Int
    /// How the serving graph was made: read from its file (then brought up to date) or built.
    public var loadedFromFile: Bool
    /// How long the serving graph took to build or load, in seconds.
    public var buildSeconds: Double
}

/// The vector graphs of one text index, and the table from their labels to its slots.
///
/// A fragment's label is a 64-bit hash of its id, the same in every run, so a graph saved by one run
/// fits the next. Two ids with the same hash (about one chance in 10^7 at a million fragments): the
/// second is left out of the graphs and scanned exactly at each query (`overflow`).
///
/// `@unchecked Sendable`: `slots`, `overflow`, `epoch` and `clientVectors` are touched only under
/// the lock of the text index that holds this object (written under its write lock); each kind's
/// state is behind its own mutex.
public final class NeighbourIndexes: @unchecked Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The built-in model's embeddings.
        case meaning
        /// The vectors clients store with their fragments.
        case client
    }

    /// Set at start; the benchmark changes `efSearch` between runs (under the text index's write lock).
    public package(set) var configuration: NeighbourSearchConfiguration
    package let meaning: NeighbourSet
    package let client: NeighbourSet
    /// Label → slot of the live fragments.
    var slots: [UInt64: UInt32] = [:]
    /// Ids whose label another id holds.
    var overflow: Set<String> = []
    /// Bumped when the text index renumbers its slots, so that a build walking them starts over.
    var epoch = 0
    /// Live fragments with a client vector of the graph's dimension.
    var clientVectors = 0

    /// - Parameter meaningDimensions: The model's dimensions (0 without a model).
    public init(configuration: NeighbourSearchConfiguration, meaningDimensions: Int) {
        self.configuration = configuration
        self.meaning = NeighbourSet(kind: .meaning, dimension: meaningDimensions > 0 ? meaningDimensions : nil)
        self.client = NeighbourSet(kind: .client, dimension: nil)
    }

    func set(_ kind: Kind) -> NeighbourSet {
        kind == .meaning ? self.meaning : self.client
    }

    public var status: [NeighbourStatus] {
        Kind.allCases.map { self.set($0).status }
    }

    /// FNV-1a of the id's bytes, then mixed (splitmix64's finaliser) so that close ids spread.
    public static func label(_ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }

    package func path(_ kind: Kind) -> String? {
        self.configuration.directory.map { "\($0)/\(kind.rawValue)-vectors.hnsw" }
    }

    // MARK: Changes (under the text index's write lock)

    /// A fragment version took `slot`; its client vector, if any, goes to the client graph.
    func placed(_ id: String, slot: UInt32, clientVector: [Float]?) {
        let label = Self.label(id)
        if self.slots[label] != nil {
            self.overflow.insert(id)
        } else {
            self.slots[label] = slot
        }
        guard let clientVector, !clientVector.isEmpty else { return }
        if self.client.dimension == nil { self.client.fix(dimension: clientVector.count) }
        guard clientVector.count == self.client.dimension else { return }
        self.clientVectors += 1
        guard !self.overflow.contains(id) else { return }
        self.client.changed(label, vector: TextIndex.quantize(clientVector))
    }

    /// A fragment's meaning was set (its norm is positive).
    func meaningSet(_ id: String, _ vector: [Int8]) {
        guard !self.overflow.contains(id) else { return }
        self.meaning.changed(Self.label(id), vector: vector)
    }

    /// A fragment left the index (deleted, or about to be replaced by its next version).
    func removed(_ id: String, hadClientVector: Bool) {
        if hadClientVector, self.client.dimension != nil { self.clientVectors -= 1 }
        if self.overflow.remove(id) != nil { return }
        let label = Self.label(id)
        self.slots[label] = nil
        self.meaning.changed(label, vector: nil)
        self.client.changed(label, vector: nil)
    }

    /// The text index renumbered its slots.
    func renumbered(_ slots: [String: UInt32]) {
        self.slots.removeAll(keepingCapacity: true)
        for (id, slot) in slots where !self.overflow.contains(id) {
            self.slots[Self.label(id)] = slot
        }
        self.epoch += 1
    }
}

/// One kind's graph: the one serving (if any), and the labels changed while a new one is built.
package final class NeighbourSet: Sendable {
    struct State {
        var dimension: Int?
        var serving: VectorIndex?
        /// Set while a graph is built: the labels whose vectors changed since it began.
        var journal: Set<UInt64>?
        var loadedFromFile = false
        var buildSeconds = 0.0
        /// Changes to the serving graph since it was last saved.
        var unsaved = 0
    }

    let kind: NeighbourIndexes.Kind
    let state: Mutex<State>

    init(kind: NeighbourIndexes.Kind, dimension: Int?) {
        self.kind = kind
        self.state = Mutex(State(dimension: dimension))
    }

    var dimension: Int? { self.state.withLock { $0.dimension } }
    package var serving: VectorIndex? { self.state.withLock { $0.serving } }

    func fix(dimension: Int) {
        self.state.withLock { $0.dimension = $0.dimension ?? dimension }
    }

    /// A label's vector changed (nil: gone). Applied to the serving graph (under the text index's
    /// write lock, so no query runs meanwhile) and noted for a build going on.
    func changed(_ label: UInt64, vector: [Int8]?) {
        self.state.withLock { state in
            state.journal?.insert(label)
            guard let graph = state.serving else { return }
            state.unsaved += 1
            guard let vector else {
                graph.remove(label)
                return
            }
            if !Self.put(vector, label: label, in: graph) {
                // Out of memory: back to the exact scan; the builder makes a new graph.
                state.serving = nil
            }
        }
    }

    /// Adds or replaces, growing the graph by half when it is full. The caller holds it alone.
    static func put(_ vector: [Int8], label: UInt64, in graph: VectorIndex) -> Bool {
        do {
            try graph.add(vector, label: label)
            return true
        } catch where error.isFull {
            guard (try? graph.reserve(graph.capacity + graph.capacity / 2 + 1024)) != nil else { return false }
            return (try? graph.add(vector, label: label)) != nil
        } catch {
            return false
        }
    }

    var status: NeighbourStatus {
        self.state.withLock { state in
            let graph = state.serving
            return NeighbourStatus(
                kind: self.kind, state: graph != nil ? .serving : state.journal != nil ? .building : .exact, vectors: graph?.count ?? 0,
                removed: graph?.removed ?? 0, memoryBytes: graph?.memoryBytes ?? 0, loadedFromFile: state.loadedFromFile,
                buildSeconds: state.buildSeconds)
        }
    }
}
