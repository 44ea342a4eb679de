import FragmentCore
import Synchronization

// Namespaces on one machine: the catalog is a journal next to the logs (NamespaceJournal.swift);
// keys carry the namespace everywhere else. This file holds what the store does per namespace:
// usage and quotas, batch writes, and deleting a namespace.

extension FragmentStore {
    public var namespaces: any NamespaceCatalog { self.journal }

    public func usage() -> [String: NamespaceUsage] {
        self.state.withLock { $0.usage }
    }

    public func usage(of namespace: String) -> NamespaceUsage {
        self.state.withLock { $0.usage[namespace] } ?? NamespaceUsage()
    }

    /// Why a write that changes a namespace's usage by `change` cannot be planned (log thread, after
    /// `planned`, what the batch added before it); nil when it can.
    func admit(_ change: NamespaceUsage, to namespace: String, planned: NamespaceUsage) -> StoreError? {
        guard let entry = self.journal.entry(namespace) else { return .namespaceNotFound(namespace) }
        guard entry.quota != .none, change.fragments > 0 || change.bytes > 0 else { return nil }
        let after = self.state.withLock { $0.usage[namespace] ?? NamespaceUsage() } + planned + change
        return entry.quota.allows(after) ? nil : .quotaExceeded(namespace, limit: entry.quota, usage: after)
    }

    /// The fragment as served when `row` (readable, exact) holds exactly `input`; nil otherwise.
    func holding(_ input: FragmentInput, _ row: StoredRow) -> ServedFragment? {
        guard row.status == .ok, row.size == input.content.utf8.count, case .fragment(let served) = self.read(row.id), served.version == row.version,
            let record = FragmentRecord.decode(served.body), record.input == input
        else { return nil }
        return served
    }

    /// Several puts in one group commit (the log thread takes them together).
    public func put(batch: [BatchPut], completion: @escaping @Sendable ([Result<PutOutcome, StoreError>]) -> Void) {
        guard !batch.isEmpty else { return completion([]) }
        let results = Mutex([Result<PutOutcome, StoreError>?](repeating: nil, count: batch.count))
        let remaining = Atomic(batch.count)
        let finish: @Sendable (Int, Result<PutOutcome, StoreError>) -> Void = { index, result in
            results.withLock { $0[index] = result }
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                completion(results.withLock { $0.map { $0! } })
            }
        }
        var operations: [PutOperation] = []
        for (index, item) in batch.enumerated() {
            if let failure = FragmentInput.check(item.id, item.input, limits: self.configuration.limits) {
                finish(index, .failure(failure))
                continue
            }
            operations.append(
                PutOperation(
                    id: item.id, input: item.input, document: self.document(id: item.id, version: 0, input: item.input),
                    precondition: item.precondition, unlessUnchanged: item.unlessUnchanged, completion: { finish(index, $0) }))
        }
        guard !operations.isEmpty else { return }
        if !self.pipeline.submit(.puts(operations)) {
            for operation in operations { operation.completion(.failure(.closed)) }
        }
    }

    /// Removes the namespace from the catalog (no write lands in it from then on), then, once every
    /// write submitted before is applied, tombstones each of its fragments.
    public func deleteNamespace(_ name: String, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void) {
        guard name != Namespace.default else {
            return completion(.failure(.invalid(field: "namespace", "the namespace default cannot be deleted")))
        }
        guard self.journal.entry(name) != nil else { return completion(.failure(.namespaceNotFound(name))) }
        do {
            try self.journal.remove(name, floor: self.lastVersion.load(ordering: .relaxed))
        } catch {
            return completion(.failure(error))
        }
        self.tombstoneNamespace(name, completion: completion)
    }

    /// Tombstones every fragment of a namespace the catalog no longer has.
    private func tombstoneNamespace(_ name: String, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void) {
        self.whenApplied { [self] in
            let now = Timestamp.now
            // An expired fragment not yet reclaimed is deleted as expired (a client's delete would not find it).
            let keys = self.state.withLock { state in
                state.entries.filter { FragmentKey.belongs($0.key, to: name) }.map { ($0.key, $0.value.row.isExpired(at: now) ? $0.value.row.version : nil) }
            }
            guard !keys.isEmpty else { return completion(.success(0)) }
            let deleted = Atomic(0)
            let remaining = Atomic(keys.count)
            let failure = Mutex<StoreError?>(nil)
            for (key, expired) in keys {
                let submitted = self.pipeline.submit(.delete(DeleteOperation(id: key, precondition: .none, expiredVersion: expired) { result in
                    switch result {
                    case .success: deleted.add(1, ordering: .relaxed)
                    case .failure(let error) where error.code != .notFound: failure.withLock { $0 = $0 ?? error }
                    case .failure: break
                    }
                    guard remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
                    if let error = failure.withLock({ $0 }) { return completion(.failure(error)) }
                    completion(.success(deleted.load(ordering: .relaxed)))
                }))
                if !submitted {
                    return completion(.failure(.closed))
                }
            }
        }
    }

    /// At open: finishes the deletion of namespaces a crash interrupted (removed from the catalog, some
    /// fragments left), and takes back into the catalog namespaces that hold fragments but were
    /// never removed (a journal restored from an older backup, or lost).
    func settleNamespaces() {
        let present = self.state.withLock { Array($0.usage.keys) }
        for name in present where name != Namespace.default && self.journal.entry(name) == nil {
            if self.journal.versionFloor(name) > 0 {
                self.logger.notice("finishing the deletion of a namespace", metadata: ["namespace": "\(name)"])
                self.tombstoneNamespace(name) { _ in }
            } else {
                self.logger.warning("a namespace holds fragments but was not in the catalog; added it back", metadata: ["namespace": "\(name)"])
                _ = try? self.journal.create(name, quota: nil)
            }
        }
    }
}
