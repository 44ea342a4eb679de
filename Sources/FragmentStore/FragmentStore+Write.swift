import CarmaJSON
import CarmaText

/// A client's condition on the version it replaces or deletes.
public struct WritePrecondition: Sendable, Equatable {
    /// `If-Match`: the current version must be one of these (`nil` means no condition; `[]` with
    /// `matchAny` means `*`, any existing version).
    public var ifMatch: [UInt64]?
    public var matchAny: Bool
    /// `If-None-Match: *`: the fragment must not exist yet.
    public var ifNoneMatchAny: Bool

    public init(ifMatch: [UInt64]? = nil, matchAny: Bool = false, ifNoneMatchAny: Bool = false) {
        self.ifMatch = ifMatch
        self.matchAny = matchAny
        self.ifNoneMatchAny = ifNoneMatchAny
    }

    public static let none = WritePrecondition()

    func check(_ current: FragmentRow?, id: String) -> StoreError? {
        if self.ifNoneMatchAny, let current {
            return .precondition("'\(id)' already exists (version \(current.version))", current: current.version)
        }
        if self.matchAny, current == nil {
            return .precondition("'\(id)' does not exist", current: nil)
        }
        if let versions = self.ifMatch, !self.matchAny {
            guard let current, versions.contains(current.version) else {
                return .precondition("'\(id)' is not at version \(versions.map(String.init).joined(separator: " or "))", current: current?.version)
            }
        }
        return nil
    }
}

struct PutOperation: Sendable {
    let id: String
    let input: FragmentInput
    let sketch: Sketch
    let precondition: WritePrecondition
    let completion: @Sendable (Result<FragmentStore.PutOutcome, StoreError>) -> Void
}

struct DeleteOperation: Sendable {
    let id: String
    let precondition: WritePrecondition
    let completion: @Sendable (Result<Void, StoreError>) -> Void
}

extension FragmentStore {
    /// The result of a durable write.
    public struct PutOutcome: Sendable {
        /// Whether the fragment did not exist before.
        public var created: Bool
        public var fragment: ServedFragment
    }

    /// Stores a new version of a fragment. `completion` runs (on the commit thread) once the payload,
    /// its redundancy copy and the registry row are durable, or with the reason nothing changed.
    public func put(
        _ id: String, _ input: FragmentInput, precondition: WritePrecondition = .none,
        completion: @escaping @Sendable (Result<PutOutcome, StoreError>) -> Void
    ) {
        if let reason = FragmentID.validate(id) {
            return completion(.failure(.invalid(field: "id", reason)))
        }
        do {
            try input.validate(self.configuration.limits)
        } catch {
            return completion(.failure(error))
        }
        // Sketching is CPU work: done here, on the caller's thread, not on the serial file thread.
        let sketch = self.sketch(input.content)
        if !self.pipeline.submit(.put(PutOperation(id: id, input: input, sketch: sketch, precondition: precondition, completion: completion))) {
            completion(.failure(.closed))
        }
    }

    /// Deletes a fragment on purpose: it answers 404 afterwards and is never rebuilt.
    public func delete(_ id: String, precondition: WritePrecondition = .none, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        if !self.pipeline.submit(.delete(DeleteOperation(id: id, precondition: precondition, completion: completion))) {
            completion(.failure(.closed))
        }
    }

    /// The row a new operation on `id` would replace: a pending write's, else the committed one.
    private func currentRow(_ id: String) -> FragmentRow? {
        if let pending = self.inflight.withLock({ $0[id] }) {
            return pending.row
        }
        return self.state.withLock { $0[id]?.row }
    }

    /// A PUT between the version check and the file writes.
    private struct PlannedPut {
        let put: PutOperation
        var row: FragmentRow
        let record: [UInt8]
        let previous: FragmentRow?
    }

    /// File stage for one batch: in order, check preconditions and assign versions (so that later
    /// operations see earlier ones); then write the batch's payload files and its redundancy copies
    /// (one append). Returns
    /// what goes on to the commit, in order; operations that already completed (a failed
    /// precondition or write) are left out.
    func prepare(_ batch: [PipelineOperation]) -> [PreparedOperation] {
        enum Step {
            case planned(Int)
            case ready(PreparedOperation)
        }
        var steps: [Step] = []
        var plans: [PlannedPut] = []
        for operation in batch {
            switch operation {
            case .put(let put):
                let current = self.currentRow(put.id)
                if let failure = put.precondition.check(current, id: put.id) {
                    put.completion(.failure(failure))
                    continue
                }
                if let embedding = put.input.embedding, let failure = self.acceptEmbeddingDimension(embedding.count) {
                    put.completion(.failure(failure))
                    continue
                }
                let version = self.lastVersion.add(1, ordering: .relaxed).newValue
                let now = Timestamp.now
                let record = FragmentRecord(id: put.id, version: version, input: put.input, createdAt: current?.createdAt ?? now, updatedAt: now)
                let bytes = record.encode()
                let row = FragmentRow(
                    id: put.id, version: version, status: .ok, checksum: CRC32C.checksum(bytes), recordLength: bytes.count,
                    size: record.size, links: put.input.links, tags: put.input.tags, createdAt: record.createdAt, updatedAt: now)
                self.inflight.withLock { $0[put.id] = Inflight(version: version, row: row) }
                steps.append(.planned(plans.count))
                plans.append(PlannedPut(put: put, row: row, record: bytes, previous: current))
            case .delete(let delete):
                guard let current = self.currentRow(delete.id) else {
                    delete.completion(.failure(.notFound(delete.id)))
                    continue
                }
                if let failure = delete.precondition.check(current, id: delete.id) {
                    delete.completion(.failure(failure))
                    continue
                }
                let version = self.lastVersion.add(1, ordering: .relaxed).newValue
                self.inflight.withLock { $0[delete.id] = Inflight(version: version, row: nil) }
                steps.append(.ready(.delete(delete, previous: current, version: version)))
            case .change(let change):
                steps.append(.ready(.change(change)))
            case .barrier(let signal):
                steps.append(.ready(.barrier(signal)))
            }
        }

        // One new file per fragment in the primary area; all the batch's redundancy copies in one
        // append to the current segment.
        var failed: [Int: FileError] = [:]
        for (index, plan) in plans.enumerated() {
            do {
                try self.primary.write(id: plan.row.id, version: plan.row.version, kind: .original, record: plan.record, checksum: plan.row.checksum)
            } catch {
                failed[index] = error
            }
        }
        let copies = plans.indices.filter { failed[$0] == nil }
        do {
            let locations = try self.redundancy.append(copies.map {
                RedundancyLog.Entry(id: plans[$0].row.id, version: plans[$0].row.version, record: plans[$0].record, checksum: plans[$0].row.checksum)
            })
            for (index, location) in zip(copies, locations) {
                plans[index].row.redundancy = location
            }
        } catch {
            for index in copies { failed[index] = error }
        }

        var ready: [PreparedOperation] = []
        ready.reserveCapacity(steps.count)
        for step in steps {
            switch step {
            case .planned(let index):
                let plan = plans[index]
                if let error = failed[index] {
                    self.removeFiles(plan.row.id, version: plan.row.version)
                    self.clearInflight(plan.row.id, version: plan.row.version)
                    plan.put.completion(.failure(.from(error, doing: "store '\(plan.row.id)'")))
                    continue
                }
                ready.append(.put(plan.put, row: plan.row, record: plan.record, previous: plan.previous))
            case .ready(let operation):
                ready.append(operation)
            }
        }
        return ready
    }

    /// Sync stage: makes every payload file written so far durable, names included, with one
    /// `syncfs` per file system. Returns the failure, if any, for the commit stage to report.
    func sync(_ batch: [PreparedOperation]) -> StoreError? {
        guard batch.contains(where: \.wroteFiles) else { return nil }
        do {
            try self.primary.sync()
            if !self.sharedFileSystem {
                try self.redundancy.sync()
            }
            return nil
        } catch {
            return .from(error, doing: "sync payload files")
        }
    }

    /// Commit stage: with the batch's files durable, commit its registry rows in one transaction,
    /// make it visible, then acknowledge it.
    func commit(_ batch: [PreparedOperation], syncFailure: StoreError?) {
        var failure = syncFailure
        var applied = [Bool](repeating: false, count: batch.count)
        if failure == nil {
            do {
                try self.registry.writer.transaction {
                    for (index, operation) in batch.enumerated() {
                        switch operation {
                        case .put(let put, let row, _, let previous):
                            applied[index] = try self.registry.upsert(
                                row, previousTags: previous?.tags, sketch: put.sketch.encode(),
                                embedding: put.input.embedding.map(Self.encodeEmbedding))
                            guard applied[index] else { continue }
                            if let previous, previous.status != .ok {
                                try self.registry.dequeueRepair(row.id)
                            }
                            try self.registry.addEvent(
                                row.id, at: row.updatedAt, kind: previous == nil ? "created" : "updated",
                                detail: ["version": .number(Double(row.version)), "size": .number(Double(row.size))])
                        case .delete(let delete, _, _):
                            try self.registry.delete(delete.id)
                        case .change(let change):
                            try change.apply(self.registry)
                        case .barrier:
                            continue
                        }
                    }
                    // Versions are never reused, also after the newest fragment was deleted and the
                    // process restarted.
                    if batch.contains(where: \.tookVersion) {
                        try self.registry.setMeta("max_version", String(self.lastVersion.load(ordering: .relaxed)))
                    }
                }
            } catch let error as SQLiteError {
                failure = .from(error, doing: "commit to the registry")
            } catch let error as StoreError {
                failure = error
            } catch {
                failure = StoreError(.io, "cannot commit to the registry: \(error)")
            }
        }
        if let failure {
            self.logger.error("group commit failed", metadata: ["error": "\(failure)", "store.batch": "\(batch.count)"])
            self.fail(batch, with: failure)
            return
        }

        var served: [Int: ServedFragment] = [:]
        self.state.withLock { state in
            for (index, operation) in batch.enumerated() {
                switch operation {
                case .put(_, let row, let record, _) where applied[index]:
                    let body = Self.servedBody(record: record, status: .ok, checksum: row.checksum)
                    state.set(row.id, IndexEntry(row: row))
                    state.cache(row.id, version: row.version, body: body, recordLength: record.count)
                    served[index] = ServedFragment(body: body, version: row.version, status: .ok, checksum: row.checksum)
                case .delete(let delete, _, _):
                    state.set(delete.id, nil)
                default:
                    continue
                }
            }
        }
        self.counters.commits.add(1, ordering: .relaxed)
        self.counters.committedOperations.add(batch.count, ordering: .relaxed)
        self.text.withLock { index in
            for (position, operation) in batch.enumerated() {
                switch operation {
                case .put(let put, let row, _, _) where applied[position]:
                    index.upsert(id: row.id, sketch: put.sketch, tags: row.tags, links: row.links, embedding: put.input.embedding?.map(Float.init))
                case .delete(let delete, _, _):
                    index.remove(delete.id)
                default:
                    continue
                }
            }
        }

        for (index, operation) in batch.enumerated() {
            switch operation {
            case .put(let put, let row, let record, let previous):
                if let fragment = served[index] {
                    put.completion(.success(PutOutcome(created: previous == nil, fragment: fragment)))
                } else {
                    // A newer version was committed first; this one is acknowledged as superseded.
                    put.completion(.success(PutOutcome(created: previous == nil, fragment: ServedFragment(
                        body: Self.servedBody(record: record, status: .ok, checksum: row.checksum),
                        version: row.version, status: .ok, checksum: row.checksum))))
                    self.discard(row)
                }
                if let previous, previous.version != row.version {
                    self.discard(previous)
                }
                self.clearInflight(row.id, version: row.version)
            case .delete(let delete, let previous, let version):
                self.discard(previous)
                delete.completion(.success(()))
                self.clearInflight(delete.id, version: version)
            case .change(let change):
                change.afterCommit?()
                change.completion?(.success(()))
            case .barrier(let signal):
                signal()
            }
        }
    }

    private func fail(_ batch: [PreparedOperation], with failure: StoreError) {
        for operation in batch {
            switch operation {
            case .put(let put, let row, _, _):
                self.discard(row)
                self.clearInflight(row.id, version: row.version)
                put.completion(.failure(failure))
            case .delete(let delete, _, let version):
                self.clearInflight(delete.id, version: version)
                delete.completion(.failure(failure))
            case .change(let change):
                change.completion?(.failure(failure))
            case .barrier(let signal):
                signal()
            }
        }
    }

    /// Forgets a pending operation once it is committed or failed, unless a later one took its place.
    func clearInflight(_ id: String, version: UInt64) {
        self.inflight.withLock { pending in
            if pending[id]?.version == version {
                pending[id] = nil
            }
        }
    }

    /// Drops a version that is superseded, deleted or failed: its primary files go, its redundancy
    /// copy becomes garbage for compaction.
    func discard(_ row: FragmentRow) {
        self.removeFiles(row.id, version: row.version)
        if let location = row.redundancy {
            self.redundancy.release(location, length: row.copyLength)
        }
    }

    /// Removes the primary files of one version.
    func removeFiles(_ id: String, version: UInt64) {
        self.primary.remove(id: id, version: version, kind: .original)
        self.primary.remove(id: id, version: version, kind: .reconstruction)
    }
}
