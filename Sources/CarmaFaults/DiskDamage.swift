import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Damages a store's segment logs the way a failing disk would: records zeroed or with a flipped
/// byte (in place, like a bad sector: a running carmad sees it on its next read), whole segments
/// deleted, the newest segment's tail cut. It finds records by their self-describing headers
/// ("CRML", kind at 5, id length at 8, body length at 12, version at 16, then the id at 40), so it
/// does not depend on the store's index. Used by `carmad faults`, `carma experiment` and the tests.
public struct DiskDamage: Sendable {
    /// Which log: the primary one under the data directory, or the redundancy one.
    public enum Volume: String, Sendable, CaseIterable {
        case primary
        case redundancy
    }

    public let dataDirectory: String
    public let redundancyDirectory: String

    /// - Parameters:
    ///   - dataDirectory: carmad's `--data-dir`.
    ///   - redundancyDirectory: carmad's `--redundancy-dir`; default `<data-dir>/redundancy`.
    public init(dataDirectory: String, redundancyDirectory: String? = nil) {
        self.dataDirectory = dataDirectory
        self.redundancyDirectory = redundancyDirectory ?? "\(dataDirectory)/redundancy"
    }

    public func segmentDirectory(_ volume: Volume) -> String {
        volume == .primary ? "\(self.dataDirectory)/segments" : "\(self.redundancyDirectory)/segments"
    }

    /// One record found in a segment.
    public struct Record: Sendable {
        public var volume: Volume
        public var path: String
        public var segment: UInt32
        public var offset: Int
        public var length: Int
        public var bodyOffset: Int
        public var id: String
        public var version: UInt64
        /// 1 put, 2 delete, 3 reconstruction.
        public var kind: UInt8
    }

    /// Segment files of a log, in order.
    public func segments(_ volume: Volume) -> [(number: UInt32, path: String)] {
        let directory = self.segmentDirectory(volume)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (UInt32, String)? in
            guard name.hasSuffix(".seg"), name.utf8.count == 12, let number = UInt32(name.prefix(8), radix: 16) else { return nil }
            return (number, "\(directory)/\(name)")
        }.sorted { $0.0 < $1.0 }
    }

    /// Every record with a readable header, by id, in log order.
    public func records(_ volume: Volume) -> [String: [Record]] {
        var result: [String: [Record]] = [:]
        for (number, path) in self.segments(volume) {
            guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else { continue }
            var offset = 0
            while offset + 40 <= bytes.count {
                guard bytes[offset..<(offset + 4)].elementsEqual(Array("CRML".utf8)) else {
                    offset += 1
                    continue
                }
                let idLength = Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8
                let bodyLength = (0..<4).reduce(0) { $0 | Int(bytes[offset + 12 + $1]) << ($1 * 8) }
                let version = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + 16 + $1]) << UInt64($1 * 8) }
                let end = offset + 40 + idLength + bodyLength
                guard idLength > 0, idLength <= 200, end <= bytes.count else {
                    offset += 1
                    continue
                }
                let id = String(decoding: bytes[(offset + 40)..<(offset + 40 + idLength)], as: UTF8.self)
                result[id, default: []].append(
                    Record(
                        volume: volume, path: path, segment: number, offset: offset, length: end - offset, bodyOffset: offset + 40 + idLength,
                        id: id, version: version, kind: bytes[offset + 5]))
                offset = end
            }
        }
        return result
    }

    /// Saved bytes of damaged records, to put back with `restore` (a volume that comes back).
    public typealias Saved = [(Record, Data)]

    /// Overwrites every record (header included) of the given ids in a log with zeros: the store finds
    /// them corrupt (`checksum_mismatch`) on its next read or scrub.
    @discardableResult
    public func zero(_ ids: Set<String>, in volume: Volume) throws -> Saved {
        try self.overwrite(ids, in: volume) { record in Data(repeating: 0, count: record.length) }
    }

    /// Flips one bit in the body of every record of the given ids in a log.
    @discardableResult
    public func flip(_ ids: Set<String>, in volume: Volume) throws -> Saved {
        try self.overwrite(ids, in: volume, from: { $0.bodyOffset == $0.offset + $0.length ? $0.offset : $0.offset + $0.length - 1 }) { record in
            Data([0x40])
        }
    }

    /// The redundancy copies of the given ids zeroed (kept for the existing callers' wording).
    @discardableResult
    public func destroyRedundancy(of ids: Set<String>) throws -> Saved {
        try self.zero(ids, in: .redundancy)
    }

    private func overwrite(_ ids: Set<String>, in volume: Volume, from start: ((Record) -> Int)? = nil, _ bytes: (Record) -> Data) throws -> Saved {
        var saved: Saved = []
        for (id, records) in self.records(volume) where ids.contains(id) {
            for record in records {
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: record.path))
                defer { try? handle.close() }
                try handle.seek(toOffset: UInt64(record.offset))
                let original = try handle.read(upToCount: record.length) ?? Data()
                let at = start?(record) ?? record.offset
                var replacement = bytes(record)
                if start != nil {
                    // A flip: XOR the byte that is there.
                    replacement = Data([original[at - record.offset] ^ replacement[0]])
                }
                try handle.seek(toOffset: UInt64(at))
                try handle.write(contentsOf: replacement)
                saved.append((record, original))
            }
        }
        return saved
    }

    /// Puts back records saved by `zero`, `flip` or `destroyRedundancy`.
    public func restore(_ saved: Saved) throws {
        for (record, original) in saved {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: record.path))
            try handle.seek(toOffset: UInt64(record.offset))
            try handle.write(contentsOf: original)
            try handle.close()
        }
    }

    /// Deletes a whole segment file: every fragment whose newest record lived there turns `missing`.
    public func dropSegment(_ number: UInt32, in volume: Volume) throws {
        guard let path = self.segments(volume).first(where: { $0.number == number })?.path else {
            throw DamageError("no segment \(number) in the \(volume.rawValue) log")
        }
        try FileManager.default.removeItem(atPath: path)
    }

    /// Cuts `bytes` off the end of the newest segment's last record (a write torn by a crash); the
    /// zeros a log writes ahead of its records go too.
    public func cutTail(_ bytes: Int, in volume: Volume) throws {
        let (newest, end) = try self.newestEnd(volume)
        guard truncate(newest.path, off_t(max(0, end - bytes))) == 0 else { throw DamageError("cannot truncate \(newest.path)") }
    }

    /// Writes garbage right after the newest segment's last record (a half-written record after a crash).
    public func appendGarbage(_ bytes: [UInt8], in volume: Volume) throws {
        let (newest, end) = try self.newestEnd(volume)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: newest.path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(end))
        try handle.write(contentsOf: Data(bytes))
    }

    /// The newest segment of a log and where its last record ends.
    private func newestEnd(_ volume: Volume) throws -> (segment: (number: UInt32, path: String), end: Int) {
        guard let newest = self.segments(volume).last else { throw DamageError("the \(volume.rawValue) log has no segment") }
        let end = self.records(volume).values.joined().filter { $0.segment == newest.number }.map { $0.offset + $0.length }.max() ?? 0
        return (newest, end)
    }

    /// Whether a carmad holds the data directory (its `LOCK` file is locked).
    public var storeIsRunning: Bool {
        let fd = open("\(self.dataDirectory)/LOCK", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }
}

public struct DamageError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
