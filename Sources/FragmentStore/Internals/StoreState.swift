import FragmentCore

/// A fragment in the in-memory index: its registry row, where its body sits in the cache, and when
/// it was queued for repair.
struct IndexEntry {
    var row: StoredRow
    var cacheSlot: Int32 = -1
    var queuedAt: Timestamp?
    var progress = RepairProgress()

    init(row: StoredRow, queuedAt: Timestamp? = nil, progress: RepairProgress = RepairProgress()) {
        self.row = row
        self.queuedAt = queuedAt
        self.progress = progress
    }
}

/// Everything the read path needs, behind one lock: the index, the cache, and running totals.
struct StoreState {
    private(set) var entries: [String: IndexEntry] = [:]
    var cache: PayloadCache
    /// Fragments by status, indexed by `FragmentStatus.slot`.
    private var statusCounts = [Int](repeating: 0, count: FragmentStatus.allCases.count)
    /// Bytes of records in the primary area (the redundancy area holds the originals again).
    private(set) var recordBytes: Int64 = 0
    /// Primary segments an export's snapshot reads from, with how many snapshots pin each:
    /// compaction leaves them alone (`FragmentStore+Snapshot.swift`).
    var pinnedSegments: [UInt32: Int] = [:]
    /// Fragments and content bytes per namespace (blanks count at their original size): what quotas
    /// are checked against.
    private(set) var usage: [String: NamespaceUsage] = [:]

    init(cacheBytes: Int) {
        self.cache = PayloadCache(capacityBytes: cacheBytes)
    }

    var counts: [FragmentStatus: Int] {
        Dictionary(uniqueKeysWithValues: FragmentStatus.allCases.map { ($0, self.statusCounts[$0.slot]) })
    }

    func count(_ status: FragmentStatus) -> Int {
        self.statusCounts[status.slot]
    }

    mutating func reserve(_ count: Int) {
        self.entries.reserveCapacity(count)
    }

    subscript(id: String) -> IndexEntry? {
        self.entries[id]
    }

    /// Sets or removes an entry, keeping the totals and the cache in step.
    mutating func set(_ id: String, _ entry: IndexEntry?) {
        if self.entries[id] != nil || entry != nil {
            let change = NamespaceUsage(
                fragments: (entry == nil ? 0 : 1) - (self.entries[id] == nil ? 0 : 1),
                bytes: Int64(entry?.row.size ?? 0) - Int64(self.entries[id]?.row.size ?? 0))
            let namespace = FragmentKey.namespace(of: id)
            let updated = self.usage[namespace, default: NamespaceUsage()] + change
            self.usage[namespace] = updated.fragments == 0 ? nil : updated
        }
        if let old = self.entries[id] {
            self.statusCounts[old.row.status.slot] -= 1
            self.recordBytes -= Int64(old.row.recordLength)
            if old.cacheSlot >= 0, entry?.cacheSlot != old.cacheSlot {
                self.cache.remove(old.cacheSlot)
            }
        }
        if let entry {
            self.statusCounts[entry.row.status.slot] += 1
            self.recordBytes += Int64(entry.row.recordLength)
        }
        self.entries[id] = entry
    }

    /// Puts a body in the cache for the entry's current version.
    mutating func cache(_ id: String, version: UInt64, body: [UInt8], recordLength: Int) {
        guard var entry = self.entries[id], entry.row.version == version else { return }
        if entry.cacheSlot >= 0 {
            self.cache.remove(entry.cacheSlot)
            entry.cacheSlot = -1
        }
        let (slot, evicted) = self.cache.insert(id: id, version: version, body: body, recordLength: recordLength)
        for victim in evicted where victim.id != id {
            self.entries[victim.id]?.cacheSlot = -1
        }
        entry.cacheSlot = slot ?? -1
        self.entries[id] = entry
    }

    /// Drops an entry's cached body.
    mutating func uncache(_ id: String) {
        guard let slot = self.entries[id]?.cacheSlot, slot >= 0 else { return }
        self.cache.remove(slot)
        self.entries[id]?.cacheSlot = -1
    }

    var count: Int { self.entries.count }

    /// The rows that satisfy `predicate`, in one pass over the index.
    func rows(where predicate: (StoredRow) -> Bool) -> [StoredRow] {
        self.entries.values.lazy.map(\.row).filter(predicate)
    }
}
