import Foundation

/// Damages a store's files the way a failing disk would: payload files deleted, a byte flipped inside
/// one, redundancy copies overwritten inside their segments. It finds files by the id in their
/// self-describing headers (32 bytes: "CRMF", …, id length at 8, record length at 12, version at 16;
/// then the id), so it does not depend on how the store names them. Used by `carma experiment` and by
/// the tests.
public struct DiskDamage: Sendable {
    public let dataDirectory: String
    public let redundancyDirectory: String

    /// - Parameters:
    ///   - dataDirectory: carmad's `--data-dir`.
    ///   - redundancyDirectory: carmad's `--redundancy-dir`; default `<data-dir>/redundancy`.
    public init(dataDirectory: String, redundancyDirectory: String? = nil) {
        self.dataDirectory = dataDirectory
        self.redundancyDirectory = redundancyDirectory ?? "\(dataDirectory)/redundancy"
    }

    /// Primary payload files by fragment id.
    public func payloadFiles() -> [String: [String]] {
        var result: [String: [String]] = [:]
        let root = "\(self.dataDirectory)/payloads"
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [:] }
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".frag") || name.hasSuffix(".recon") else { continue }
            let path = "\(root)/\(name)"
            guard let id = Self.headerID(path) else { continue }
            result[id, default: []].append(path)
        }
        return result
    }

    static func headerID(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 32 + 256))
        guard head.count >= 32, head[0..<4].elementsEqual(Array("CRMF".utf8)) else { return nil }
        let length = Int(head[8]) | Int(head[9]) << 8
        guard head.count >= 32 + length else { return nil }
        return String(decoding: head[32..<(32 + length)], as: UTF8.self)
    }

    /// The primary payload files of one fragment.
    public func payloadFiles(of id: String) -> [String] {
        self.payloadFiles()[id] ?? []
    }

    public func delete(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path)
    }

    /// Flips one bit in the record part of a payload file.
    public func flipByte(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count > 40 else { return }
        data[data.count - 5] ^= 0x40
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// A redundancy copy inside a segment file.
    public struct Copy: Sendable {
        public var path: String
        public var offset: Int
        public var length: Int
        public var recordOffset: Int
        public var version: UInt64
    }

    /// Every redundancy copy with a readable header, by id, in segment order.
    public func redundancyCopies() -> [String: [Copy]] {
        var result: [String: [Copy]] = [:]
        let segments = ((try? FileManager.default.contentsOfDirectory(atPath: self.redundancyDirectory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
        for name in segments {
            let path = "\(self.redundancyDirectory)/\(name)"
            guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else { continue }
            var offset = 0
            while offset + 32 <= bytes.count {
                guard bytes[offset..<(offset + 4)].elementsEqual(Array("CRMF".utf8)) else {
                    offset += 1
                    continue
                }
                let idLength = Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8
                let recordLength = (0..<4).reduce(0) { $0 | Int(bytes[offset + 12 + $1]) << ($1 * 8) }
                let version = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + 16 + $1]) << UInt64($1 * 8) }
                let end = offset + 32 + idLength + recordLength
                guard end <= bytes.count else { break }
                let id = String(decoding: bytes[(offset + 32)..<(offset + 32 + idLength)], as: UTF8.self)
                result[id, default: []].append(Copy(path: path, offset: offset, length: end - offset, recordOffset: offset + 32 + idLength, version: version))
                offset = end
            }
        }
        return result
    }

    /// Overwrites the records of every redundancy copy of the given ids with zeros, in place like a bad
    /// sector (the server keeps segments open). Headers stay readable; checksums no longer match.
    /// - Returns: What each copy held before, to put back with `restore`.
    @discardableResult
    public func destroyRedundancy(of ids: Set<String>) throws -> [(Copy, Data)] {
        var saved: [(Copy, Data)] = []
        for (id, copies) in self.redundancyCopies() where ids.contains(id) {
            for copy in copies {
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy.path))
                try handle.seek(toOffset: UInt64(copy.offset))
                let original = try handle.read(upToCount: copy.length) ?? Data()
                try handle.seek(toOffset: UInt64(copy.recordOffset))
                try handle.write(contentsOf: Data(repeating: 0, count: copy.offset + copy.length - copy.recordOffset))
                try handle.close()
                saved.append((copy, original))
            }
        }
        return saved
    }

    /// Puts back copies saved by `destroyRedundancy` (a volume that comes back).
    public func restore(_ saved: [(Copy, Data)]) throws {
        for (copy, original) in saved {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy.path))
            try handle.seek(toOffset: UInt64(copy.offset))
            try handle.write(contentsOf: original)
            try handle.close()
        }
    }
}
