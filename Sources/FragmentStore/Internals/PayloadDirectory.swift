/// A directory of payload files (the primary area or the redundancy area).
///
/// A fragment's file lives at `<root>/<h[0..2]>/<h[0..32]>-<version>.<ext>`, where `h` is the hex
/// SHA-256 of its id: 256 directories, which ext4's hashed directories serve well into millions of
/// files, and which exist after the first few hundred writes (a second level made nearly every early
/// write pay for two mkdirs). Each version gets a new file that is never rewritten in place, so the registry
/// row is the single commit point: a crash before the registry commit leaves only an orphan file,
/// never a half-replaced one.
struct PayloadDirectory: Sendable {
    let root: String

    init(root: String) throws(FileError) {
        self.root = root
        try FileSystem.makeDirectory(root)
    }

    static func hash(_ id: String) -> String {
        String(SHA256.hex(SHA256.digest(id.utf8)).prefix(32))
    }

    func path(id: String, version: UInt64, kind: PayloadFile.Kind) -> String {
        self.path(hash: Self.hash(id), version: version, kind: kind)
    }

    func path(hash: String, version: UInt64, kind: PayloadFile.Kind) -> String {
        let first = String(decoding: Array(hash.utf8)[0..<2], as: UTF8.self)
        return "\(self.root)/\(first)/\(hash)-\(version).\(kind == .original ? "frag" : "recon")"
    }

    enum ReadOutcome {
        case record([UInt8])
        case missing
        case corrupt
        case unreadable(FileError)

        /// What is wrong, as a blank's reason; nil for an intact record.
        var damage: BlankReason? {
            switch self {
            case .record: nil
            case .missing: .missing
            case .corrupt: .checksumMismatch
            case .unreadable: .unreadable
            }
        }
    }

    /// Reads and verifies a payload: the header must be intact and name this id and version, and the
    /// record must match `checksum` (the registry's, not only the file's own).
    func read(id: String, version: UInt64, kind: PayloadFile.Kind, checksum: UInt32) -> ReadOutcome {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(self.path(id: id, version: version, kind: kind))
        } catch {
            return error.kind == .notFound ? .missing : .unreadable(error)
        }
        guard case .success(let (header, record)) = PayloadFile.decode(bytes), header.id == id, header.version == version,
            header.kind == kind, header.recordChecksum == checksum
        else { return .corrupt }
        return .record(record)
    }

    /// Writes a new version's file (not yet durable: see `sync`).
    func write(id: String, version: UInt64, kind: PayloadFile.Kind, record: [UInt8], checksum: UInt32) throws(FileError) {
        let bytes = PayloadFile.encode(kind: kind, id: id, version: version, record: record, recordChecksum: checksum)
        try FileSystem.write(self.path(id: id, version: version, kind: kind), bytes)
    }

    /// Replaces a file atomically and durably (used by repairs, which rewrite a committed version).
    func replace(id: String, version: UInt64, kind: PayloadFile.Kind, record: [UInt8], checksum: UInt32) throws(FileError) {
        let bytes = PayloadFile.encode(kind: kind, id: id, version: version, record: record, recordChecksum: checksum)
        try FileSystem.replace(self.path(id: id, version: version, kind: kind), bytes)
    }

    func remove(id: String, version: UInt64, kind: PayloadFile.Kind) {
        FileSystem.remove(self.path(id: id, version: version, kind: kind))
    }

    /// Makes every write so far durable, names included.
    func sync() throws(FileError) {
        try FileSystem.syncFileSystem(containing: self.root)
    }

    /// Every payload file, as (path, file name), in no particular order.
    func allFiles(_ body: (String, String) -> Void) {
        for first in FileSystem.list(self.root) where first.utf8.count == 2 {
            let firstPath = "\(self.root)/\(first)"
            for name in FileSystem.list(firstPath) {
                body("\(firstPath)/\(name)", name)
            }
        }
    }
}
