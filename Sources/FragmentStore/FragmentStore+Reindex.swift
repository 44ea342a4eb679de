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
        var replay = LogReplay(base: { _ in nil }, sketch: { self.sketch($0).encode() })
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

    /// Applies the log records past the registry's applied position (start-up, after the index loaded).
    /// - Returns: Records replayed.
    func replay(from applied: (primary: LogLocation, redundancy: LogLocation, sequence: UInt64)?) throws(StoreError) -> Int {
        let index = self.state.withLock { $0.entries }
        var replay = LogReplay(base: { index[$0]?.row }, sketch: { self.sketch($0).encode() })
        self.primaryLog.scan(from: applied?.primary) { replay.primary($0, $1, at: $2) }
        self.redundancyLog.scan(from: applied?.redundancy) { replay.redundancy($0, $1, at: $2) }
        let (rows, deleted) = replay.result()
        try self.write(replay: replay, rows: rows, deleted: deleted)
        return replay.records
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
                        try self.registry.upsert(candidate.row, previousTags: nil, sketch: sketch, embedding: candidate.embedding)
                    } else {
                        try self.registry.updatePlacement(candidate.row)
                    }
                    if let event {
                        try self.registry.addEvent(
                            candidate.row.id, at: now, kind: event,
                            detail: ["version": .number(Double(candidate.row.version)), "status": .string(candidate.row.status.rawValue)])
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
