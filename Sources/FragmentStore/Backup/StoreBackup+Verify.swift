import FragmentCore

/// What `StoreBackup.verify` found.
public struct BackupVerification: Sendable {
    /// One line per problem, naming the file; empty when the backup is intact.
    public var problems: [String] = []
    /// Damage that was already in the store when the backup was taken (kept as it was, so that a
    /// carmad started on the backup reports and repairs it as the store would have).
    public var notes: [String] = []
    public var files = 0
    public var bytes: Int64 = 0
    public var records = 0
    public var fragments: Int?
    public var startedAt: Timestamp?

    public var isIntact: Bool { self.problems.isEmpty }
}

extension StoreBackup {
    /// Re-reads every file of a backup and checks it against the manifest: size and CRC32C of each
    /// file, every record of every segment (header and body checksums), the registry's own
    /// integrity check, and that no segment file the manifest does not list is there (a carmad
    /// started on the backup would read it).
    public static func verify(_ directory: String) -> BackupVerification {
        var result = BackupVerification()
        let manifestPath = "\(directory)/\(manifestName)"
        let manifest: BackupManifest
        do throws(FileError) {
            switch BackupManifest.decode(try FileSystem.read(manifestPath)) {
            case .success(let decoded): manifest = decoded
            case .failure(let problem):
                result.problems.append("\(manifestPath): \(problem)")
                return result
            }
        } catch {
            result.problems.append("\(manifestPath): cannot read the manifest (\(error)); a backup that did not finish leaves none")
            return result
        }
        result.startedAt = manifest.startedAt
        result.fragments = manifest.registry?.fragments

        if let registry = manifest.registry {
            let path = "\(directory)/\(registry.path)"
            if let bytes = self.file(path, bytes: registry.bytes, checksum: registry.checksum, into: &result) {
                result.bytes += Int64(bytes.count)
                do throws(SQLiteError) {
                    let connection = try SQLiteConnection(path: path, readOnly: true)
                    let check = try connection.statement("PRAGMA quick_check")
                    let verdict = try check.step() ? check.text(0) : "no answer"
                    check.reset()
                    if verdict != "ok" { result.problems.append("\(path): SQLite integrity check failed: \(verdict)") }
                    if try Registry.schemaVersion(of: connection) != registry.schemaVersion {
                        result.problems.append("\(path): schema version differs from the manifest")
                    }
                } catch {
                    result.problems.append("\(path): cannot open as SQLite: \(error)")
                }
            }
            for suffix in ["-wal", "-journal"] where FileSystem.exists(path + suffix) {
                result.problems.append("\(path + suffix): present, so the registry was opened for writing after the backup (a carmad started on it?)")
            }
        }

        for segment in manifest.segments {
            let path = "\(directory)/\(segment.path)"
            guard let bytes = self.file(path, bytes: segment.bytes, checksum: segment.checksum, into: &result) else { continue }
            result.bytes += Int64(bytes.count)
            let counts = self.count(bytes)
            result.records += counts.records
            if counts.records != segment.records || counts.damaged != segment.damaged {
                result.problems.append(
                    "\(path): \(counts.records) records verify and \(counts.damaged) are damaged; the manifest says \(segment.records) and \(segment.damaged)")
            } else if segment.damaged > 0 {
                result.notes.append("\(path): \(segment.damaged) damaged records, as in the store when it was backed up")
            }
        }

        let listed = Set(manifest.segments.map(\.path))
        for root in [BackupManifest.primaryRoot, BackupManifest.redundancyRoot] {
            for name in FileSystem.list("\(directory)/\(root)") where !listed.contains("\(root)/\(name)") {
                if BackupManifest.isSegmentPath("\(root)/\(name)") || name.hasSuffix(".seg") {
                    result.problems.append("\(directory)/\(root)/\(name): a segment file the manifest does not list")
                } else {
                    // Not read by carmad, but not the backup either (issue 28: verified as intact).
                    result.problems.append("\(directory)/\(root)/\(name): a file the manifest does not list (not part of the backup; remove it)")
                }
            }
        }
        return result
    }

    /// A file's bytes when its size and checksum are the manifest's; otherwise nil and a problem.
    private static func file(_ path: String, bytes expected: Int, checksum: UInt32, into result: inout BackupVerification) -> [UInt8]? {
        result.files += 1
        let bytes: [UInt8]
        do throws(FileError) {
            bytes = try FileSystem.read(path)
        } catch {
            result.problems.append("\(path): \(error.kind == .notFound ? "missing" : "unreadable (\(error))")")
            return nil
        }
        guard bytes.count == expected else {
            result.problems.append("\(path): \(bytes.count) bytes, the manifest says \(expected)")
            return nil
        }
        let actual = CRC32C.checksum(bytes)
        guard actual == checksum else {
            result.problems.append("\(path): checksum \(CRC32C.format(actual)), the manifest says \(CRC32C.format(checksum))")
            return nil
        }
        return bytes
    }
}
