import Foundation

/// Finds and damages redundancy copies inside a server's segment files (`<data>/redundancy/*.seg`),
/// the way a bad sector would: each copy is a self-describing payload (32-byte header, id, record).
public enum RedundancyCopies {
    public struct Copy {
        public var path: String
        public var offset: Int
        public var length: Int
        public var version: UInt64
    }

    /// Every copy with an intact header, grouped by id, in segment order.
    public static func index(dataDirectory: String, area: String = "redundancy") -> [String: [Copy]] {
        let root = area.hasPrefix("/") ? area : "\(dataDirectory)/\(area)"
        var result: [String: [Copy]] = [:]
        let segments = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
        for name in segments {
            let path = "\(root)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](data)
            var offset = 0
            while offset + 32 <= bytes.count {
                guard bytes[offset..<(offset + 4)].elementsEqual(Array("CRMF".utf8)) else {
                    offset += 1
                    continue
                }
                let idLength = Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8
                let recordLength = (0..<4).reduce(0) { $0 | Int(bytes[offset + 12 + $1]) << ($1 * 8) }
                let version = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + 16 + $1]) << UInt64($1 * 8) }
                let length = 32 + idLength + recordLength
                guard offset + length <= bytes.count else { break }
                let id = String(decoding: bytes[(offset + 32)..<(offset + 32 + idLength)], as: UTF8.self)
                result[id, default: []].append(Copy(path: path, offset: offset, length: length, version: version))
                offset += length
            }
        }
        return result
    }

    /// Overwrites every copy of `id` inside its record with zeros (the header stays readable, the
    /// checksum no longer matches). Returns the original bytes of each copy, to put back later.
    @discardableResult
    public static func destroy(_ id: String, dataDirectory: String) throws -> [(Copy, Data)] {
        var saved: [(Copy, Data)] = []
        for copy in self.index(dataDirectory: dataDirectory)[id] ?? [] {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy.path))
            try handle.seek(toOffset: UInt64(copy.offset))
            let original = try handle.read(upToCount: copy.length) ?? Data()
            let recordStart = 32 + id.utf8.count
            try handle.seek(toOffset: UInt64(copy.offset + recordStart))
            try handle.write(contentsOf: Data(repeating: 0, count: copy.length - recordStart))
            try handle.close()
            saved.append((copy, original))
        }
        return saved
    }

    /// Puts back bytes saved by `destroy`.
    public static func restore(_ saved: [(Copy, Data)]) throws {
        for (copy, original) in saved {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy.path))
            try handle.seek(toOffset: UInt64(copy.offset))
            try handle.write(contentsOf: original)
            try handle.close()
        }
    }
}
