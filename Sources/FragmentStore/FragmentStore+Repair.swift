import CarmaJSON
import Dispatch
import Synchronization

// The narrow interface the dream engine repairs through: the queue, verified sources of exact bytes,
// and outcomes that are made durable (files synced, registry committed) before they return.

/// What the engine needs to know to repair one fragment.
public struct RepairTarget: Sendable {
    public var row: FragmentRow

    public var id: String { self.row.id }
    public var version: UInt64 { self.row.version }
    /// Checksum and length of the exact record to recover: the original's, also for a fragment that is
    /// currently served as a reconstruction.
    public var exactChecksum: UInt32 { self.row.exactChecksum }
    public var exactLength: Int { self.row.exactLength }
}

extension FragmentRow {
    /// Checksum and length of the exact record: the original's, also while a reconstruction is served.
    var exactChecksum: UInt32 { self.originalChecksum ?? self.checksum }
    var exactLength: Int { self.originalLength ?? self.recordLength }
    /// The kind of payload file this row's status serves from.
    var servedKind: PayloadFile.Kind { self.status == .reconstructed ? .reconstruction : .original }
    /// Bytes the redundancy copy of the exact record takes in its segment.
    var copyLength: Int { RedundancyLog.copyLength(id: self.id, recordLength: self.exactLength) }
}

/// An exact record to put back, and where it came from.
public struct Restoration: Sendable {
    public var target: RepairTarget
    public var record: [UInt8]
    /// The recovery tier that found the bytes: `primary`, `cache` or `redundancy`.
    public var tier: String
    /// A human description of the source (e.g. the redundancy directory).
    public var source: String
    public var cycle: Int64?
    public var durationMilliseconds: Double

    public init(target: RepairTarget, record: [UInt8], tier: String, source: String, cycle: Int64?, durationMilliseconds: Double) {
        self.target = target
        self.record = record
        self.tier = tier
        self.source = source
        self.cycle = cycle
        self.durationMilliseconds = durationMilliseconds
    }
}

/// Text rebuilt from context for a fragment with no exact source left.
public struct RebuiltFragment: Sendable {
    public var content: String
    public var confidence: Double
    public var sources: [String]
    public var method: String

    public init(content: String, confidence: Double, sources: [String], method: String) {
        self.content = content
        self.confidence = confidence
        self.sources = sources
        self.method = method
    }
}

/// What the scrub found for one fragment.
public enum ScrubFinding: Sendable, Equatable {
    case intact
    /// The served payload is damaged; the fragment is now blank and queued.
    case damaged(BlankReason)
    /// The served payload is fine but the redundancy copy was damaged; it was rewritten.
    case redundancyRepaired(BlankReason)
    /// The redundancy copy is damaged and could not be rewritten.
    case redundancyDamaged(BlankReason)
    /// Blank, unknown or changed meanwhile: nothing to verify.
    case skipped
}

extension FragmentStore {
    // MARK: Queue

    /// Repairs due now, most urgent first.
    public func readyRepairs(limit: Int, now: Timestamp = .now) throws(StoreError) -> [RepairTicket] {
        do {
            return try self.registry.readyRepairs(now: now, limit: limit)
        } catch {
            throw StoreError(.io, "cannot read the repair queue: \(error)")
        }
    }

    /// Tickets queued in total, and those due now.
    public func repairQueueDepth(now: Timestamp = .now) -> (total: Int, ready: Int) {
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
            return RepairTarget(row: row)
        }
    }

    // MARK: Sources of exact bytes (each verified against the registry's checksum)

    /// The primary file, if it holds the exact record after all (a transient error, or restored by hand).
    public func exactRecordFromPrimary(_ target: RepairTarget) -> [UInt8]? {
        guard case .record(let record) = self.primary.read(id: target.id, version: target.version, kind: .original, checksum: target.exactChecksum) else {
            return nil
        }
        return record
    }

    /// The cached body, if the cache still holds the exact version.
    public func exactRecordFromCache(_ target: RepairTarget) -> [UInt8]? {
        let cached: (body: [UInt8], recordLength: Int)? = self.state.withLock { state in
            guard let entry = state[target.id], entry.row.version == target.version, entry.cacheSlot >= 0 else { return nil }
            let slot = state.cache.slot(entry.cacheSlot)
            guard slot.version == target.version else { return nil }
            return (slot.body, slot.recordLength)
        }
        guard let cached else { return nil }
        let record = Self.record(fromServedBody: cached.body, recordLength: cached.recordLength)
        guard record.count == target.exactLength, CRC32C.checksum(record) == target.exactChecksum else { return nil }
        return record
    }

    /// The redundancy copy, if it is intact.
    public func exactRecordFromRedundancy(_ target: RepairTarget) -> [UInt8]? {
        guard let location = target.row.redundancy,
            case .record(let record) = self.redundancy.read(
                location, id: target.id, version: target.version, recordLength: target.exactLength, checksum: target.exactChecksum)
        else { return nil }
        return record
    }

    /// Where redundancy copies live, for reports.
    public var redundancyRoot: String { self.redundancy.root }

    // MARK: Outcomes

    /// Puts exact records back, as one group: files written, synced, renamed into place and synced,
    /// then one registry commit, then the index. Returns, per item, whether it was applied (false when
    /// the fragment changed meanwhile).
    public func restore(_ items: [Restoration]) throws(StoreError) -> [Bool] {
        guard !items.isEmpty else { return [] }
        var moves: [(temporary: String, final: String)] = []
        var copies: [Int: RedundancyLocation] = [:]
        do {
            var missingCopies: [Int] = []
            for (index, item) in items.enumerated() {
                let target = item.target
                if item.tier != "primary" {
                    let path = self.primary.path(id: target.id, version: target.version, kind: .original)
                    let payload = PayloadFile.encode(kind: .original, id: target.id, version: target.version, record: item.record, recordChecksum: target.exactChecksum)
                    moves.append((try FileSystem.writeTemporary(for: path, payload), path))
                }
                if item.tier != "redundancy", self.exactRecordFromRedundancy(target) == nil {
                    missingCopies.append(index)
                }
            }
            let locations = try self.redundancy.append(missingCopies.map {
                RedundancyLog.Entry(id: items[$0].target.id, version: items[$0].target.version, record: items[$0].record, checksum: items[$0].target.exactChecksum)
            })
            for (index, location) in zip(missingCopies, locations) { copies[index] = location }
            try self.primary.sync()
            if !copies.isEmpty, !self.sharedFileSystem { try self.redundancy.sync() }
            for move in moves {
                try FileSystem.move(move.temporary, to: move.final)
            }
            try self.primary.sync()
        } catch {
            for move in moves { FileSystem.remove(move.temporary) }
            throw .from(error, doing: "write restored payloads")
        }

        let applied = Mutex<[Bool]>([Bool](repeating: false, count: items.count))
        let newCopies = copies
        let now = Timestamp.now
        try self.commitAndWait(
            RegistryChange(apply: { registry in
                var results = [Bool](repeating: false, count: items.count)
                for (index, item) in items.enumerated() {
                    let target = item.target
                    results[index] = try registry.markRestored(
                        target.id, version: target.version, checksum: target.exactChecksum, recordLength: target.exactLength,
                        redundancy: newCopies[index] ?? target.row.redundancy)
                    guard results[index] else { continue }
                    try registry.dequeueRepair(target.id)
                    var detail: JSONObject = [
                        "version": .number(Double(target.version)), "tier": .string(item.tier), "source": .string(item.source),
                        "duration_ms": .number((item.durationMilliseconds * 1000).rounded() / 1000),
                        "was": .string(target.row.status.rawValue),
                    ]
                    if let cycle = item.cycle { detail["cycle"] = .number(Double(cycle)) }
                    try registry.addEvent(target.id, at: now, kind: "recovered", detail: detail)
                }
                applied.withLock { $0 = results }
            }))
        let results = applied.withLock { $0 }
        self.state.withLock { state in
            for (index, item) in items.enumerated() where results[index] {
                let target = item.target
                guard var entry = state[target.id], entry.row.version == target.version else { continue }
                entry.row.status = .ok
                entry.row.checksum = target.exactChecksum
                entry.row.recordLength = target.exactLength
                entry.row.blankReason = nil
                entry.row.lostAt = nil
                entry.row.detectedBy = nil
                entry.row.originalChecksum = nil
                entry.row.originalLength = nil
                entry.row.confidence = nil
                entry.row.redundancy = copies[index] ?? entry.row.redundancy
                entry.queuedAt = nil
                state.set(target.id, entry)
                state.cache(target.id, version: target.version, body: Self.servedBody(record: item.record, status: .ok, checksum: target.exactChecksum), recordLength: item.record.count)
            }
        }
        for (index, item) in items.enumerated() where results[index] && item.target.row.status == .reconstructed {
            self.primary.remove(id: item.target.id, version: item.target.version, kind: .reconstruction)
        }
        return results
    }

    /// Stores a reconstruction for a blank fragment: flagged `reconstructed`, kept in the queue (at
    /// background priority, from `retryAt`) so that a later cycle can still recover it exactly.
    /// - Returns: Whether it was applied (false when the fragment changed meanwhile).
    public func saveReconstruction(_ target: RepairTarget, _ rebuilt: RebuiltFragment, cycle: Int64?, retryAt: Timestamp) throws(StoreError) -> Bool {
        let now = Timestamp.now
        // Rounded once here so that records, rows, listings and queries all say the same number.
        let confidence = (rebuilt.confidence * 1000).rounded() / 1000
        let reconstruction = Reconstruction(confidence: confidence, sources: rebuilt.sources, method: rebuilt.method, at: now)
        let record = FragmentRecord(
            id: target.id, version: target.version,
            input: FragmentInput(content: rebuilt.content, links: target.row.links, tags: target.row.tags),
            createdAt: target.row.createdAt, updatedAt: target.row.updatedAt, reconstruction: reconstruction)
        let bytes = record.encode()
        let checksum = CRC32C.checksum(bytes)
        do {
            try self.primary.replace(id: target.id, version: target.version, kind: .reconstruction, record: bytes, checksum: checksum)
        } catch {
            throw .from(error, doing: "write a reconstruction")
        }
        var row = target.row
        row.status = .reconstructed
        row.checksum = checksum
        row.recordLength = bytes.count
        row.originalChecksum = target.exactChecksum
        row.originalLength = target.exactLength
        row.confidence = confidence
        let finalRow = row
        let applied = Mutex(false)
        try self.commitAndWait(
            RegistryChange(apply: { registry in
                guard try registry.markReconstructed(finalRow) else { return }
                applied.withLock { $0 = true }
                try registry.postponeRepair(target.id, priority: .background, notBefore: retryAt, error: "reconstructed; waiting for an exact source")
                var detail: JSONObject = [
                    "version": .number(Double(target.version)), "confidence": .number(confidence),
                    "sources": JSONValue(rebuilt.sources), "method": .string(rebuilt.method),
                ]
                if let cycle { detail["cycle"] = .number(Double(cycle)) }
                try registry.addEvent(target.id, at: now, kind: "reconstructed", detail: detail)
            }))
        guard applied.withLock({ $0 }) else {
            self.primary.remove(id: target.id, version: target.version, kind: .reconstruction)
            return false
        }
        self.state.withLock { state in
            guard var entry = state[target.id], entry.row.version == target.version, entry.row.status == .blank else { return }
            entry.row = finalRow
            state.set(target.id, entry)
            state.cache(target.id, version: target.version, body: Self.servedBody(record: bytes, status: .reconstructed, checksum: checksum), recordLength: bytes.count)
        }
        return true
    }

    /// Leaves a fragment as it is and schedules another attempt.
    /// - Parameter recordEvent: Whether the fragment's history gets a `repair_failed` event (not for
    ///   a reconstruction still waiting for an exact source, which would repeat every cycle).
    public func postponeRepair(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?, recordEvent: Bool) throws(StoreError) {
        let now = Timestamp.now
        try self.commitAndWait(
            RegistryChange(apply: { registry in
                try registry.postponeRepair(target.id, priority: nil, notBefore: retryAt, error: reason)
                guard recordEvent else { return }
                var detail: JSONObject = [
                    "version": .number(Double(target.version)), "reason": .string(reason), "attempt": .number(Double(attempt)),
                    "next_try_at": .string(retryAt.rfc3339),
                ]
                if let cycle { detail["cycle"] = .number(Double(cycle)) }
                try registry.addEvent(target.id, at: now, kind: "repair_failed", detail: detail)
            }))
    }

    /// Drops a ticket whose fragment needs nothing any more (deleted, replaced, or healthy again).
    public func dropRepair(_ id: String) {
        self.pipeline.submit(.change(RegistryChange(apply: { try $0.dequeueRepair(id) })))
    }

    // MARK: Scrub

    /// Ids in order after `after`, for a walk over the whole store.
    public func scrubIDs(after: String?, limit: Int) throws(StoreError) -> [String] {
        do {
            return try self.registry.ids(after: after, limit: limit)
        } catch {
            throw StoreError(.io, "cannot walk the registry: \(error)")
        }
    }

    /// Verifies one fragment's served payload and its redundancy copy. A damaged payload turns the
    /// fragment blank (queued at scrub priority); a damaged redundancy copy is rewritten from the
    /// good payload.
    public func scrub(_ id: String) -> ScrubFinding {
        guard let target = self.repairTarget(id), target.row.status != .blank else { return .skipped }
        let served = self.primary.read(id: id, version: target.version, kind: target.row.servedKind, checksum: target.row.checksum)
        if let damage = served.damage {
            return self.markBlank(id, version: target.version, reason: damage, detectedBy: .scrub, priority: .scrub) == nil ? .skipped : .damaged(damage)
        }
        guard target.row.status == .ok, case .record(let record) = served else { return .intact }
        let copy = target.row.redundancy.map {
            self.redundancy.read($0, id: id, version: target.version, recordLength: target.exactLength, checksum: target.exactChecksum)
        }
        guard let copyDamage = (copy ?? .missing).damage else { return .intact }
        self.counters.redundancyDamage.add(1, ordering: .relaxed)
        let location: RedundancyLocation
        do {
            location = try self.redundancy.append([RedundancyLog.Entry(id: id, version: target.version, record: record, checksum: target.exactChecksum)])[0]
            try self.redundancy.sync()
        } catch {
            self.logger.warning("cannot rewrite a redundancy copy", metadata: ["fragment.id": "\(id)", "error": "\(error)"])
            return .redundancyDamaged(copyDamage)
        }
        self.moveRedundancy(target.row, to: location, event: ["reason": .string(copyDamage.rawValue), "detected_by": "scrub"])
        return .redundancyRepaired(copyDamage)
    }

    /// Points a version at its new redundancy copy (durably, in the background) and releases the old.
    func moveRedundancy(_ row: FragmentRow, to location: RedundancyLocation, event: JSONObject?) {
        let now = Timestamp.now
        let applied = self.state.withLock { state -> Bool in
            guard var entry = state[row.id], entry.row.version == row.version else { return false }
            entry.row.redundancy = location
            state.set(row.id, entry)
            return true
        }
        guard applied else {
            self.redundancy.release(location, length: row.copyLength)
            return
        }
        if let old = row.redundancy {
            self.redundancy.release(old, length: row.copyLength)
        }
        self.pipeline.submit(
            .change(
                RegistryChange(apply: { registry in
                    guard try registry.setRedundancy(row.id, version: row.version, location), var detail = event else { return }
                    detail["version"] = .number(Double(row.version))
                    try registry.addEvent(row.id, at: now, kind: "redundancy_repaired", detail: detail)
                })))
    }

    /// Rewrites the live copies of mostly-garbage redundancy segments into the current one and deletes
    /// the old segments. Returns the segments removed and the copies moved.
    public func compactRedundancy(threshold: Double = 0.5, maxSegments: Int = 4) -> (segments: Int, copies: Int) {
        let candidates = self.redundancy.compactionCandidates(threshold: threshold).prefix(maxSegments)
        guard !candidates.isEmpty else { return (0, 0) }
        let segments = Set(candidates.map(\.segment))
        let copiedThere: (FragmentRow) -> Bool = { row in row.redundancy.map { segments.contains($0.segment) } ?? false }
        let rows = self.state.withLock { $0.rows(where: copiedThere) }
        var moved = 0
        for row in rows {
            let target = RepairTarget(row: row)
            // A copy that no longer verifies is left for the scrub to rewrite from the payload.
            guard let record = self.exactRecordFromRedundancy(target),
                let location = try? self.redundancy.append([RedundancyLog.Entry(id: row.id, version: row.version, record: record, checksum: target.exactChecksum)]).first
            else { continue }
            self.moveRedundancy(row, to: location, event: nil)
            moved += 1
        }
        do {
            try self.redundancy.sync()
        } catch {
            self.logger.warning("cannot sync compacted redundancy copies; keeping the old segments", metadata: ["error": "\(error)"])
            return (0, moved)
        }
        self.flush()
        // A copy that could not be moved (it no longer verifies) keeps its segment until the scrub rewrites it.
        let stillUsed = Set(self.state.withLock { $0.rows(where: copiedThere) }.compactMap(\.redundancy?.segment))
        for segment in segments.subtracting(stillUsed) {
            self.redundancy.removeSegment(segment)
        }
        return (segments.count, moved)
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
        // Read before the commit thread writes cycles, at engine start-up.
        (try? self.registry.lastCycleID()) ?? 0
    }

    /// Submits a registry change and waits until it is committed.
    func commitAndWait(_ change: RegistryChange) throws(StoreError) {
        let result = Mutex<Result<Void, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        var change = change
        change.completion = { outcome in
            result.withLock { $0 = outcome }
            done.signal()
        }
        guard self.pipeline.submit(.change(change)) else { throw .closed }
        done.wait()
        try result.withLock { $0! }.get()
    }
}
