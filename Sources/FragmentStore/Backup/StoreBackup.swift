import FragmentCore

/// What a backup did.
public struct BackupSummary: Sendable {
    /// Segments read from the store and written to the backup.
    public var segmentsCopied = 0
    /// Sealed segments already in the backup, checked against their checksum and kept.
    public var segmentsReused = 0
    public var bytesCopied: Int64 = 0
    public var bytesReused: Int64 = 0
    /// The registry snapshot (rows, histories, repair queue, cycle reports); nil if the store had none.
    public var registryBytes: Int64?
    public var fragments: Int?
    /// Log records in the backup, of both logs.
    public var records = 0
    /// Segments of the store that could not be read (damage the store itself reports as blanks).
    public var unreadable: [String] = []
    /// When the backup began: every write acknowledged before it is in the backup.
    public var startedAt = Timestamp.now
}

/// An online backup of a store, running beside the carmad that serves it (or with none running).
///
/// Consistency without stopping writers rests on three facts of the storage engine: records are
/// only appended, a sealed segment never changes, and compaction deletes a segment only after its
/// live records were copied forward and synced. So the backup first opens every segment of both
/// logs (an open file stays readable after compaction unlinks it: nothing that existed when the
/// backup began can slip away), then takes a snapshot of the registry with `VACUUM INTO` (a
/// consistent read transaction beside the writer, WAL mode), then opens the segments created
/// meanwhile, and copies them all: sealed ones whole, the one still being written up to its last
/// record that verifies (a record half-written at that moment is left out, never cut in the middle
/// of the file). Whatever the snapshot had not applied yet lies in the logs past its applied
/// position, which a carmad started on the backup replays, as after a crash.
///
/// Sealed segments already in the backup directory (same name and size as in the store, checksum
/// matching the previous manifest) are kept, not copied again: later backups are incremental.
/// The manifest, written last, lists every file with its CRC32C and record counts.
public enum StoreBackup {
    public static let manifestName = "MANIFEST"
    static let lockName = "BACKUP.LOCK"

    /// Takes a backup of the store at `configuration`'s directories into `directory`.
    /// - Parameters:
    ///   - configuration: The store's data and redundancy directories (nothing else is used).
    ///   - directory: Created if missing; `data/` and `redundancy/` in it become a data directory and a
    ///     redundancy directory that carmad starts on.
    public static func take(from configuration: StoreConfiguration, to directory: String) throws(BackupError) -> BackupSummary {
        var summary = BackupSummary()
        summary.startedAt = .now
        let target = try Target(configuration: configuration, directory: directory)
        let lock: DirectoryLock
        do {
            lock = try DirectoryLock(path: "\(target.root)/\(lockName)")
        } catch {
            throw BackupError(.destination, "another backup is writing to \(directory)")
        }
        defer { lock.release() }

        // The previous manifest says what is there to reuse; it goes first, so that a backup cut short
        // leaves no manifest that no longer matches the files.
        let manifestPath = "\(target.root)/\(manifestName)"
        var previous: [String: BackupManifest.Segment] = [:]
        if FileSystem.exists(manifestPath) {
            if let bytes = try? FileSystem.read(manifestPath), case .success(let manifest) = BackupManifest.decode(bytes) {
                previous = Dictionary(manifest.segments.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
            }
            FileSystem.remove(manifestPath)
            do {
                try FileSystem.syncDirectory(of: manifestPath)
            } catch {
                throw .io(error, doing: "remove the previous manifest")
            }
        }

        // 1. Hold every segment that exists now, then 2. the registry snapshot, then 3. whatever
        // segments appeared meanwhile (compaction copies and new writes past the snapshot's position).
        var logs = [
            HeldLog(source: configuration.primaryLogDirectory, relative: BackupManifest.primaryRoot),
            HeldLog(source: configuration.redundancyLogDirectory, relative: BackupManifest.redundancyRoot),
        ]
        for index in logs.indices { logs[index].holdNew(&summary.unreadable) }
        let registry = try self.snapshotRegistry(configuration.registryPath, into: "\(target.root)/\(BackupManifest.registryPath)")
        for index in logs.indices { logs[index].holdNew(&summary.unreadable) }

        // The primary log first: the redundancy log is then cut so that it holds no copy of a record
        // the primary copy lacks (replay would take such a copy for a lost original and serve a blank).
        var segments: [BackupManifest.Segment] = []
        var primarySequence: UInt64 = 0
        for log in logs {
            var cut: RedundancyCut?
            if log.relative == BackupManifest.redundancyRoot {
                let applied = registry?.appliedRedundancy.flatMap(LogLocation.init)
                cut = RedundancyCut(guaranteed: max(log.initialEnd ?? LogLocation(segment: 0, offset: 0), applied ?? LogLocation(segment: 0, offset: 0)), limit: primarySequence + 1)
            }
            let copied = try self.copy(log, into: target.root, previous: previous, cut: cut, summary: &summary)
            segments += copied
            if log.relative == BackupManifest.primaryRoot { primarySequence = copied.map(\.maxSequence).max() ?? 0 }
        }
        // The namespace catalog, both copies (a journal: whatever it held at this moment; a
        // deletion it records and the segments do not yet is finished when the restored store opens).
        for (source, relative) in zip(configuration.namespaceJournalPaths, ["data/namespaces.journal", "redundancy/namespaces.journal"])
        where FileSystem.exists(source) {
            do {
                try FileSystem.writeDurably("\(target.root)/\(relative)", try FileSystem.read(source))
            } catch {
                throw .io(error, doing: "copy the namespace journal")
            }
        }
        summary.registryBytes = registry.map { Int64($0.bytes) }
        summary.fragments = registry?.fragments
        let manifest = BackupManifest(
            startedAt: summary.startedAt, finishedAt: .now, dataDirectory: configuration.dataDirectory,
            redundancyDirectory: configuration.redundancyDirectory, registry: registry, segments: segments)
        do {
            try FileSystem.syncDirectory(of: "\(target.root)/\(BackupManifest.primaryRoot)/x")
            try FileSystem.syncDirectory(of: "\(target.root)/\(BackupManifest.redundancyRoot)/x")
            try FileSystem.writeDurably(manifestPath, manifest.encode())
        } catch {
            throw .io(error, doing: "write the manifest")
        }
        return summary
    }

    /// Copies one log's held segments into the backup (keeping sealed ones already there) and
    /// removes the backup's segments the store no longer has.
    private static func copy(
        _ log: HeldLog, into root: String, previous: [String: BackupManifest.Segment], cut: RedundancyCut?, summary: inout BackupSummary
    ) throws(BackupError) -> [BackupManifest.Segment] {
        try FileSystem.makeDirectoryOrThrow("\(root)/\(log.relative)")
        let newest = log.held.keys.max()
        var segments: [BackupManifest.Segment] = []
        var stopped = false
        var keep = Set<String>()
        for (number, file) in log.held.sorted(by: { $0.key < $1.key }) where !stopped {
            let name = String(SegmentLog.path("", number).dropFirst())
            let relative = "\(log.relative)/\(name)"
            let path = "\(root)/\(relative)"
            let size = Int(FileSystem.size(of: file.descriptor) ?? 0)
            if number != newest, let kept = previous[relative], kept.bytes == size, cut.map({ kept.maxSequence <= $0.limit }) ?? true,
                Self.matches(path, kept)
            {
                segments.append(kept)
                keep.insert(name)
                summary.segmentsReused += 1
                summary.bytesReused += Int64(size)
                summary.records += kept.records
                continue
            }
            let bytes: [UInt8]
            do {
                bytes = try FileSystem.read(file.descriptor, at: 0, count: size, path: file.path)
            } catch {
                throw .io(error, doing: "read \(file.path)")
            }
            var copied = number == newest ? Self.upToLastRecord(bytes) : bytes
            if let cut, let end = cut.end(of: copied, segment: number) {
                copied = Array(copied[..<end])
                stopped = true
            }
            let counts = Self.count(copied)
            do {
                try FileSystem.writeDurably(path, copied)
            } catch {
                throw .io(error, doing: "write \(path)")
            }
            keep.insert(name)
            segments.append(
                BackupManifest.Segment(
                    path: relative, bytes: copied.count, checksum: CRC32C.checksum(copied), records: counts.records, damaged: counts.damaged,
                    maxSequence: counts.maxSequence))
            summary.segmentsCopied += 1
            summary.bytesCopied += Int64(copied.count)
            summary.records += counts.records
        }
        // Segments the store has compacted away since the last backup (and leftovers of one cut short).
        for name in FileSystem.list("\(root)/\(log.relative)") where !keep.contains(name) && (name.hasSuffix(".seg") || name.hasSuffix(".partial")) {
            FileSystem.remove("\(root)/\(log.relative)/\(name)")
        }
        return segments
    }

    /// The bytes up to the end of the last record that verifies: a record being appended while it
    /// was read is left out whole.
    static func upToLastRecord(_ bytes: [UInt8]) -> [UInt8] {
        let end = bytes.withUnsafeBytes { SegmentLog.walk($0) { _, _ in }.validEnd }
        return end == bytes.count ? bytes : Array(bytes[..<end])
    }

    /// Records that verify, and damaged records or stretches, in a segment's bytes.
    static func count(_ bytes: [UInt8]) -> (records: Int, damaged: Int, validEnd: Int, maxSequence: UInt64) {
        var records = 0
        var damaged = 0
        var maxSequence: UInt64 = 0
        let (validEnd, skipped) = bytes.withUnsafeBytes { buffer in
            SegmentLog.walk(buffer) { _, walked in
                switch walked {
                case .record(let header, _):
                    records += 1
                    maxSequence = max(maxSequence, header.sequence)
                case .damagedBody(let header):
                    damaged += 1
                    maxSequence = max(maxSequence, header.sequence)
                }
            }
        }
        return (records, damaged + skipped, validEnd, maxSequence)
    }

    /// Whether the backup's copy of a segment still has the checksum its manifest recorded.
    private static func matches(_ path: String, _ entry: BackupManifest.Segment) -> Bool {
        guard let bytes = try? FileSystem.read(path), bytes.count == entry.bytes else { return false }
        return CRC32C.checksum(bytes) == entry.checksum
    }

    /// Copies a consistent snapshot of the registry (`VACUUM INTO`, one read transaction beside
    /// the running writer) to `path`, as a rollback-journal database that opens read-only.
    private static func snapshotRegistry(_ source: String, into path: String) throws(BackupError) -> BackupManifest.Registry? {
        for suffix in ["", "-wal", "-shm", "-journal", ".partial"] { FileSystem.remove(path + suffix) }
        guard FileSystem.exists(source) else { return nil }
        let partial = path + ".partial"
        do {
            try FileSystem.makeParents(of: path)
            let connection = try SQLiteConnection(path: source, readOnly: true)
            try connection.execute("VACUUM INTO '\(partial.replacingAll("'", with: "''"))'")
        } catch let error as FileError {
            throw .io(error, doing: "create \(path)")
        } catch let error as SQLiteError {
            throw .io(error, doing: "snapshot the registry \(source)")
        } catch {
            throw BackupError(.io, "cannot snapshot the registry \(source): \(error)")
        }
        var snapshot = BackupManifest.Registry(path: BackupManifest.registryPath, bytes: 0, checksum: 0, schemaVersion: 0, fragments: 0)
        do throws(SQLiteError) {
            let copy = try SQLiteConnection(path: partial)
            try copy.execute("PRAGMA journal_mode=DELETE")
            snapshot.schemaVersion = try Registry.schemaVersion(of: copy)
            let count = try copy.statement("SELECT COUNT(*) FROM fragments")
            snapshot.fragments = try count.step() ? Int(count.int(0)) : 0
            let meta = try copy.statement("SELECT key, value FROM meta WHERE key IN ('applied_primary', 'applied_redundancy')")
            while try meta.step() {
                if meta.text(0) == "applied_primary" { snapshot.appliedPrimary = meta.text(1) } else { snapshot.appliedRedundancy = meta.text(1) }
            }
            copy.resetAll()
        } catch {
            throw .io(error, doing: "read the registry snapshot")
        }
        do {
            try FileSystem.syncFile(partial)
            try FileSystem.move(partial, to: path)
            try FileSystem.syncDirectory(of: path)
            let bytes = try FileSystem.read(path)
            snapshot.bytes = bytes.count
            snapshot.checksum = CRC32C.checksum(bytes)
        } catch {
            throw .io(error, doing: "write \(path)")
        }
        return snapshot
    }
}

extension StoreBackup {
    /// Where a backup goes, checked not to overlap the store it copies.
    struct Target {
        let root: String

        init(configuration: StoreConfiguration, directory: String) throws(BackupError) {
            guard FileSystem.isDirectory(configuration.dataDirectory),
                FileSystem.exists(configuration.primaryLogDirectory) || FileSystem.exists(configuration.registryPath)
            else {
                throw BackupError(.source, "\(configuration.dataDirectory) is not a carma data directory (no segments/ and no registry.sqlite3)")
            }
            if FileSystem.exists(configuration.previousLayoutPayloads) {
                throw BackupError(.source, "\(configuration.dataDirectory) holds the previous storage layout; convert it with `carmad migrate` first")
            }
            // Checked before anything is created (issue 28: a refused --to inside the data directory
            // had already made its directories there), and again once it exists.
            guard let planned = FileSystem.prospectivePath(directory) else { throw BackupError(.destination, "cannot resolve \(directory)") }
            try Self.refuseOverlap(planned, directory: directory, configuration: configuration)
            do {
                try FileSystem.makeDirectory(directory)
            } catch {
                throw .io(error, doing: "create the backup directory")
            }
            guard let root = FileSystem.canonicalPath(directory) else { throw BackupError(.destination, "cannot resolve \(directory)") }
            try Self.refuseOverlap(root, directory: directory, configuration: configuration)
            self.root = root
        }

        private static func refuseOverlap(_ root: String, directory: String, configuration: StoreConfiguration) throws(BackupError) {
            for store in [configuration.dataDirectory, configuration.redundancyDirectory] {
                guard let resolved = FileSystem.canonicalPath(store) else { continue }
                if root == resolved || root.hasPrefix(resolved + "/") || resolved.hasPrefix(root + "/") {
                    throw BackupError(.destination, "the backup directory \(directory) overlaps the store's directory \(store); choose a directory outside it")
                }
            }
        }
    }

    /// The segments of one log held open for the backup.
    struct HeldLog {
        let source: String
        let relative: String
        var held: [UInt32: SegmentFile] = [:]
        /// The end of the log when the backup began: every record before it was appended by then.
        var initialEnd: LogLocation?

        init(source: String, relative: String) {
            self.source = source
            self.relative = relative
        }

        /// Opens the segments not held yet. One that vanished meanwhile was compacted after its live
        /// records were copied forward, to a segment a later call opens.
        mutating func holdNew(_ unreadable: inout [String]) {
            for number in SegmentLog.segments(in: self.source) where self.held[number] == nil {
                let path = SegmentLog.path(self.source, number)
                do throws(FileError) {
                    self.held[number] = SegmentFile(descriptor: try FileSystem.openRead(path), path: path)
                } catch where error.kind == .notFound {
                    continue
                } catch {
                    if !unreadable.contains(where: { $0.hasPrefix(path) }) { unreadable.append("\(path): \(error)") }
                }
            }
            if self.initialEnd == nil, let (number, file) = self.held.max(by: { $0.key < $1.key }) {
                self.initialEnd = LogLocation(segment: number, offset: UInt64(FileSystem.size(of: file.descriptor) ?? 0))
            }
        }
    }

    /// Where the redundancy log's copy stops. Writes go to the primary log first, then to the
    /// redundancy log, with store-wide sequence numbers; records a backup copies from the primary
    /// end at some sequence number. A redundancy record past that point is the copy of an original
    /// the backup does not have, and is left out, with everything after it. Records the store had
    /// appended when the backup began, or that the registry snapshot has applied, are always kept.
    struct RedundancyCut {
        let guaranteed: LogLocation
        /// The highest sequence number kept past `guaranteed`: the primary copy's last, plus one (the
        /// redundancy copy of the same write).
        let limit: UInt64

        /// The offset to cut `bytes` of `segment` at, or nil to keep them whole.
        func end(of bytes: [UInt8], segment: UInt32) -> Int? {
            var end: Int?
            bytes.withUnsafeBytes { buffer in
                _ = SegmentLog.walk(buffer) { offset, walked in
                    guard end == nil else { return }
                    let header: LogRecord.Header
                    switch walked {
                    case .record(let found, _), .damagedBody(let found): header = found
                    }
                    if LogLocation(segment: segment, offset: UInt64(offset)) >= self.guaranteed, header.sequence > self.limit { end = offset }
                }
            }
            return end
        }
    }
}

extension FileSystem {
    static func makeDirectoryOrThrow(_ path: String) throws(BackupError) {
        do {
            try makeDirectory(path)
        } catch {
            throw .io(error, doing: "create \(path)")
        }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
