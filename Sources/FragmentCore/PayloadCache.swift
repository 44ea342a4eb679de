/// A byte-bounded LRU cache of served bodies, kept in a slot array with an intrusive doubly linked
/// list so that a hit is an array access and two index updates, with no allocation.
///
/// Not thread-safe: it lives inside the store's locked state, next to the index that points into it
/// (cluster mode's node cache keeps its own id → slot map beside it).
package struct PayloadCache {
    package struct Slot {
        package var id: String
        package var version: UInt64
        /// The served body: the record without its closing brace, then `status`, `checksum` and `}`.
        package var body: [UInt8]
        /// Length of the record the body was built from (to recover the record for exact repair).
        package var recordLength: Int
        var previous: Int32
        var next: Int32
    }

    package let capacityBytes: Int
    package private(set) var bytes = 0
    private(set) var slots: [Slot] = []
    private var free: [Int32] = []
    /// Most recently used.
    private var head: Int32 = -1
    /// Least recently used, evicted first.
    private var tail: Int32 = -1

    package init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    package var count: Int { self.slots.count - self.free.count }

    /// Per-slot bookkeeping counted against the capacity besides the body itself.
    package static let slotOverhead = 96

    package func slot(_ index: Int32) -> Slot {
        self.slots[Int(index)]
    }

    /// A slot's body alone (without copying the rest of the slot).
    package func body(_ index: Int32) -> [UInt8] {
        self.slots[Int(index)].body
    }

    /// Marks a slot most recently used.
    package mutating func touch(_ index: Int32) {
        guard index != self.head else { return }
        self.unlink(index)
        self.pushFront(index)
    }

    /// Adds a body; returns its slot (or nil if it is larger than the whole cache) and the ids of
    /// the entries evicted to make room, whose index entries must forget their slot.
    package mutating func insert(id: String, version: UInt64, body: [UInt8], recordLength: Int) -> (slot: Int32?, evicted: [(id: String, slot: Int32)]) {
        let cost = body.count + Self.slotOverhead
        guard cost <= self.capacityBytes else { return (nil, []) }
        var evicted: [(String, Int32)] = []
        while self.bytes + cost > self.capacityBytes, self.tail >= 0 {
            let victim = self.tail
            evicted.append((self.slots[Int(victim)].id, victim))
            self.remove(victim)
        }
        let slot = Slot(id: id, version: version, body: body, recordLength: recordLength, previous: -1, next: -1)
        let index: Int32
        if let reused = self.free.popLast() {
            index = reused
            self.slots[Int(index)] = slot
        } else {
            index = Int32(self.slots.count)
            self.slots.append(slot)
        }
        self.bytes += cost
        self.pushFront(index)
        return (index, evicted)
    }

    package mutating func remove(_ index: Int32) {
        self.unlink(index)
        self.bytes -= self.slots[Int(index)].body.count + Self.slotOverhead
        self.slots[Int(index)].body = []
        self.slots[Int(index)].id = ""
        self.free.append(index)
    }

    private mutating func unlink(_ index: Int32) {
        let previous = self.slots[Int(index)].previous
        let next = self.slots[Int(index)].next
        if previous >= 0 { self.slots[Int(previous)].next = next } else if self.head == index { self.head = next }
        if next >= 0 { self.slots[Int(next)].previous = previous } else if self.tail == index { self.tail = previous }
        self.slots[Int(index)].previous = -1
        self.slots[Int(index)].next = -1
    }

    private mutating func pushFront(_ index: Int32) {
        self.slots[Int(index)].previous = -1
        self.slots[Int(index)].next = self.head
        if self.head >= 0 { self.slots[Int(self.head)].previous = index }
        self.head = index
        if self.tail < 0 { self.tail = index }
    }
}
