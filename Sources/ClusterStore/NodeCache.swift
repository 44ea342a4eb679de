import FragmentStore

/// This node's bounded cache of served bodies, by fragment id and version. A hit is served only when
/// the database says the version is current; while the database does not answer, it is the node's
/// last known copy. Evicts the oldest entries first.
struct NodeCache: Sendable {
    struct Entry: Sendable {
        var version: UInt64
        var status: FragmentStatus
        var checksum: UInt32
        var body: [UInt8]
    }

    let capacity: Int
    private(set) var bytes = 0
    private var entries: [String: (entry: Entry, generation: Int)] = [:]
    /// Insertion order; entries replaced or removed since are skipped when evicting.
    private var order: [(id: String, generation: Int)] = []
    private var head = 0
    private var generation = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { self.entries.count }

    subscript(_ id: String) -> Entry? { self.entries[id]?.entry }

    mutating func set(_ id: String, _ entry: Entry) {
        guard entry.body.count <= self.capacity / 4 else { return }
        self.remove(id)
        self.generation += 1
        self.entries[id] = (entry, self.generation)
        self.bytes += entry.body.count
        self.order.append((id, self.generation))
        while self.bytes > self.capacity, self.head < self.order.count {
            let oldest = self.order[self.head]
            self.head += 1
            if self.entries[oldest.id]?.generation == oldest.generation {
                self.remove(oldest.id)
            }
        }
        if self.head > 4096, self.head * 2 > self.order.count {
            self.order.removeFirst(self.head)
            self.head = 0
        }
    }

    mutating func remove(_ id: String) {
        if let old = self.entries.removeValue(forKey: id) { self.bytes -= old.entry.body.count }
    }
}
