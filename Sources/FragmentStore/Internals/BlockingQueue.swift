import FragmentCore
import Foundation

/// A FIFO that a consumer thread drains in batches, blocking while it is empty.
///
/// `@unchecked Sendable`: every access to `items` and `closed` happens with `condition` locked.
final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var closed = false

    /// Appends; returns false once the queue is closed.
    @discardableResult
    func put(_ element: Element) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.closed else { return false }
        self.items.append(element)
        self.condition.signal()
        return true
    }

    /// Appends several elements in order; returns false once the queue is closed.
    @discardableResult
    func put(contentsOf elements: [Element]) -> Bool {
        guard !elements.isEmpty else { return true }
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.closed else { return false }
        self.items.append(contentsOf: elements)
        self.condition.signal()
        return true
    }

    /// Waits for at least one element and takes up to `limit`; nil once closed and drained.
    func takeBatch(limit: Int) -> [Element]? {
        self.takeBatch(limit: limit, gatheringFor: 0, isUrgent: { _ in true })
    }

    /// Like `takeBatch`, but once an element is there, waits up to `seconds` more for the batch to
    /// fill, unless an element for which `isUrgent` holds arrives (somebody is waiting for it).
    func takeBatch(limit: Int, gatheringFor seconds: Double, isUrgent: (Element) -> Bool) -> [Element]? {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.isEmpty {
            if self.closed { return nil }
            self.condition.wait()
        }
        let deadline = Date(timeIntervalSinceNow: seconds)
        var scanned = 0
        while self.items.count < limit, !self.closed {
            if self.items[scanned...].contains(where: isUrgent) { break }
            scanned = self.items.count
            if !self.condition.wait(until: deadline) { break }
        }
        let count = min(limit, self.items.count)
        let batch = Array(self.items[0..<count])
        self.items.removeFirst(count)
        return batch
    }

    var count: Int {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.items.count
    }

    /// Refuses new elements; consumers drain what is left and then get nil.
    func close() {
        self.condition.lock()
        self.closed = true
        self.condition.broadcast()
        self.condition.unlock()
    }
}
