import Foundation

/// Damages a store's files the way a failing disk would: payload files deleted, a byte flipped inside
/// one, redundancy copies overwritten inside their segments. It finds files by the id in their
/// self-describing headers, so it does not depend on how the store names them.
struct DiskDamage {
    let dataDirectory: String
    let redundancyDirectory: String

    /// Primary payload files by fragment id.
    func payloadFiles() -> [String: [String]] {
        var result: [String: [String]] = [:]
        let root = "\(self.dataDirectory)/payloads"
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [:] }
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".frag") else { continue }
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

    func delete(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path)
    }

    /// Flips one bit in the record part of a payload file.
    func flipByte(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count > 40 else { return }
        data[data.count - 5] ^= 0x40
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Overwrites the record of every redundancy copy of the given ids inside the segment files
    /// (headers stay readable; checksums no longer match). Returns how many copies were ruined.
    func destroyRedundancy(of ids: Set<String>) throws -> Int {
        var ruined = 0
        let segments = ((try? FileManager.default.contentsOfDirectory(atPath: self.redundancyDirectory)) ?? []).filter { $0.hasSuffix(".seg") }
        for name in segments {
            let path = "\(self.redundancyDirectory)/\(name)"
            guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else { continue }
            var offset = 0
            var ranges: [Range<Int>] = []
            while offset + 32 <= bytes.count {
                guard bytes[offset..<(offset + 4)].elementsEqual(Array("CRMF".utf8)) else {
                    offset += 1
                    continue
                }
                let idLength = Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8
                let recordLength = (0..<4).reduce(0) { $0 | Int(bytes[offset + 12 + $1]) << ($1 * 8) }
                let end = offset + 32 + idLength + recordLength
                guard end <= bytes.count else { break }
                let id = String(decoding: bytes[(offset + 32)..<(offset + 32 + idLength)], as: UTF8.self)
                if ids.contains(id) {
                    ranges.append((offset + 32 + idLength)..<end)
                    ruined += 1
                }
                offset = end
            }
            guard !ranges.isEmpty else { continue }
            // In place, like a bad sector: the server keeps the segment open.
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            for range in ranges {
                try handle.seek(toOffset: UInt64(range.lowerBound))
                try handle.write(contentsOf: Data(repeating: 0, count: range.count))
            }
            try handle.close()
        }
        return ruined
    }
}
