import FragmentCore
import CarmaJSON
import CarmaText
import Foundation
import Synchronization

struct PutOperation: Sendable {
    let id: String
    let input: FragmentInput
    /// Its text-index document, computed on the caller's thread; the log stage sets the version.
    let document: TextIndex.Document
    let precondition: WritePrecondition
    /// A batch item: acknowledged without a write when the fragment holds this input already.
    var unlessUnchanged = false
    let completion: @Sendable (Result<PutOutcome, StoreError>) -> Void
}

struct DeleteOperation: Sendable {
    let id: String
    let precondition: WritePrecondition
    /// Set when the store deletes a fragment because it expired (compaction): only that version, and
    /// only if it has expired. A client's delete of an expired fragment finds nothing (404).
    var expiredVersion: UInt64? = nil
    let completion: @Sendable (Result<Void, StoreError>) -> Void
}

extension FragmentStore {
    /// Stores a new version of a fragment. `completion` runs (on the log thread) once its record is
    /// durable in both logs and the index serves it, or with the reason nothing changed.
    public func put(
        _ id: String, _ input: FragmentInput, precondition: WritePrecondition = .none,
        completion: @escaping @Sendable (Result<PutOutcome, StoreError>) -> Void
    ) {
        if let failure = FragmentInput.check(id, input, limits: self.configuration.limits) {
            return completion(.failure(failure))
        }
        // Tokenising and sketching is CPU work: done here, on the caller's thread, not on the serial log thread.
        let document = self.document(id: id, version: 0, input: input)
        if !self.pipeline.submit(.put(PutOperation(id: id, input: input, document: document, precondition: precondition, completion: completion))) {
            completion(.failure(.closed))
        }
    }

    /// Deletes a fragment on purpose: it answers 404 afterwards and is never rebuilt.
    public func delete(_ id: String, precondition: WritePrecondition = .none, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        if !self.pipeline.submit(.delete(DeleteOperation(id: id, precondition: precondition, completion: completion))) {
            completion(.failure(.closed))
        }
    }

    /// One operation of a log batch, between planning and the append.
    private enum Planned {
        /// `previous` is the row replaced, expired or not (the registry rewrites its tags); `created`
        /// says whether clients saw no fragment before.
        case put(PutOperation, row: StoredRow, record: [UInt8], previous: StoredRow?, created: Bool, primary: Int, redundancy: Int)
        case delete(DeleteOperation, previous: StoredRow, version: UInt64)
        case append(AppendOperation, primary: [Int], redundancy: [Int])
        case change(RegistryChange)
        case barrier(@Sendable () -> Void)
    }

    /// Log stage for one batch (log thread only): in order, check preconditions and assign versions
    /// (later operations see earlier ones), encode every record into one buffer per log, append both,
    /// sync both at once, then update the index and acknowledge. Returns the registry work, in order.
    func logStage(_ taken: [PipelineOperation]) -> [ApplyItem] {
        let batch = taken.flatMap { operation -> [PipelineOperation] in
            if case .puts(let puts) = operation { return puts.map(PipelineOperation.put) }
            return [operation]
        }
        var pending: [String: StoredRow?] = [:]
        let batchTime = Timestamp.now
        /// The row as the index has it, expired or not (tags and repair entries of the registry row).
        func current(_ id: String) -> StoredRow? {
            if let planned = pending[id] { return planned }
            return self.state.withLock { $0[id]?.row }
        }
        /// The row as clients see it: an expired fragment no longer exists for preconditions,
        /// `created` and deletes.
        func visible(_ id: String) -> StoredRow? {
            current(id).flatMap { $0.isExpired(at: batchTime) ? nil : $0 }
        }
        var primary: [UInt8] = []
        var redundancy: [UInt8] = []
        var plans: [Planned] = []
        plans.reserveCapacity(batch.count)
        /// What this batch's planned puts and deletes add to each namespace (quotas see them).
        var added: [String: NamespaceUsage] = [:]
        func encode(_ record: PendingRecord, into buffer: inout [UInt8]) -> Int {
            let offset = buffer.count
            let sequence = self.lastSequence.add(1, ordering: .relaxed).newValue
            LogRecord.encode(
                into: &buffer, kind: record.kind, id: record.id, version: record.version, sequence: sequence, body: record.body,
                bodyChecksum: record.checksum)
            return offset
        }

        for operation in batch {
            switch operation {
            case .put(let put):
                let previous = current(put.id)
                let replaced = previous.flatMap { $0.isExpired(at: batchTime) ? nil : $0 }
                if let failure = put.precondition.check(replaced?.base, id: put.id) {
                    put.completion(.failure(failure))
                    continue
                }
                if put.unlessUnchanged, pending[put.id] == nil, let replaced, let same = self.holding(put.input, replaced) {
                    put.completion(.success(PutOutcome(created: false, unchanged: true, fragment: same)))
                    continue
                }
                // Checked here, in log order: a namespace deleted meanwhile takes no more writes,
                // and a quota holds against every write planned before this one.
                let namespace = FragmentKey.namespace(of: put.id)
                let change = NamespaceUsage(fragments: previous == nil ? 1 : 0, bytes: Int64(put.input.content.utf8.count) - Int64(previous?.size ?? 0))
                if let failure = self.admit(change, to: namespace, planned: added[namespace] ?? NamespaceUsage()) {
                    put.completion(.failure(failure))
                    continue
                }
                added[namespace, default: NamespaceUsage()] = added[namespace, default: NamespaceUsage()] + change
                if let embedding = put.input.embedding, let failure = self.acceptEmbeddingDimension(embedding.count) {
                    put.completion(.failure(failure))
                    continue
                }
                let version = self.lastVersion.add(1, ordering: .relaxed).newValue
                let now = Timestamp.now
                let record = FragmentRecord(id: put.id, version: version, input: put.input, createdAt: replaced?.createdAt ?? now, updatedAt: now)
                let bytes = record.encode()
                let row = StoredRow(
                    id: put.id, version: version, status: .ok, checksum: CRC32C.checksum(bytes), recordLength: bytes.count,
                    size: record.size, links: put.input.links, tags: put.input.tags, createdAt: record.createdAt, updatedAt: now,
                    expiresAt: put.input.expiresAt)
                let logged = PendingRecord(kind: .put, id: put.id, version: version, body: bytes, checksum: row.checksum)
                let primaryOffset = encode(logged, into: &primary)
                let redundancyOffset = encode(logged, into: &redundancy)
                pending[put.id] = row
                plans.append(
                    .put(put, row: row, record: bytes, previous: previous, created: replaced == nil, primary: primaryOffset, redundancy: redundancyOffset))
            case .delete(let delete):
                if let expired = delete.expiredVersion {
                    guard let row = current(delete.id), row.version == expired, row.isExpired(at: batchTime) else {
                        delete.completion(.failure(.precondition("'\(delete.id)' changed since it expired", current: current(delete.id)?.version)))
                        continue
                    }
                }
                guard let previous = delete.expiredVersion == nil ? visible(delete.id) : current(delete.id) else {
                    delete.completion(.failure(.notFound(delete.id)))
                    continue
                }
                if let failure = delete.precondition.check(previous.base, id: delete.id) {
                    delete.completion(.failure(failure))
                    continue
                }
                let version = self.lastVersion.add(1, ordering: .relaxed).newValue
                let tombstone = PendingRecord(kind: .delete, id: delete.id, version: version, body: [], checksum: 0)
                _ = encode(tombstone, into: &primary)
                _ = encode(tombstone, into: &redundancy)
                pending[delete.id] = .some(nil)
                let namespace = FragmentKey.namespace(of: delete.id)
                added[namespace] = (added[namespace] ?? NamespaceUsage()) + NamespaceUsage(fragments: -1, bytes: -Int64(previous.size))
                plans.append(.delete(delete, previous: previous, version: version))
            case .append(let append):
                let primaryOffsets = append.primary.map { encode($0, into: &primary) }
                let redundancyOffsets = append.redundancy.map { encode($0, into: &redundancy) }
                plans.append(.append(append, primary: primaryOffsets, redundancy: redundancyOffsets))
            case .change(let change):
                plans.append(.change(change))
            case .barrier(let signal):
                plans.append(.barrier(signal))
            case .puts:
                continue  // taken apart above
            }
        }

        var starts: (primary: LogLocation?, redundancy: LogLocation?) = (nil, nil)
        if let failure = self.appendAndSync(primary: primary, redundancy: redundancy, starts: &starts) {
            self.logger.error("log append failed", metadata: ["error": "\(failure)", "store.batch": "\(batch.count)"])
            return self.fail(plans, with: failure)
        }
        func at(_ start: LogLocation?, _ offset: Int) -> LogLocation {
            LogLocation(segment: start!.segment, offset: start!.offset + UInt64(offset))
        }

        // Durable: make it visible, then acknowledge.
        var items: [ApplyItem] = []
        items.reserveCapacity(plans.count + 1)
        enum Acknowledgement {
            case write(() -> Void)
            case append(AppendOperation, AppendedLocations)
        }
        var acknowledgements: [Acknowledgement] = []
        acknowledgements.reserveCapacity(plans.count)
        self.state.withLock { state in
            for plan in plans {
                switch plan {
                case .put(let put, var row, let record, let previous, let created, let primaryOffset, let redundancyOffset):
                    row.location = at(starts.primary, primaryOffset)
                    row.redundancy = at(starts.redundancy, redundancyOffset)
                    if let old = state[row.id]?.row { self.releaseRecords(of: old) }
                    self.retainRecords(of: row)
                    let body = ServedFragment.makeBody(record: record, status: .ok, checksum: row.checksum)
                    state.set(row.id, IndexEntry(row: row))
                    state.cache(row.id, version: row.version, body: body, recordLength: record.count)
                    let served = ServedFragment(body: body, version: row.version, status: .ok, checksum: row.checksum)
                    acknowledgements.append(.write { put.completion(.success(PutOutcome(created: created, fragment: served))) })
                    items.append(
                        .put(
                            row: row, sketch: put.document.sketch.encode(), embedding: put.input.embedding.map(Self.encodeEmbedding), previous: previous,
                            created: created))
                case .delete(let delete, _, let version):
                    if let old = state[delete.id]?.row { self.releaseRecords(of: old) }
                    state.set(delete.id, nil)
                    acknowledgements.append(.write { delete.completion(.success(())) })
                    items.append(.delete(id: delete.id, version: version))
                case .append(let append, let primaryOffsets, let redundancyOffsets):
                    let locations = AppendedLocations(
                        primary: primaryOffsets.map { at(starts.primary, $0) }, redundancy: redundancyOffsets.map { at(starts.redundancy, $0) })
                    // Appends update the index themselves (under the same lock): run them after it.
                    acknowledgements.append(.append(append, locations))
                case .change(let change):
                    items.append(.change(change))
                case .barrier(let signal):
                    items.append(.barrier(signal))
                }
            }
        }
        self.updateTextIndex(plans: plans)
        self.counters.commits.add(1, ordering: .relaxed)
        self.counters.committedOperations.add(batch.count, ordering: .relaxed)
        for acknowledgement in acknowledgements {
            switch acknowledgement {
            case .write(let acknowledge):
                acknowledge()
            case .append(let append, let locations):
                if let change = append.completion(.success(locations)) { items.append(.change(change)) }
            }
        }
        if !primary.isEmpty || !redundancy.isEmpty {
            items.append(
                .position(
                    LogPositions(
                        primary: self.primaryLog.end, redundancy: self.redundancyLog.end,
                        sequence: self.lastSequence.load(ordering: .relaxed), maxVersion: self.lastVersion.load(ordering: .relaxed))))
        }
        return items
    }

    /// Appends the two buffers and syncs both logs (at once, when both have something). On failure
    /// both appends are taken back, so no record of a failed batch can surface later.
    private func appendAndSync(primary: [UInt8], redundancy: [UInt8], starts: inout (primary: LogLocation?, redundancy: LogLocation?)) -> StoreError? {
        do {
            if !primary.isEmpty { starts.primary = try self.primaryLog.append(primary) }
            if !redundancy.isEmpty { starts.redundancy = try self.redundancyLog.append(redundancy) }
        } catch {
            if let start = starts.primary { self.primaryLog.rollback(to: start) }
            return .from(error, doing: "append to the log")
        }
        let logs = [starts.primary.map { _ in self.primaryLog }, starts.redundancy.map { _ in self.redundancyLog }].compactMap { $0 }
        let failures = Mutex<[FileError]>([])
        if logs.count == 2 {
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                do throws(FileError) { try logs[index].sync() } catch { failures.withLock { $0.append(error) } }
            }
        } else if let log = logs.first {
            do throws(FileError) { try log.sync() } catch { failures.withLock { $0.append(error) } }
        }
        guard let failure = failures.withLock({ $0.first }) else { return nil }
        if let start = starts.primary { self.primaryLog.rollback(to: start) }
        if let start = starts.redundancy { self.redundancyLog.rollback(to: start) }
        return .from(failure, doing: "sync the log")
    }

    /// Fails every write of a batch whose records did not become durable; registry-only work goes on.
    private func fail(_ plans: [Planned], with failure: StoreError) -> [ApplyItem] {
        // Versions and sequence numbers handed out stay used: they are never reused.
        var items: [ApplyItem] = []
        for plan in plans {
            switch plan {
            case .put(let put, _, _, _, _, _, _): put.completion(.failure(failure))
            case .delete(let delete, _, _): delete.completion(.failure(failure))
            case .append(let append, _, _): if let change = append.completion(.failure(failure)) { items.append(.change(change)) }
            case .change(let change): items.append(.change(change))
            case .barrier(let signal): items.append(.barrier(signal))
            }
        }
        return items
    }

    /// Hands the batch's text-index changes to the indexer (before the acknowledgements, so that a
    /// query after an acknowledged write waits for it).
    private func updateTextIndex(plans: [Planned]) {
        var changes: [IndexFeed.Change] = []
        for plan in plans {
            switch plan {
            case .put(let put, let row, _, _, _, _, _):
                var document = put.document
                document.version = row.version
                changes.append(.upsert(document))
            case .delete(let delete, _, _):
                changes.append(.remove(delete.id))
            default:
                continue
            }
        }
        self.feed.submit(changes)
    }

    /// Apply stage (apply thread only): one SQLite transaction for many log batches. A failed
    /// transaction is retried, never dropped: the log holds the writes, and the applied position only
    /// moves with them. Registry-only changes fail after a few attempts (their callers hear of it).
    func applyStage(_ items: [ApplyItem], stopping: () -> Bool) {
        var work = items
        var attempt = 0
        while true {
            do {
                try self.apply(work)
                break
            } catch {
                attempt += 1
                self.logger.error("registry apply failed", metadata: ["error": "\(error)", "attempt": "\(attempt)", "store.items": "\(work.count)"])
                if attempt >= 3 {
                    // Give registry-only changes their failure; keep what the log holds for later.
                    let failure = (error as? StoreError) ?? StoreError(.io, "cannot update the registry: \(error)")
                    work = work.filter { item in
                        if case .change(let change) = item {
                            change.completion?(.failure(failure))
                            return false
                        }
                        return true
                    }
                }
                if stopping() && attempt >= 5 {
                    // The next start replays the logs from the last applied position.
                    for case .barrier(let signal) in work { signal() }
                    return
                }
                Thread.sleep(forTimeInterval: min(2, 0.05 * Double(1 << min(attempt, 6))))
            }
        }
        for item in work {
            switch item {
            case .change(let change): change.completion?(.success(()))
            case .barrier(let signal): signal()
            default: continue
            }
        }
    }

    private func apply(_ items: [ApplyItem]) throws {
        do {
            try self.registry.writer.transaction {
                var position: LogPositions?
                for item in items {
                    switch item {
                    case .put(let row, let sketch, let embedding, let previous, let created):
                        guard try self.registry.upsert(row, previousTags: previous?.tags, sketch: sketch, embedding: embedding) else { continue }
                        if created, let previous, let expiry = FragmentLifecycle.transition(from: previous.base, on: .expired, at: row.updatedAt) {
                            // The id comes back after it expired: what was left of the expired fragment goes.
                            try self.registry.record(expiry, id: row.id, at: row.updatedAt)
                        }
                        if let written = FragmentLifecycle.transition(from: created ? nil : previous?.base, on: .written(row.base, imported: false), at: row.updatedAt) {
                            try self.registry.record(written, id: row.id, at: row.updatedAt)
                        }
                    case .delete(let id, let version):
                        try self.registry.delete(id, before: version)
                    case .change(let change):
                        try change.apply(self.registry)
                    case .barrier:
                        continue
                    case .position(let reached):
                        position = reached
                    }
                }
                if let position {
                    try self.registry.setPositions(position)
                }
            }
        } catch let error as SQLiteError {
            throw StoreError.from(error, doing: "update the registry")
        }
    }

    /// Counts a row's records as live in their segments.
    func retainRecords(of row: StoredRow) {
        if let location = row.location {
            self.primaryLog.retain(location, length: LogRecord.length(id: row.id, bodyLength: row.recordLength))
        }
        if let location = row.redundancy {
            self.redundancyLog.retain(location, length: LogRecord.length(id: row.id, bodyLength: row.exactLength))
        }
    }

    /// Counts a row's records as garbage (superseded, deleted, or moved).
    func releaseRecords(of row: StoredRow) {
        if let location = row.location {
            self.primaryLog.release(location, length: LogRecord.length(id: row.id, bodyLength: row.recordLength))
        }
        if let location = row.redundancy {
            self.redundancyLog.release(location, length: LogRecord.length(id: row.id, bodyLength: row.exactLength))
        }
    }
}
