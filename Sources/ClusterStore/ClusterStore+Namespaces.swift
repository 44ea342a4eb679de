import FragmentCore
import Synchronization

// Namespaces in cluster mode. TEMPORARY (work in progress on this branch): the catalog lives in
// this process only and deleting a namespace is refused; the PostgreSQL catalog replaces it.

extension ClusterStore {
    public var namespaces: any NamespaceCatalog { self.catalog }

    public func usage() -> [String: NamespaceUsage] { [:] }

    public func deleteNamespace(_ name: String, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void) {
        completion(.failure(.unavailable("deleting a namespace is not available in cluster mode yet")))
    }

    public func put(batch: [BatchPut], completion: @escaping @Sendable ([Result<PutOutcome, StoreError>]) -> Void) {
        guard !batch.isEmpty else { return completion([]) }
        let results = Mutex([Result<PutOutcome, StoreError>?](repeating: nil, count: batch.count))
        let remaining = Atomic(batch.count)
        for (index, item) in batch.enumerated() {
            self.put(item.id, item.input, precondition: item.precondition) { result in
                results.withLock { $0[index] = result }
                if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                    completion(results.withLock { $0.map { $0! } })
                }
            }
        }
    }
}

final class ProcessCatalog: NamespaceCatalog {
    private let entries = Mutex<[String: NamespaceEntry]>([:])
    private let tokenTable = Mutex<[String: NamespaceToken]>([:])

    func entry(_ name: String) -> NamespaceEntry? {
        name == Namespace.default ? NamespaceEntry(name: name, createdAt: Timestamp(milliseconds: 0)) : self.entries.withLock { $0[name] }
    }
    func entries(after: String?, limit: Int) throws(StoreError) -> [NamespaceEntry] {
        var all = self.entries.withLock { $0 }
        all[Namespace.default] = self.entry(Namespace.default)
        return all.values.filter { after == nil || $0.name > after! }.sorted { $0.name < $1.name }.prefix(limit).map { $0 }
    }
    func create(_ name: String, quota: NamespaceQuota?) throws(StoreError) -> (entry: NamespaceEntry, created: Bool) {
        self.entries.withLock { entries in
            let existing = entries[name]
            let entry = NamespaceEntry(name: name, quota: quota ?? existing?.quota ?? .none, createdAt: existing?.createdAt ?? .now)
            entries[name] = entry
            return (entry, existing == nil)
        }
    }
    func remove(_ name: String, floor: UInt64) throws(StoreError) { _ = self.entries.withLock { $0.removeValue(forKey: name) } }
    func versionFloor(_ name: String) -> UInt64 { 0 }
    func addToken(_ token: NamespaceToken) throws(StoreError) { self.tokenTable.withLock { $0[token.id] = token } }
    func token(_ id: String) -> NamespaceToken? { self.tokenTable.withLock { $0[id] } }
    func tokens(of namespace: String) throws(StoreError) -> [NamespaceToken] { self.tokenTable.withLock { $0.values.filter { $0.namespace == namespace } } }
    func revokeToken(_ id: String, of namespace: String) throws(StoreError) -> Bool {
        self.tokenTable.withLock { $0[id]?.namespace == namespace ? $0.removeValue(forKey: id) != nil : false }
    }
}
