import Synchronization

/// Where a fragment's redundancy copy sits: a segment and a byte offset in it.
public struct RedundancyLocation: Sendable, Hashable {
    public var segment: UInt32
    public var offset: UInt64

    public init(segment: UInt32, offset: UInt64) {
        self.segment = segment
        self.offset = offset
    }
}

/// The redundancy area: second copies of payloads, appended to segment files.
///
/// Each copy is a complete payload file (header, id, record: the same self-describing format as a
/// primary file) appended to the current segment, so one group commit appends one contiguous write
/// instead of creating a file per fragment: creating files is most of a PUT's kernel time, and this
/// halves it. Segments roll over at `segmentBytes`. A copy that is superseded becomes garbage; the
/// dream engine compacts segments that are mostly garbage.
final class RedundancyLog: Sendable {
    let root: String
    let segmentBytes: UInt64

    private struct State {
        var current: UInt32
        var size: UInt64
        var descriptor: Int32
        /// Bytes of live copies per segment.
        var live: [UInt32: UInt64] = [:]
    }

    private let state: Mutex<State>

    init(root: String, segmentBytes: UInt64 = 64 << 20) throws(FileError) {
        self.root = root
        self.segmentBytes = segmentBytes
        try FileSystem.makeDirectory(root)
        let existing = Self.segments(in: root)
        let next = (existing.last ?? 0) + 1
        let descriptor = try FileSystem.openAppend(Self.path(root, next))
        self.state = Mutex(State(current: next, size: 0, descriptor: descriptor))
    }

    deinit {
        self.state.withLock { FileSystem.closeDescriptor($0.descriptor) }
    }

    static func path(_ root: String, _ segment: UInt32) -> String {
        let hex = String(segment, radix: 16)
        return "\(root)/\(String(repeating: "0", count: max(0, 8 - hex.count)))\(hex).seg"
    }

    func path(_ segment: UInt32) -> String {
        Self.path(self.root, segment)
    }

    /// Segment numbers present, in order.
    static func segments(in root: String) -> [UInt32] {
        FileSystem.list(root).compactMap { name -> UInt32? in
            guard name.hasSuffix(".seg"), name.utf8.count == 12 else { return nil }
            return UInt32(name.prefix(8), radix: 16)
        }.sorted()
    }

    struct Entry {
        var id: String
        var version: UInt64
        var record: [UInt8]
        var checksum: UInt32
    }

    /// Appends copies in one write and returns where each landed. Not durable by itself: a sync of
    /// the file system follows in the group commit.
    func append(_ entries: [Entry]) throws(FileError) -> [RedundancyLocation] {
        guard !entries.isEmpty else { return [] }
        var buffer: [UInt8] = []
        var offsets: [UInt64] = []
        for entry in entries {
            offsets.append(UInt64(buffer.count))
            buffer.append(contentsOf: PayloadFile.encode(kind: .original, id: entry.id, version: entry.version, record: entry.record, recordChecksum: entry.checksum))
        }
        return try self.state.withLock { (state) throws(FileError) -> [RedundancyLocation] in
            // Roll over when full, or when the segment vanished (the directory was removed): writing
            // on to an unlinked file would lose every copy.
            if state.size + UInt64(buffer.count) > self.segmentBytes && state.size > 0 || !FileSystem.exists(self.path(state.current)) {
                try FileSystem.makeDirectory(self.root)
                let next = state.current + 1
                let descriptor = try FileSystem.openAppend(self.path(next))
                FileSystem.closeDescriptor(state.descriptor)
                state = State(current: next, size: 0, descriptor: descriptor, live: state.live)
            }
            let start = state.size
            try FileSystem.writeAll(state.descriptor, buffer, at: start, path: self.path(state.current))
            state.size += UInt64(buffer.count)
            state.live[state.current, default: 0] += UInt64(buffer.count)
            return offsets.map { RedundancyLocation(segment: state.current, offset: start + $0) }
        }
    }

    /// Reads and verifies the copy at `location`: it must be an intact payload for this id and
    /// version whose record is `recordLength` bytes matching `checksum`. The registry knows the
    /// length, so the copy is read in one `pread`.
    func read(_ location: RedundancyLocation, id: String, version: UInt64, recordLength: Int, checksum: UInt32) -> PayloadDirectory.ReadOutcome {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(self.path(location.segment), at: location.offset, count: Self.copyLength(id: id, recordLength: recordLength))
        } catch {
            return error.kind == .notFound ? .missing : .unreadable(error)
        }
        guard case .success(let (decoded, record)) = PayloadFile.decode(bytes), decoded.id == id, decoded.version == version,
            decoded.recordChecksum == checksum
        else { return .corrupt }
        return .record(record)
    }

    /// Bytes one copy takes in a segment.
    static func copyLength(id: String, recordLength: Int) -> Int {
        PayloadFile.headerSize + id.utf8.count + recordLength
    }

    /// Counts copies as live (at start-up, for the copies the registry points to): bytes per segment.
    func retain(_ bytes: [UInt32: UInt64]) {
        self.state.withLock { state in
            for (segment, count) in bytes { state.live[segment, default: 0] += count }
        }
    }

    /// Counts a copy as garbage (superseded or deleted).
    func release(_ location: RedundancyLocation, length: Int) {
        self.state.withLock { state in
            let current = state.live[location.segment] ?? 0
            state.live[location.segment] = current > UInt64(length) ? current - UInt64(length) : 0
        }
    }

    /// Sealed segments (not the one being appended to) whose live share is below `threshold`, with
    /// their sizes, most wasteful first.
    func compactionCandidates(threshold: Double) -> [(segment: UInt32, live: UInt64, size: UInt64)] {
        let (current, live) = self.state.withLock { ($0.current, $0.live) }
        var candidates: [(UInt32, UInt64, UInt64)] = []
        for segment in Self.segments(in: self.root) where segment != current {
            let size = UInt64(FileSystem.size(self.path(segment)) ?? 0)
            let used = live[segment] ?? 0
            if size > 0, Double(used) < Double(size) * threshold {
                candidates.append((segment, used, size))
            }
        }
        return candidates.sorted { Double($0.1) / Double($0.2) < Double($1.1) / Double($1.2) }
    }

    /// Deletes a sealed segment that holds no live copy any more.
    func removeSegment(_ segment: UInt32) {
        self.state.withLock { state in
            guard segment != state.current else { return }
            FileSystem.remove(self.path(segment))
            state.live[segment] = nil
        }
    }

    /// Total bytes in segment files.
    var bytes: Int64 {
        Self.segments(in: self.root).reduce(0) { $0 + (FileSystem.size(self.path($1)) ?? 0) }
    }

    /// Makes every append so far durable.
    func sync() throws(FileError) {
        try FileSystem.syncFileSystem(containing: self.root)
    }

    /// Every intact copy in every segment, in order, for rebuilding the registry. A damaged stretch is
    /// skipped by searching for the next header that verifies.
    func scan(_ body: (PayloadFile.Header, [UInt8], RedundancyLocation) -> Void) -> (copies: Int, damaged: Int) {
        var copies = 0
        var damaged = 0
        for segment in Self.segments(in: self.root) {
            guard let bytes = try? FileSystem.read(self.path(segment)) else { continue }
            var offset = 0
            var skipping = false
            while offset + PayloadFile.headerSize <= bytes.count {
                let header = Array(bytes[offset..<(offset + PayloadFile.headerSize)])
                if let length = PayloadFile.totalLength(header: header), offset + length <= bytes.count,
                    case .success(let (decoded, record)) = PayloadFile.decode(Array(bytes[offset..<(offset + length)]))
                {
                    body(decoded, record, RedundancyLocation(segment: segment, offset: UInt64(offset)))
                    copies += 1
                    offset += length
                    skipping = false
                    continue
                }
                if !skipping { damaged += 1 }
                skipping = true
                offset += 1
            }
        }
        return (copies, damaged)
    }
}
