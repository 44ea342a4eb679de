import FragmentCore
import CarmaJSON
import Dispatch
import Synchronization

extension FragmentStore {
    // MARK: Queue

    /// Repairs due now, most urgent first.
    public func readyRepairs(limit: Int, now: Timestamp) throws(StoreError) -> [RepairTicket] {
        do {
            return try self.registry.readyRepairs(now: now, limit: limit)
        } catch {
            throw StoreError(.io, "cannot read the repair queue: \(error)")
        }
    }

    /// Tickets queued in total, and those due now.
    public func repairQueueDepth(now: Timestamp) -> (total: Int, ready: Int) {
        (try? self.registry.queueDepth(now: now)) ?? (0, 0)
    }

    /// Queues a repair (durably, in the background).
    public func enqueueRepair(_ id: String, priority: RepairPriority, reason: String) {
        let now = Timestamp.now
        self.pipeline.submit(.change(RegistryChange(apply: { try $0.enqueueRepair(id, priority: priority, at: now, reason: reason) })))
    }

    /// What a repair of `id` must recover, or nil when the id is unknown.
    public func repairTarget(_ id: String) -> RepairTarget? {
        self.state.withLock { state in
            guard let row = state[id]?.row else { return nil }
            return RepairTarget(row: row.base)
        }
    }

    // MARK: Sources of exact bytes (each verified against the index's checksum)

    /// The target's row with its log locations, while the fragment is still at the target's version.
    private func storedRow(_ target: RepairTarget) -> StoredRow? {
        self.indexedRow(target.id).flatMap { $0.version == target.version ? $0 : nil }
    }

    /// The served record as the primary log holds it.
    func readServed(_ row: StoredRow) -> SegmentLog.ReadOutcome {
        guard let location = row.location else { return .missing }
        return self.primaryLog.read(location, id: row.id, version: row.version, kind: row.servedKind, bodyLength: row.recordLength, checksum: row.checksum)
    }

    /// The primary record, if it holds the exact bytes after all (a passing error, or put back by hand).
    func exactRecordFromPrimary(_ target: RepairTarget) -> [UInt8]? {
        guard target.row.status != .reconstructed, let row = self.storedRow(target),
            case .record(let record) = self.readServed(row)
        else { return nil }
        return record
    }

    /// The cached body, if the cache still holds the exact version.
    func exactRecordFromCache(_ target: RepairTarget) -> [UInt8]? {
        let cached: (body: [UInt8], recordLength: Int)? = self.state.withLock { state in
            guard let entry = state[target.id], entry.row.version == target.version, entry.cacheSlot >= 0 else { return nil }
            let slot = state.cache.slot(entry.cacheSlot)
            guard slot.version == target.version else { return nil }
            return (slot.body, slot.recordLength)
        }
        guard let cached else { return nil }
        let record = ServedFragment.record(fromServedBody: cached.body, recordLength: cached.recordLength)
        guard record.count == target.exactLength, CRC32C.checksum(record) == target.exactChecksum else { return nil }
        return record
    }

    /// The redundancy copy, if it is intact.
    func exactRecordFromRedundancy(_ target: RepairTarget) -> [UInt8]? {
        guard let location = self.storedRow(target)?.redundancy,
            case .record(let record) = self.redundancyLog.read(
                location, id: target.id, version: target.version, kind: .put, bodyLength: target.exactLength, checksum: target.exactChecksum)
        else { return nil }
        return record
    }

    // MARK: Outcomes

    /// Appends records through the log stage and waits until they are durable and their registry
    /// change (from `completion`, run on the log thread) is applied.
    func appendAndWait(
        primary: [PendingRecord], redundancy: [PendingRecord],
        _ completion: @escaping @Sendable (AppendedLocations) -> RegistryChange?
    ) throws(StoreError) {
        let result = Mutex<Result<Void, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let finish: @Sendable (Result<Void, StoreError>) -> Void = { outcome in
            result.withLock { $0 = outcome }
            done.signal()
        }
        let operation = AppendOperation(primary: primary, redundancy: redundancy) { outcome in
            switch outcome {
            case .failure(let error):
                finish(.failure(error))
                return nil
            case .success(let locations):
                guard var change = completion(locations) else {
                    finish(.success(()))
                    return nil
                }
                change.completion = finish
                return change
            }
        }
        if primary.isEmpty && redundancy.isEmpty {
            if var change = completion(AppendedLocations(primary: [], redundancy: [])) {
                change.completion = finish
                guard self.pipeline.submit(.change(change)) else { throw .closed }
                done.wait()
            }
        } else {
            guard self.pipeline.submit(.append(operation)) else { throw .closed }
            done.wait()
        }
        try result.withLock { $0! }.get()
    }

    /// Puts exact records back, as one group: appended to the primary log (and to the redundancy log
    /// where the copy is damaged too), synced, then the index and the registry. Returns, per item,
    /// whether it was applied (false when the fragment changed meanwhile).
    public func restore(_ items: [Restoration]) throws(StoreError) -> [Bool] {
        guard !items.isEmpty else { return [] }
        var primary: [PendingRecord] = []
        var primaryIndex: [Int: Int] = [:]
        var redundancy: [PendingRecord] = []
        var redundancyIndex: [Int: Int] = [:]
        for (index, item) in items.enumerated() {
            let target = item.target
            let record = PendingRecord(kind: .put, id: target.id, version: target.version, body: item.record, checksum: target.exactChecksum)
            if item.tier != .primary {
                primaryIndex[index] = primary.count
                primary.append(record)
            }
            if item.tier != .redundancy, self.exactRecordFromRedundancy(target) == nil {
                redundancyIndex[index] = redundancy.count
                redundancy.append(record)
            }
        }
        let applied = Mutex([Bool](repeating: false, count: items.count))
        let now = Timestamp.now
        try self.appendAndWait(primary: primary, redundancy: redundancy) { [primaryIndex, redundancyIndex] locations in
            var rows: [(Int, StoredRow, LifecycleTransition)] = []
            self.state.withLock { state in
                for (index, item) in items.enumerated() {
                    let target = item.target
                    guard var entry = state[target.id], entry.row.version == target.version,
                        let transition = FragmentLifecycle.transition(from: entry.row.base, progress: entry.progress, on: .recovered(item), at: now)
                    else { continue }
                    self.releaseRecords(of: entry.row)
                    entry.row.base = transition.row!
                    if let slot = primaryIndex[index] { entry.row.location = locations.primary[slot] }
                    if let slot = redundancyIndex[index] { entry.row.redundancy = locations.redundancy[slot] }
                    entry.queuedAt = nil
                    entry.progress = transition.progress
                    self.retainRecords(of: entry.row)
                    state.set(target.id, entry)
                    state.cache(
                        target.id, version: target.version, body: ServedFragment.makeBody(record: item.record, status: .ok, checksum: target.exactChecksum),
                        recordLength: item.record.count)
                    rows.append((index, entry.row, transition))
                }
            }
            applied.withLock { flags in for (index, _, _) in rows { flags[index] = true } }
            let changed = rows
            return RegistryChange(apply: { registry in
                for (_, row, transition) in changed {
                    try registry.updatePlacement(row)
                    try registry.record(transition, id: row.id, at: now)
                }
            })
        }
        return applied.withLock { $0 }
    }

    /// Stores a reconstruction for a blank fragment: flagged `reconstructed`, kept in the queue (at
    /// background priority, from `retryAt`) so that a later cycle can still recover it exactly.
    /// - Returns: Whether it was applied (false when the fragment changed meanwhile).
    public func saveReconstruction(_ target: RepairTarget, _ rebuilt: RebuiltFragment, attempt: Int, cycle: Int64?, retryAt: Timestamp) throws(StoreError) -> Bool {
        let now = Timestamp.now
        let stored = rebuilt.stored(for: target, at: now, cycle: cycle)
        let applied = Mutex(false)
        let pending = PendingRecord(kind: .reconstruction, id: target.id, version: target.version, body: stored.record, checksum: stored.checksum)
        try self.appendAndWait(primary: [pending], redundancy: []) { locations in
            let changed: (StoredRow, LifecycleTransition)? = self.state.withLock { state in
                guard var entry = state[target.id], entry.row.version == target.version,
                    let transition = FragmentLifecycle.transition(
                        from: entry.row.base, progress: entry.progress, on: .reconstructed(stored, attempt: attempt, retryAt: retryAt), at: now)
                else { return nil }
                self.releaseRecords(of: entry.row)
                entry.row.base = transition.row!
                entry.row.location = locations.primary[0]
                entry.progress = transition.progress
                self.retainRecords(of: entry.row)
                state.set(target.id, entry)
                state.cache(
                    target.id, version: target.version, body: ServedFragment.makeBody(record: stored.record, status: .reconstructed, checksum: stored.checksum),
                    recordLength: stored.record.count)
                return (entry.row, transition)
            }
            guard let (row, transition) = changed else { return nil }
            applied.withLock { $0 = true }
            return RegistryChange(apply: { registry in
                try registry.updatePlacement(row)
                try registry.record(transition, id: target.id, at: now)
            })
        }
        return applied.withLock { $0 }
    }

    /// Leaves a fragment as it is and schedules another attempt.
    /// - Parameter recordEvent: Whether the fragment's history gets a `repair_failed` event (not for
    ///   a reconstruction still waiting for an exact source, which would repeat every cycle).
    public func postponeRepair(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recordEvent: Bool) throws(StoreError) {
        let now = Timestamp.now
        let event = LifecycleEvent.repairFailed(reason: reason, attempt: attempt, retryAt: retryAt, cycle: cycle, recorded: recordEvent)
        let transition: LifecycleTransition? = self.state.withLock { state in
            guard var entry = state[target.id], entry.row.version == target.version,
                let transition = FragmentLifecycle.transition(from: entry.row.base, progress: entry.progress, on: event, at: now)
            else { return nil }
            entry.progress = transition.progress
            state.set(target.id, entry)
            return transition
        }
        guard let transition else { return }
        try self.commitAndWait(RegistryChange(apply: { registry in try registry.record(transition, id: target.id, at: now) }))
    }

    /// Drops a ticket whose fragment needs nothing any more (deleted, replaced, or healthy again).
    public func dropRepair(_ id: String) {
        self.pipeline.submit(.change(RegistryChange(apply: { try $0.dequeueRepair(id) })))
    }

    // MARK: Cycle reports

    /// Saves a cycle report (insert or update); waits for the commit when `wait` is true.
    public func saveCycleReport(id: Int64, trigger: String, state: String, startedAt: Timestamp, finishedAt: Timestamp?, report: JSONValue, wait: Bool) {
        let change = RegistryChange(apply: { registry in
            try registry.saveCycle(id: id, trigger: trigger, state: state, startedAt: startedAt, finishedAt: finishedAt, report: report)
        })
        if wait {
            try? self.commitAndWait(change)
        } else {
            self.pipeline.submit(.change(change))
        }
    }

    public func cycleReport(_ id: Int64) -> JSONValue? {
        try? self.registry.cycleReport(id)
    }

    public func recentCycleReports(limit: Int) -> [JSONValue] {
        (try? self.registry.recentCycles(limit: limit)) ?? []
    }

    public func lastCycleID() -> Int64 {
        (try? self.registry.lastCycleID()) ?? 0
    }

    /// Submits a registry change and waits until it is applied.
    func commitAndWait(_ change: RegistryChange) throws(StoreError) {
        try self.appendAndWait(primary: [], redundancy: []) { _ in change }
    }
}
