import FragmentCore
import CarmaText
import Logging

extension FragmentStore {
    /// Rebuilds the registry from the logs: run with the service stopped (it takes the data
    /// directory's lock). An existing registry is moved aside (`registry.sqlite3.bak-<ms>`), never
    /// deleted. Histories, the repair queue and cycle reports live only in the registry and start
    /// anew; every fragment that is not intact is queued for repair.
    public static func rebuildRegistry(configuration: StoreConfiguration, logger: Logger) throws(StoreError) -> RebuildSummary {
        let path = configuration.registryPath
        do {
            // Hold the lock while moving the registry, so that a running carmad is never pulled from under.
            let lock = try DirectoryLock(path: configuration.lockPath)
            if FileSystem.exists(path) {
                let suffix = ".bak-\(Timestamp.now.milliseconds)"
                for extra in ["", "-wal", "-shm"] where FileSystem.exists(path + extra) {
                    try FileSystem.move(path + extra, to: path + suffix + extra)
                }
                logger.notice("moved the old registry aside", metadata: ["registry.backup": "\(path + suffix)"])
            }
            lock.release()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .from(error as! FileError, doing: "move the old registry aside")
        }
        let store = try FragmentStore(configuration: configuration, logger: logger)
        defer { store.close() }
        return store.startup.rebuilt ?? RebuildSummary()
    }

    /// Builds the registry and the index from both logs (start-up, registry missing).
    func rebuildRegistry() throws(StoreError) -> RebuildSummary {
        var replay = LogReplay(base: { _ in nil }, sketch: { self.sketch($0, key: $1) })
        self.primaryLog.scan { replay.primary($0, $1, at: $2) }
        self.redundancyLog.scan { replay.redundancy($0, $1, at: $2) }
        var summary = RebuildSummary(records: replay.records, damagedRecords: replay.damaged)
        let (rows, deleted) = replay.result()
        summary.deleted = deleted.count
        try self.write(replay: replay, rows: rows, deleted: deleted, event: .reindexed)
        summary.fragments = rows.count
        for candidate in rows {
            switch candidate.row.status {
            case .ok: summary.ok += 1
            case .blank: summary.blank += 1
            case .reconstructed: summary.reconstructed += 1
            }
        }
        return summary
    }

    /// Folds the log records past the registry's applied position into the index and the text
    /// index (start-up, after the index loaded). The registry catches up behind it: the returned
    /// work goes to the apply stage once the pipeline runs, so start-up does not wait for SQLite.
    /// - Returns: Records replayed, and the registry work.
    func replay(from applied: (primary: LogLocation, redundancy: LogLocation, sequence: UInt64)?) -> (records: Int, work: [ApplyItem]) {
        // Rows looked up one by one (a copy of the index would be copied whole by its next change).
        var replay = LogReplay(base: { self.indexedRow($0) }, sketch: { self.sketch($0, key: $1) })
        self.primaryLog.scan(from: applied?.primary) { replay.primary($0, $1, at: $2) }
        self.redundancyLog.scan(from: applied?.redundancy) { replay.redundancy($0, $1, at: $2) }
        guard replay.records > 0 else { return (0, []) }
        let (rows, deleted) = replay.result()
        self.lastVersion.store(max(replay.maxVersion, self.lastVersion.load(ordering: .relaxed)), ordering: .relaxed)
        self.lastSequence.store(max(replay.maxSequence, self.lastSequence.load(ordering: .relaxed)), ordering: .relaxed)
        let now = Timestamp.now
        var work: [ApplyItem] = []
        work.reserveCapacity(rows.count + deleted.count + 1)
        for candidate in rows {
            let row = candidate.row
            if let sketch = candidate.sketch {
                let previous = self.indexedRow(row.id)
                work.append(
                    .put(
                        row: row, sketch: sketch.encode(), embedding: candidate.embedding.map(Self.encodeEmbedding), previous: previous,
                        created: previous == nil))
            } else {
                work.append(.change(RegistryChange(apply: { try $0.updatePlacement(row) })))
            }
            if row.status != .ok {
                let reason = row.blankReason?.rawValue ?? "reconstructed"
                work.append(.change(RegistryChange(apply: { try $0.enqueueRepair(row.id, priority: .scrub, at: now, reason: reason) })))
            }
        }
        for (id, version) in deleted { work.append(.delete(id: id, version: version)) }
        work.append(
            .position(
                LogPositions(
                    primary: self.primaryLog.end, redundancy: self.redundancyLog.end, sequence: self.lastSequence.load(ordering: .relaxed),
                    maxVersion: self.lastVersion.load(ordering: .relaxed))))
        self.apply(rows: rows, deleted: deleted, now: now)
        // The text index loads every live fragment from the logs after start-up (startIndexing).
        return (replay.records, work)
    }

    /// Writes what a replay found to the registry (one transaction, with the new applied positions)
    /// and to the index.
    private func write(
        replay: LogReplay, rows: [LogReplay.Candidate], deleted: [(id: String, version: UInt64)], event: EventKind? = nil
    ) throws(StoreError) {
        let version = max(replay.maxVersion, self.lastVersion.load(ordering: .relaxed))
        let sequence = max(replay.maxSequence, self.lastSequence.load(ordering: .relaxed))
        self.lastVersion.store(version, ordering: .relaxed)
        self.lastSequence.store(sequence, ordering: .relaxed)
        let now = Timestamp.now
        do {
            try self.registry.writer.transaction {
                for candidate in rows {
                    if let sketch = candidate.sketch {
                        try self.registry.upsert(
                            candidate.row, previousTags: nil, sketch: sketch.encode(), embedding: candidate.embedding.map(Self.encodeEmbedding))
                    } else {
                        try self.registry.updatePlacement(candidate.row)
                    }
                    if let event {
                        try self.registry.addEvent(
                            candidate.row.id, at: now, kind: event,
                            detail: ["version": .exact(candidate.row.version), "status": .string(candidate.row.status.rawValue)])
                    }
                    if candidate.row.status != .ok {
                        try self.registry.enqueueRepair(
                            candidate.row.id, priority: .scrub, at: now, reason: candidate.row.blankReason?.rawValue ?? "reconstructed")
                    }
                }
                for (id, version) in deleted {
                    try self.registry.delete(id, before: version)
                }
                try self.registry.setPositions(
                    LogPositions(primary: self.primaryLog.end, redundancy: self.redundancyLog.end, sequence: sequence, maxVersion: version))
            }
        } catch let error as SQLiteError {
            throw .from(error, doing: "write the replayed log records to the registry")
        } catch {
            throw StoreError(.io, "cannot write the replayed log records to the registry: \(error)")
        }
        self.apply(rows: rows, deleted: deleted, now: now)
    }

    /// Puts replayed rows into the index and takes deleted ones out.
    private func apply(rows: [LogReplay.Candidate], deleted: [(id: String, version: UInt64)], now: Timestamp) {
        self.state.withLock { state in
            for candidate in rows {
                if let old = state[candidate.row.id]?.row { self.releaseRecords(of: old) }
                self.retainRecords(of: candidate.row)
                let queued = candidate.row.status == .ok ? nil : (state[candidate.row.id]?.queuedAt ?? now)
                state.set(candidate.row.id, IndexEntry(row: candidate.row, queuedAt: queued))
            }
            for (id, _) in deleted {
                if let old = state[id]?.row { self.releaseRecords(of: old) }
                state.set(id, nil)
            }
        }
    }
}
