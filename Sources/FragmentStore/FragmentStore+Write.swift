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

    /// File stage: check, version and write one operation. Returns nil when it already completed
    /// (a failed precondition or a failed write).
    func prepare(_ operation: PipelineOperation) -> PreparedOperation? {
        switch operation {
        case .put(let put):
            let current = self.currentRow(put.id)
            if let failure = put.precondition.check(current, id: put.id) {
                put.completion(.failure(failure))
                return nil
            }
            if let embedding = put.input.embedding, let failure = self.acceptEmbeddingDimension(embedding.count) {
                put.completion(.failure(failure))
                return nil
            }
            let version = self.lastVersion.add(1, ordering: .relaxed).newValue
            let now = Timestamp.now
            let record = FragmentRecord(id: put.id, version: version, input: put.input, createdAt: current?.createdAt ?? now, updatedAt: now)
            let bytes = record.encode()
            let checksum = CRC32C.checksum(bytes)
            do {
                try self.primary.write(id: put.id, version: version, kind: .original, record: bytes, checksum: checksum)
                try self.redundancy.write(id: put.id, version: version, kind: .original, record: bytes, checksum: checksum)
            } catch {
                self.removeFiles(put.id, version: version)
                put.completion(.failure(.from(error, doing: "store '\(put.id)'")))
                return nil
            }
            let row = FragmentRow(
                id: put.id, version: version, status: .ok, checksum: checksum, recordLength: bytes.count, size: record.size,
                links: put.input.links, tags: put.input.tags, createdAt: record.createdAt, updatedAt: now)
            self.inflight.withLock { $0[put.id] = Inflight(version: version, row: row) }
            return .put(put, row: row, record: bytes, previous: current)
        case .delete(let delete):
            guard let current = self.currentRow(delete.id) else {
                delete.completion(.failure(.notFound(delete.id)))
                return nil
            }
            if let failure = delete.precondition.check(current, id: delete.id) {
                delete.completion(.failure(failure))
                return nil
            }
            let version = self.lastVersion.add(1, ordering: .relaxed).newValue
            self.inflight.withLock { $0[delete.id] = Inflight(version: version, row: nil) }
            return .delete(delete, previous: current, version: version)
        case .change(let change):
            return .change(change)
        case .barrier(let signal):
            return .barrier(signal)
        }
    }

    /// Commit stage: make a batch durable, then visible, then acknowledge it.
    func commit(_ batch: [PreparedOperation]) {
        var failure: StoreError?
        if batch.contains(where: { if case .put = $0 { return true } else { return false } }) {
            do {
                try self.primary.sync()
                if !self.sharedFileSystem {
                    try self.redundancy.sync()
                }
            } catch {
                failure = .from(error, doing: "sync payload files")
            }
        }
        var applied = [Bool](repeating: false, count: batch.count)
        if failure == nil {
            do {
                try self.registry.writer.transaction {
                    for (index, operation) in batch.enumerated() {
                        switch operation {
                        case .put(let put, let row, _, let previous):
                            applied[index] = try self.registry.upsert(row)
                            guard applied[index] else { continue }
                            try self.registry.saveSketch(
                                row.id, version: row.version, sketch: put.sketch.encode(),
                                embedding: put.input.embedding.map(Self.encodeEmbedding))
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
                    self.removeFiles(row.id, version: row.version)
                }
                if let previous, previous.version != row.version {
                    self.removeFiles(row.id, version: previous.version)
                }
                self.clearInflight(row.id, version: row.version)
            case .delete(let delete, let previous, let version):
                self.removeFiles(delete.id, version: previous.version)
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
                self.removeFiles(row.id, version: row.version)
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
    private func clearInflight(_ id: String, version: UInt64) {
        self.inflight.withLock { pending in
            if pending[id]?.version == version {
                pending[id] = nil
            }
        }
    }

    /// Removes every file of one version, in both areas.
    func removeFiles(_ id: String, version: UInt64) {
        self.primary.remove(id: id, version: version, kind: .original)
        self.primary.remove(id: id, version: version, kind: .reconstruction)
        self.redundancy.remove(id: id, version: version, kind: .original)
    }
}
