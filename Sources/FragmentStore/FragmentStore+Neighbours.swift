import CarmaText
import FragmentCore

// Vector search through HNSW graphs in a large store (CarmaText's NeighbourIndexes): the store's
// side is small. It hands the graphs' builder its text index lock, starts it once the text index
// has loaded, saves the graphs at close, and reports what serves.

extension ReadWriteLock: TextIndexLock where Value == TextIndex {}

extension FragmentStore {
    /// The graphs for the text index, kept in `<data-dir>/vectors` between runs; nil when turned off.
    static func neighbours(_ configuration: StoreConfiguration) -> NeighbourIndexes? {
        guard var search = configuration.neighbourSearch else { return nil }
        search.directory = search.directory ?? "\(configuration.dataDirectory)/vectors"
        return NeighbourIndexes(configuration: search, meaningDimensions: configuration.encoder?.dimensions ?? 0)
    }

    /// Starts the worker that builds the graphs once the text index has loaded.
    func startVectorIndexer() {
        let (builder, text) = (self.neighbourBuilder, self.text.primary)
        self.vectorIndexer.start(onStop: { builder.cancel() }) { [self] in
            if self.textReady.load(ordering: .relaxed) { builder.buildDue(text) }
            return .idle
        }
    }

    /// What answers vector queries now, per kind of vector: the exact scan, a graph being built
    /// (the scan meanwhile), or the graph.
    public var vectorIndexStatus: [NeighbourStatus] {
        self.text.neighbours?.status ?? []
    }
}
