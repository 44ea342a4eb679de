import FragmentCore
import Synchronization

/// Where a record sits: a segment and a byte offset in it.
public struct LogLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var segment: UInt32
    public var offset: UInt64

    public init(segment: UInt32, offset: UInt64) {
        self.segment = segment
        self.offset = offset
    }

    public static func < (lhs: LogLocation, rhs: LogLocation) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }

    public var description: String { "\(self.segment):\(self.offset)" }

    /// Parses the `segment:offset` form kept in the registry's meta table.
    init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let segment = UInt32(parts[0]), let offset = UInt64(parts[1]) else { return nil }
        self.init(segment: segment, offset: offset)
    }
}

/// An open segment file, shared by readers; closed when the last reader lets go of it (so that a
/// segment removed by compaction is never read through a descriptor number reused meanwhile).
final class SegmentFile: Sendable {
    let descriptor: Int32
    let path: String

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        FileSystem.closeDescriptor(self.descriptor)
    }
}

/// An append-only log of records in numbered segment files, `<root>/<8 hex digits>.seg`.
///
/// The same type holds the primary payloads and the redundancy copies (on another volume). One
/// thread appends (the commit pipeline's log stage); any thread reads. A segment is sealed when the
/// next append would pass `segmentBytes`; records are never rewritten, and a sealed segment is only
/// ever deleted whole, by compaction, after its live records were copied forward.
final class SegmentLog: Sendable {
    /// Which of the store's two logs this is.
    enum Volume: String, Sendable {
        case primary
        case redundancy
    }

    let root: String
    let volume: Volume
    let segmentBytes: UInt64

    private struct State {
        var current: UInt32
        /// Where the next record goes: the end of the last one.
        var size: UInt64
        var writer: SegmentFile
        var readers: [UInt32: SegmentFile] = [:]
        /// Bytes of live records per segment (what compaction would have to copy).
        var live: [UInt32: UInt64] = [:]
        /// After a failed write or sync the current file's state is unknown: the next append starts
        /// a new segment.
        var mustRoll = false
    }

    private let state: Mutex<State>

    /// Opens the log, creating the directory and a first segment if needed. Bytes after the last
    /// valid record of the newest segment (a write torn by a crash) are cut off.
    /// - Parameter tailHint: Where scanning the newest segment for a torn tail may start (the
    ///   registry's applied position, when it lies in that segment).
    init(root: String, volume: Volume, segmentBytes: UInt64, tailHint: LogLocation? = nil, logger: ((String) -> Void)? = nil) throws(FileError) {
        self.root = root
        self.volume = volume
        self.segmentBytes = segmentBytes
        try FileSystem.makeDirectory(root)
        let existing = Self.segments(in: root)
        var current = existing.last ?? 1
        var created = existing.isEmpty
        // The segment the registry last applied is gone (deleted with the newest records): never
        // reuse its number, or old locations would point into a new file.
        if let hint = tailHint, hint.segment >= current, !existing.contains(hint.segment), hint.segment < UInt32.max - 1 {
            current = hint.segment + 1
            created = true
        }
        var path = Self.path(root, current)
        let descriptor: Int32
        do {
            descriptor = try FileSystem.openReadWrite(path, create: created)
        } catch where !created && error.kind != .transient {
            // The newest segment cannot be opened (damaged, or not a file): its records are reported
            // by reads and the scrub; appends go to a new segment.
            logger?("cannot open \(path) (\(error)); appending to a new segment")
            current += 1
            path = Self.path(root, current)
            created = true
            descriptor = try FileSystem.openReadWrite(path, create: true)
        }
        let writer = SegmentFile(descriptor: descriptor, path: path)
        if created { try FileSystem.syncDirectory(of: path) }
        let fileSize = UInt64(FileSystem.size(of: descriptor) ?? 0)
        let start = tailHint.flatMap { $0.segment == current && $0.offset <= fileSize ? $0.offset : nil } ?? 0
        let end = try Self.validEnd(writer, from: start, size: fileSize)
        if end < fileSize {
            logger?("cut \(fileSize - end) bytes after the last valid record of \(path) (a write torn by a crash)")
            try FileSystem.truncate(descriptor, to: end, path: path)
            try FileSystem.syncData(descriptor, path: path)
        }
        self.state = Mutex(State(current: current, size: end, writer: writer, readers: [current: writer]))
    }

    /// The offset after the last record that verifies, from `start`. A damaged record followed by a
    /// valid one is damage inside the log, not a torn tail, and is kept (reads report it).
    private static func validEnd(_ file: SegmentFile, from start: UInt64, size: UInt64) throws(FileError) -> UInt64 {
        guard size > start else { return size }
        let bytes = try FileSystem.read(file.descriptor, at: start, count: Int(size - start), path: file.path)
        return start + UInt64(bytes.withUnsafeBytes { Self.walk($0) { _, _ in }.validEnd })
    }

    /// One record met by `walk`.
    enum Walked {
        case record(LogRecord.Header, [UInt8])
        /// The header verifies, the body does not.
        case damagedBody(LogRecord.Header)
    }

    /// Walks the records in `buffer` in order, calling `body` with each one's offset. A stretch that
    /// does not parse is skipped to the next header that verifies; zeros to the end (a file extended
    /// by a crash before its data reached the disk) end the walk, as the end of the log.
    /// - Returns: The offset after the last record that verified whole, and the stretches skipped.
    static func walk(_ buffer: UnsafeRawBufferPointer, _ body: (Int, Walked) -> Void) -> (validEnd: Int, skipped: Int) {
        var offset = 0
        var validEnd = 0
        var skipped = 0
        while offset < buffer.count {
            switch LogRecord.decode(buffer, at: offset) {
            case .success(let (header, recordBody)):
                body(offset, .record(header, recordBody))
                offset += header.totalLength
                validEnd = offset
            case .failure(.bodyChecksum(let header)):
                body(offset, .damagedBody(header))
                offset += header.totalLength
            case .failure:
                guard !Self.onlyZeros(buffer, from: offset), let next = Self.nextHeader(buffer, after: offset) else {
                    if !Self.onlyZeros(buffer, from: offset) { skipped += 1 }
                    return (validEnd, skipped)
                }
                skipped += 1
                offset = next
            }
        }
        return (validEnd, skipped)
    }

    /// Whether every byte from `offset` on is zero (a file extended by a crash before its data
    /// reached the disk): the end of the log, not damage.
    static func onlyZeros(_ buffer: UnsafeRawBufferPointer, from offset: Int) -> Bool {
        var index = offset
        while index < buffer.count {
            if buffer[index] != 0 { return false }
            index += 1
        }
        return true
    }

    /// The next offset after `offset` where a header verifies, if any.
    static func nextHeader(_ buffer: UnsafeRawBufferPointer, after offset: Int) -> Int? {
        var position = offset + 1
        let magic = LogRecord.magic
        while position + LogRecord.headerSize <= buffer.count {
            if buffer[position] == magic[0], buffer[position + 1] == magic[1], buffer[position + 2] == magic[2],
                buffer[position + 3] == magic[3], case .success = LogRecord.header(buffer, at: position)
            {
                return position
            }
            position += 1
        }
        return nil
    }

    static func path(_ root: String, _ segment: UInt32) -> String {
        let hex = String(segment, radix: 16)
        return "\(root)/\(String(repeating: "0", count: max(0, 8 - hex.count)))\(hex).seg"
    }

    func path(_ segment: UInt32) -> String {
        Self.path(self.root, segment)
    }

    /// Segment numbers present, in order. Names that are not exactly eight hex digits and `.seg` are
    /// not segments; the largest number is left out, so that the log can always roll over.
    static func segments(in root: String) -> [UInt32] {
        FileSystem.list(root).compactMap { name -> UInt32? in
            guard name.hasSuffix(".seg"), name.utf8.count == 12, let number = UInt32(name.prefix(8), radix: 16),
                number > 0, number < UInt32.max
            else { return nil }
            return number
        }.sorted()
    }

    var segments: [UInt32] { Self.segments(in: self.root) }

    /// The segment being appended to and its size: everything before this position is durable once
    /// the last sync returned.
    var end: LogLocation {
        self.state.withLock { LogLocation(segment: $0.current, offset: $0.size) }
    }

    // MARK: Appending (one thread)

    /// Appends `bytes` (whole records) in one write and returns where they start. Not durable until
    /// `sync()`. On failure nothing of `bytes` remains in the log.
    func append(_ bytes: [UInt8]) throws(FileError) -> LogLocation {
        precondition(!bytes.isEmpty)
        return try self.state.withLock { (state) throws(FileError) -> LogLocation in
            // A segment file removed under us (its directory deleted) would swallow every append.
            if state.mustRoll || !FileSystem.exists(state.writer.path) || (state.size > 0 && state.size + UInt64(bytes.count) > self.segmentBytes) {
                try self.roll(&state)
            }
            let start = state.size
            do throws(FileError) {
                try FileSystem.writeAll(state.writer.descriptor, bytes, at: start, path: state.writer.path)
            } catch {
                // A partial write must not stay in the log: it would read as a torn tail or, worse, as
                // a record nobody acknowledged.
                if (try? FileSystem.truncate(state.writer.descriptor, to: start, path: state.writer.path)) == nil {
                    state.mustRoll = true
                }
                throw error
            }
            state.size += UInt64(bytes.count)
            return LogLocation(segment: state.current, offset: start)
        }
    }

    /// Starts the next segment; its name is durable before anything is written to it.
    private func roll(_ state: inout State) throws(FileError) {
        try FileSystem.makeDirectory(self.root)
        var next = state.current + 1
        // Skip numbers taken meanwhile by hand (a restored file): never append to a foreign file.
        while FileSystem.exists(self.path(next)) { next += 1 }
        guard next < UInt32.max else { throw FileError(errno: 27 /* EFBIG */, "roll over", self.root) }
        let path = self.path(next)
        let descriptor = try FileSystem.openReadWrite(path, create: true)
        let writer = SegmentFile(descriptor: descriptor, path: path)
        try FileSystem.syncDirectory(of: path)
        state.current = next
        state.size = 0
        state.writer = writer
        state.readers[next] = writer
        state.mustRoll = false
    }

    /// Makes every append so far durable (`fdatasync` of the segment being written; a sealed
    /// segment was synced by the batch that filled it).
    func sync() throws(FileError) {
        let writer = self.state.withLock { $0.writer }
        do {
            try FileSystem.syncData(writer.descriptor, path: writer.path)
        } catch {
            // After a failed fsync the kernel may have dropped the dirty pages: nothing more is
            // written to this file.
            self.state.withLock { $0.mustRoll = true }
            throw error
        }
    }

    /// Takes back an append whose sync failed: the file is cut at `location` if it is still the one
    /// being written.
    func rollback(to location: LogLocation) {
        self.state.withLock { state in
            guard state.current == location.segment, location.offset <= state.size else { return }
            if (try? FileSystem.truncate(state.writer.descriptor, to: location.offset, path: state.writer.path)) == nil {
                state.mustRoll = true
            }
            state.size = location.offset
        }
    }

    // MARK: Reading (any thread)

    /// What a read of one record found.
    enum ReadOutcome {
        case record([UInt8])
        /// The segment file is gone.
        case missing
        /// The bytes are there but do not verify (or name another record).
        case corrupt
        /// The device failed (EIO) or the segment is not a readable file.
        case unreadable(FileError)
        /// Out of descriptors or memory, or interrupted: try again; nothing is lost.
        case transient(FileError)

        /// What is wrong, as a blank's reason; nil for an intact record or a transient failure.
        var damage: BlankReason? {
            switch self {
            case .record, .transient: nil
            case .missing: .missing
            case .corrupt: .checksumMismatch
            case .unreadable: .unreadable
            }
        }
    }

    /// An open file for `segment`, shared with other readers.
    private func file(_ segment: UInt32) throws(FileError) -> SegmentFile {
        if let open = self.state.withLock({ $0.readers[segment] }) { return open }
        let path = self.path(segment)
        let file = SegmentFile(descriptor: try FileSystem.openRead(path), path: path)
        return self.state.withLock { state in
            if let raced = state.readers[segment] { return raced }
            state.readers[segment] = file
            return file
        }
    }

    static func outcome(of error: FileError) -> ReadOutcome {
        switch error.kind {
        case .notFound: .missing
        case .transient: .transient(error)
        default: .unreadable(error)
        }
    }

    /// Reads one record and verifies it: its header must name this id, version and kind, and its
    /// body must be `bodyLength` bytes matching `checksum` (the index's, not only the record's own).
    func read(_ location: LogLocation, id: String, version: UInt64, kind: LogRecord.Kind, bodyLength: Int, checksum: UInt32) -> ReadOutcome {
        let bytes: [UInt8]
        do {
            let file = try self.file(location.segment)
            bytes = try FileSystem.read(file.descriptor, at: location.offset, count: LogRecord.length(id: id, bodyLength: bodyLength), path: file.path)
        } catch {
            return Self.outcome(of: error)
        }
        guard case .success(let (header, body)) = LogRecord.decode(bytes), header.id == id, header.version == version,
            header.kind == kind, header.bodyChecksum == checksum, header.bodyLength == bodyLength
        else { return .corrupt }
        return .record(body)
    }

    /// Whether a segment's file is still there (the scrub's first question).
    func segmentExists(_ segment: UInt32) -> Bool {
        FileSystem.exists(self.path(segment))
    }

    /// A whole segment's bytes from `offset` on, for sequential work (scrub, compaction, replay).
    func contents(_ segment: UInt32, from offset: UInt64 = 0) -> Result<[UInt8], FileError> {
        do throws(FileError) {
            let file = try self.file(segment)
            let size = UInt64(FileSystem.size(of: file.descriptor) ?? 0)
            guard size > offset else { return .success([]) }
            return .success(try FileSystem.read(file.descriptor, at: offset, count: Int(size - offset), path: file.path))
        } catch {
            return .failure(error)
        }
    }

    /// Every record from `start` to the end of the log, in order. A record whose header verifies but
    /// whose body does not is reported with a nil body; a stretch that does not parse is skipped to the
    /// next header that verifies.
    /// - Returns: Records seen, and stretches skipped.
    @discardableResult
    func scan(from start: LogLocation? = nil, _ body: (LogRecord.Header, [UInt8]?, LogLocation) -> Void) -> (records: Int, damaged: Int) {
        var records = 0
        var damaged = 0
        for segment in self.segments where start.map({ segment >= $0.segment }) ?? true {
            let from = start.flatMap { $0.segment == segment ? $0.offset : nil } ?? 0
            guard case .success(let bytes) = self.contents(segment, from: from) else {
                damaged += 1
                continue
            }
            let skipped = bytes.withUnsafeBytes { buffer in
                Self.walk(buffer) { offset, walked in
                    let location = LogLocation(segment: segment, offset: from + UInt64(offset))
                    switch walked {
                    case .record(let header, let recordBody):
                        body(header, recordBody, location)
                        records += 1
                    case .damagedBody(let header):
                        body(header, nil, location)
                        damaged += 1
                    }
                }.skipped
            }
            damaged += skipped
        }
        return (records, damaged)
    }

    /// Every intact record of every segment, each segment read whole with a descriptor of its own
    /// that is closed again: for one-off passes (the start-up text-index load) that should leave the
    /// readers' descriptors as they were. Unreadable segments are skipped.
    func readThrough(_ body: (LogRecord.Header, [UInt8], LogLocation) -> Void) {
        for segment in self.segments {
            guard let bytes = try? FileSystem.read(self.path(segment)) else { continue }
            bytes.withUnsafeBytes { buffer in
                _ = Self.walk(buffer) { offset, walked in
                    if case .record(let header, let recordBody) = walked {
                        body(header, recordBody, LogLocation(segment: segment, offset: UInt64(offset)))
                    }
                }
            }
        }
    }

    // MARK: Space

    /// Counts a record as live (at start-up, and when the index points at a new record).
    func retain(_ location: LogLocation, length: Int) {
        self.state.withLock { $0.live[location.segment, default: 0] += UInt64(length) }
    }

    /// Counts live bytes per segment at once (start-up).
    func retain(_ totals: [UInt32: UInt64]) {
        self.state.withLock { state in
            for (segment, bytes) in totals { state.live[segment, default: 0] += bytes }
        }
    }

    /// Counts a record as garbage (superseded, deleted, or moved by compaction).
    func release(_ location: LogLocation, length: Int) {
        self.state.withLock { state in
            let current = state.live[location.segment] ?? 0
            state.live[location.segment] = current > UInt64(length) ? current - UInt64(length) : 0
        }
    }

    /// Sealed segments whose live share is below `threshold`, oldest first, with their live bytes and
    /// sizes.
    func compactionCandidates(threshold: Double) -> [(segment: UInt32, live: UInt64, size: UInt64)] {
        let (current, live) = self.state.withLock { ($0.current, $0.live) }
        var candidates: [(UInt32, UInt64, UInt64)] = []
        for segment in self.segments where segment != current {
            let size = UInt64(FileSystem.size(self.path(segment)) ?? 0)
            let used = live[segment] ?? 0
            if Double(used) < Double(size) * threshold || size == 0 {
                candidates.append((segment, used, size))
            }
        }
        return candidates
    }

    /// Deletes a sealed segment (its live records were copied forward and repointed).
    func removeSegment(_ segment: UInt32) {
        let path = self.path(segment)
        self.state.withLock { state in
            guard segment != state.current else { return }
            state.readers[segment] = nil
            state.live[segment] = nil
        }
        FileSystem.remove(path)
        try? FileSystem.syncDirectory(of: path)
    }

    /// Total bytes in segment files.
    var bytes: Int64 {
        self.segments.reduce(0) { $0 + (FileSystem.size(self.path($1)) ?? 0) }
    }

    /// The oldest segment present (tombstones there can be dropped: nothing older survives).
    var oldestSegment: UInt32? { self.segments.first }
}
