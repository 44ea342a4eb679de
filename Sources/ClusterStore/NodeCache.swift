import FragmentCore

/// This node's bounded cache of served bodies: the store's LRU (`PayloadCache`) with an id → slot
/// map beside it. A hit is served only when the database says its version is current; while the
/// database does not answer, it is the node's last known copy.
struct NodeCache: Sendable {
    struct Entry: Sendable {
        var version: UInt64
        var status: FragmentStatus
        var checksum: UInt32
        var body: [UInt8]
    }

    private var lru: PayloadCache
    private var slots: [String: (slot: Int32, status: FragmentStatus, checksum: UInt32)] = [:]

    init(capacity: Int) {
        self.lru = PayloadCache(capacityBytes: max(0, capacity))
    }

    var bytes: Int { self.lru.bytes }
    var count: Int { self.lru.count }

    /// The entry for `id`, marked most recently used.
    mutating func use(_ id: String) -> Entry? {
        guard let found = self.slots[id] else { return nil }
        self.lru.touch(found.slot)
        let slot = self.lru.slot(found.slot)
        return Entry(version: slot.version, status: found.status, checksum: found.checksum, body: slot.body)
    }

    mutating func set(_ id: String, _ entry: Entry) {
        self.remove(id)
        let (slot, evicted) = self.lru.insert(id: id, version: entry.version, body: entry.body, recordLength: entry.body.count)
        for (victim, _) in evicted { self.slots[victim] = nil }
        if let slot { self.slots[id] = (slot, entry.status, entry.checksum) }
    }

    mutating func remove(_ id: String) {
        if let found = self.slots.removeValue(forKey: id) { self.lru.remove(found.slot) }
    }

    /// Forgets every entry of a namespace (deleted).
    mutating func removeNamespace(_ name: String) {
        for id in self.slots.keys where FragmentKey.belongs(id, to: name) { self.remove(id) }
    }
}
