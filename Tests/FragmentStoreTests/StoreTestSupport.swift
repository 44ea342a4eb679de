import FragmentCore
import CarmaFaults
import CarmaTesting
import Dispatch
@testable import FragmentStore
import Logging
import Synchronization

/// A store in a temporary directory, with synchronous wrappers around the callback API.
final class TestStore {
    let directory = TemporaryDirectory("store")
    var store: FragmentStore

    init(cacheBytes: Int = 1 << 20) throws {
        self.store = try FragmentStore(configuration: Self.configuration(self.directory.path, cacheBytes: cacheBytes), logger: Logger(label: "test"))
    }

    static func configuration(_ path: String, cacheBytes: Int = 1 << 20) -> StoreConfiguration {
        StoreConfiguration(dataDirectory: path, cacheBytes: cacheBytes)
    }

    deinit {
        self.store.close()
        self.directory.remove()
    }

    /// Closes and opens the store again on the same files.
    func reopen(cacheBytes: Int = 1 << 20) throws {
        self.store.close()
        self.store = try FragmentStore(configuration: Self.configuration(self.directory.path, cacheBytes: cacheBytes), logger: Logger(label: "test"))
    }

    @discardableResult
    func put(_ id: String, _ content: String, links: [String] = [], tags: [String] = [], precondition: WritePrecondition = .none) throws -> PutOutcome {
        try wait { done in self.store.put(id, FragmentInput(content: content, links: links, tags: tags), precondition: precondition, completion: done) }
    }

    func delete(_ id: String, precondition: WritePrecondition = .none) throws {
        try wait { done in self.store.delete(id, precondition: precondition, completion: done) }
    }

    /// Damage to this store's logs, in place.
    var disk: DiskDamage { DiskDamage(dataDirectory: self.directory.path) }

    /// The history as the registry has it once everything before is applied.
    func history(_ id: String) throws -> [String]? {
        self.store.flush()
        return try self.store.history(id)?.map(\.kind)
    }
}

/// Calls a callback API and waits for its result.
func wait<T: Sendable>(_ start: (@escaping @Sendable (Result<T, StoreError>) -> Void) -> Void) throws -> T {
    let box = Mutex<Result<T, StoreError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    start { result in
        box.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return try box.withLock { $0! }.get()
}
