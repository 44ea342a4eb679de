import CarmaText
import Synchronization

/// The text index of a store, one `TextIndex` per namespace: BM25's statistics, meanings, sketch
/// similarity and backlinks are each namespace's own, so no ranking, context or reconstruction can
/// reach into another namespace, and a query in a small namespace costs what a store holding only
/// that namespace would charge. Documents are indexed under their keys.
public final class TextIndexes: Sendable {
    private let partitions = Mutex<[String: ReadWriteLock<TextIndex>]>([:])
    private let meaningDimensions: Int
    /// The vector graphs, for the namespace `default` only; other namespaces scan (a namespace
    /// large enough to need a graph is left for later: docs/decisions.md).
    public let neighbours: NeighbourIndexes?

    public init(meaningDimensions: Int, neighbours: NeighbourIndexes? = nil) {
        self.meaningDimensions = meaningDimensions
        self.neighbours = neighbours
    }

    /// The index of a namespace, made empty on first use.
    package func namespace(_ name: String) -> ReadWriteLock<TextIndex> {
        self.partitions.withLock { partitions in
            if let index = partitions[name] { return index }
            let index = ReadWriteLock(TextIndex(
                meaningDimensions: self.meaningDimensions, neighbours: name == Namespace.default ? self.neighbours : nil))
            partitions[name] = index
            return index
        }
    }

    /// The index holding a key.
    package func of(_ key: String) -> ReadWriteLock<TextIndex> {
        self.namespace(FragmentKey.namespace(of: key))
    }

    /// The index of `default` (where the vector graphs are).
    package var primary: ReadWriteLock<TextIndex> { self.namespace(Namespace.default) }

    /// Every namespace's index.
    package var all: [(namespace: String, index: ReadWriteLock<TextIndex>)] {
        self.partitions.withLock { $0.map { ($0.key, $0.value) } }
    }

    /// Applies `body` to each namespace's share of `items` (grouped by the namespace of `key`), under
    /// that namespace's lock.
    package func update<Item>(_ items: [Item], key: (Item) -> String, _ body: (inout TextIndex, [Item]) -> Void) {
        for (namespace, group) in Dictionary(grouping: items, by: { FragmentKey.namespace(of: key($0)) }) {
            self.namespace(namespace).write { body(&$0, group) }
        }
    }

    /// Forgets every namespace's index for these (a reload from scratch).
    package func replace(with fresh: [String: TextIndex]) {
        let current = self.partitions.withLock { partitions in
            for name in partitions.keys where fresh[name] == nil { partitions[name] = nil }
            return partitions
        }
        for (name, index) in fresh {
            if let existing = current[name] {
                existing.write { $0 = index }
            } else {
                self.partitions.withLock { $0[name] = ReadWriteLock(index) }
            }
        }
    }

    /// Forgets a namespace's index (after the namespace was deleted).
    public func drop(_ name: String) {
        _ = self.partitions.withLock { $0.removeValue(forKey: name) }
    }

    // MARK: Totals and the look-ups by key

    /// Fragments, distinct terms (summed over namespaces) and fragments with a meaning.
    public var size: (fragments: Int, terms: Int, meanings: Int) {
        self.all.reduce((0, 0, 0)) { total, partition in
            let size = partition.index.size
            return (total.0 + size.fragments, total.1 + size.terms, total.2 + size.meanings)
        }
    }

    /// Fragments with a meaning, in every namespace.
    public var meaningCount: Int { self.size.meanings }

    package func sketch(of key: String) -> Sketch? { self.of(key).sketch(of: key) }
    package func backlinks(_ key: String) -> [String] { self.of(key).backlinks(key) }
    package func meaning(of key: String) -> [Float]? { self.of(key).meaning(of: key) }
    /// Sketches a fragment against its own namespace's term statistics.
    package func sketch(_ input: FragmentInput, key: String) -> Sketch { self.of(key).sketch(input) }
    package func mentionsTime(_ key: String) -> Bool { self.of(key).read { $0.mentionsTime(key) } }
}
