import FragmentCore
import Foundation

/// Reads every fragment row of the registry on a thread of its own and hands them over in chunks,
/// so that start-up can insert one chunk into the index while the next is read and decoded. At most
/// `chunksInFlight` chunks wait at any time, which bounds the memory the overlap costs.
final class RegistryScan: @unchecked Sendable {
    // @unchecked: `failure` is written by the scan thread before it closes the queue and read by the
    // consumer only after `next()` returned nil; the queue's lock orders the two.
    private let registry: Registry
    private let chunks = BlockingQueue<[StoredRow]>()
    private let room: DispatchSemaphore
    private let chunkSize: Int
    /// Why the scan stopped early, if it did. Read it after `next()` returned nil.
    private(set) var failure: SQLiteError?

    init(registry: Registry, chunkSize: Int = 4096, chunksInFlight: Int = 8) {
        self.registry = registry
        self.chunkSize = chunkSize
        self.room = DispatchSemaphore(value: chunksInFlight)
    }

    private let worker = Worker(name: "index-load")

    func start() {
        self.worker.start { [self] in
            var chunk: [StoredRow] = []
            chunk.reserveCapacity(self.chunkSize)
            do throws(SQLiteError) {
                try self.registry.forEachFragment { row in
                    chunk.append(row)
                    if chunk.count == self.chunkSize {
                        self.hand(chunk)
                        chunk = []
                        chunk.reserveCapacity(self.chunkSize)
                    }
                }
                if !chunk.isEmpty { self.hand(chunk) }
            } catch {
                self.failure = error
            }
            self.chunks.close()
            return .finished
        }
    }

    private func hand(_ chunk: [StoredRow]) {
        self.room.wait()
        self.chunks.put(chunk)
    }

    /// The next chunk of rows, in the order SQLite returns them; nil once all were handed over (or
    /// the scan failed: see `failure`).
    func next() -> [StoredRow]? {
        guard let taken = self.chunks.takeBatch(limit: 1) else { return nil }
        self.room.signal()
        return taken[0]
    }
}
