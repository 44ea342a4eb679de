import FragmentCore
import Logging

/// What `carmad migrate` did.
public struct MigrationSummary: Sendable {
    public var fragments = 0
    /// Fragments whose exact bytes were found (in the payload file or the redundancy copy).
    public var exact = 0
    public var reconstructed = 0
    /// Known to the registry with no intact bytes left: blank, queued for repair.
    public var blank = 0
    /// Where the old files were moved.
    public var previousLayoutDirectory = ""
}

extension FragmentStore {
    /// Converts a data directory of the previous layout (a payload file per fragment version under
    /// `payloads/`, copies in `<redundancy>/*.seg`, registry schema 1) into segment logs and a new
    /// registry. Run with the service stopped. The old files are moved to `<data-dir>/previous-layout/`,
    /// not deleted; an interrupted run can be started again.
    public static func migratePreviousLayout(configuration: StoreConfiguration, logger: Logger) throws(StoreError) -> MigrationSummary {
        let lock = try DirectoryLock(path: configuration.lockPath)
        defer { lock.release() }
        let payloads = configuration.previousLayoutPayloads
        guard FileSystem.exists(payloads) else {
            throw StoreError(.invalid, "\(configuration.dataDirectory) is not in the previous layout (no payloads/ directory): nothing to migrate")
        }
        var summary = MigrationSummary()
        let migrating = configuration.registryPath + ".migrating"
        do {
            // Left over from an interrupted run: start again from the old files.
            for path in [migrating, migrating + "-wal", migrating + "-shm"] { FileSystem.remove(path) }
            for directory in [configuration.primaryLogDirectory, configuration.redundancyLogDirectory] {
                for name in FileSystem.list(directory) { FileSystem.remove("\(directory)/\(name)") }
            }
            let old = try SQLiteConnection(path: configuration.registryPath, readOnly: true)
            guard try Registry.schemaVersion(of: old) == Registry.previousLayoutSchema else {
                throw StoreError(.invalid, "the registry in \(configuration.dataDirectory) is not of the previous layout")
            }
            let registry = try Registry(path: migrating)
            let primary = try SegmentLog(root: configuration.primaryLogDirectory, volume: .primary, segmentBytes: UInt64(configuration.segmentBytes))
            let redundancy = try SegmentLog(
                root: configuration.redundancyLogDirectory, volume: .redundancy, segmentBytes: UInt64(configuration.segmentBytes))
            let statement = try old.statement(
                """
                SELECT id, version, status, checksum, record_length, size, links, tags, created_at, updated_at, blank_reason, lost_at,
                    detected_by, original_checksum, original_length, confidence, redundancy_segment, redundancy_offset, sketch, embedding
                FROM fragments
                """)
            var sequence: UInt64 = 0
            var maxVersion: UInt64 = 0
            try registry.writer.transaction {
                while try statement.step() {
                    guard var row = Registry.row(from: statement) else { continue }
                    summary.fragments += 1
                    maxVersion = max(maxVersion, row.version)
                    let exactChecksum = row.exactChecksum
                    let oldCopy: (segment: Int64, offset: Int64)? =
                        statement.isNull(16) ? nil : (statement.int(16), statement.int(17))
                    row.location = nil
                    row.redundancy = nil
                    let hash = String(SHA256.hex(SHA256.digest(row.id.utf8)).prefix(32))
                    let file = "\(payloads)/\(hash.prefix(2))/\(hash)-\(row.version)"
                    var exact = Self.previousPayload(file + ".frag", id: row.id, version: row.version, checksum: exactChecksum)
                    if exact == nil, let oldCopy, oldCopy.segment > 0, oldCopy.offset >= 0 {
                        // The previous layout named its redundancy segments as the logs do.
                        let segment = SegmentLog.path(configuration.redundancyDirectory, UInt32(truncatingIfNeeded: oldCopy.segment))
                        if let bytes = try? FileSystem.read(segment, at: UInt64(oldCopy.offset), count: PayloadFile.headerSize + 256 + row.exactLength),
                            let length = PayloadFile.totalLength(header: Array(bytes.prefix(PayloadFile.headerSize))), length <= bytes.count,
                            case .success(let (header, record)) = PayloadFile.decode(Array(bytes.prefix(length))),
                            header.id == row.id, header.version == row.version, CRC32C.checksum(record) == exactChecksum
                        {
                            exact = record
                        }
                    }
                    if let exact {
                        sequence += 1
                        let bytes = LogRecord.encode(kind: .put, id: row.id, version: row.version, sequence: sequence, body: exact, bodyChecksum: exactChecksum)
                        row.location = try primary.append(bytes)
                        row.redundancy = try redundancy.append(bytes)
                        row.status = .ok
                        row.checksum = exactChecksum
                        row.recordLength = exact.count
                        row.blankReason = nil
                        row.lostAt = nil
                        row.detectedBy = nil
                        row.originalChecksum = nil
                        row.originalLength = nil
                        row.confidence = nil
                        summary.exact += 1
                    } else if row.status == .reconstructed,
                        let rebuilt = Self.previousPayload(file + ".recon", id: row.id, version: row.version, checksum: row.checksum, kind: .reconstruction)
                    {
                        sequence += 1
                        row.location = try primary.append(
                            LogRecord.encode(kind: .reconstruction, id: row.id, version: row.version, sequence: sequence, body: rebuilt, bodyChecksum: row.checksum))
                        summary.reconstructed += 1
                    } else {
                        row.status = .blank
                        row.blankReason = row.blankReason ?? .missing
                        row.lostAt = row.lostAt ?? .now
                        row.detectedBy = row.detectedBy ?? .reindex
                        summary.blank += 1
                    }
                    let sketch = statement.isNull(18) ? [] : statement.blob(18)
                    try registry.upsert(row, previousTags: nil, sketch: sketch, embedding: statement.isNull(19) ? nil : statement.blob(19))
                    try registry.addEvent(row.id, at: .now, kind: .migrated, detail: ["version": .exact(row.version), "status": .string(row.status.rawValue)])
                    if row.status != .ok {
                        try registry.enqueueRepair(row.id, priority: .scrub, at: .now, reason: row.blankReason?.rawValue ?? "reconstructed")
                    }
                }
                try primary.sync()
                try redundancy.sync()
                try registry.writer.execute("ATTACH DATABASE '\(configuration.registryPath.replacingOccurrences(of: "'", with: "''"))' AS old")
                try registry.writer.execute(
                    """
                    INSERT OR IGNORE INTO events SELECT * FROM old.events WHERE id IN (SELECT id FROM fragments);
                    INSERT OR IGNORE INTO cycles SELECT * FROM old.cycles;
                    INSERT OR IGNORE INTO repair_queue SELECT * FROM old.repair_queue WHERE id IN (SELECT id FROM fragments);
                    INSERT OR IGNORE INTO meta SELECT * FROM old.meta WHERE key IN ('embedding_dimension', 'max_version');
                    """)
                let oldMax = try registry.meta("max_version").flatMap { UInt64($0) } ?? 0
                try registry.setPositions(
                    LogPositions(primary: primary.end, redundancy: redundancy.end, sequence: sequence, maxVersion: max(maxVersion, oldMax)))
            }
            try? registry.writer.execute("DETACH DATABASE old")
        } catch let error as StoreError {
            throw error
        } catch let error as SQLiteError {
            throw .from(error, doing: "migrate the registry")
        } catch let error as FileError {
            throw .from(error, doing: "write the logs")
        } catch {
            throw StoreError(.io, "cannot migrate: \(error)")
        }
        // Old files aside, then the new registry into place. A crash in between leaves no registry:
        // the next start rebuilds it from the logs.
        let aside = "\(configuration.dataDirectory)/previous-layout"
        do {
            try FileSystem.makeDirectory(aside + "/redundancy")
            for extra in ["", "-wal", "-shm"] where FileSystem.exists(configuration.registryPath + extra) {
                try FileSystem.move(configuration.registryPath + extra, to: "\(aside)/registry.sqlite3\(extra)")
            }
            for name in FileSystem.list(configuration.redundancyDirectory) where name.hasSuffix(".seg") {
                try FileSystem.move("\(configuration.redundancyDirectory)/\(name)", to: "\(aside)/redundancy/\(name)")
            }
            try FileSystem.move(payloads, to: "\(aside)/payloads")
            for extra in ["-wal", "-shm"] where FileSystem.exists(migrating + extra) {
                try FileSystem.move(migrating + extra, to: configuration.registryPath + extra)
            }
            try FileSystem.move(migrating, to: configuration.registryPath)
            try FileSystem.syncDirectory(of: configuration.registryPath)
        } catch {
            throw .from(error, doing: "move the previous layout aside")
        }
        summary.previousLayoutDirectory = aside
        logger.notice("migrated to segment logs", metadata: ["fragments": "\(summary.fragments)", "previous_layout": "\(aside)"])
        return summary
    }

    /// A previous-layout payload file's record, if it verifies.
    private static func previousPayload(_ path: String, id: String, version: UInt64, checksum: UInt32, kind: PayloadFile.Kind = .original) -> [UInt8]? {
        guard let bytes = try? FileSystem.read(path), case .success(let (header, record)) = PayloadFile.decode(bytes),
            header.id == id, header.version == version, header.kind == kind, header.recordChecksum == checksum
        else { return nil }
        return record
    }
}

