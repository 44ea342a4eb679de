import Foundation

/// Finds and damages a running server's payload files the way a disk would, without knowing how
/// the store names them: every payload file starts with a header that carries the fragment's id.
public enum PayloadFiles {
    /// The payload files whose header names `id` (primary area by default).
    public static func paths(of id: String, dataDirectory: String, area: String = "payloads") -> [String] {
        let root = area.hasPrefix("/") ? area : "\(dataDirectory)/\(area)"
        return index(root: root)[id] ?? []
    }

    /// Every payload file under `root`, grouped by the id in its header.
    public static func index(root: String) -> [String: [String]] {
        var result: [String: [String]] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [:] }
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".frag") || name.hasSuffix(".recon") else { continue }
            let path = "\(root)/\(name)"
            guard let handle = FileHandle(forReadingAtPath: path) else { continue }
            let head = handle.readData(ofLength: 32 + 200)
            try? handle.close()
            guard head.count >= 32 else { continue }
            let bytes = [UInt8](head)
            let length = Int(bytes[8]) | Int(bytes[9]) << 8
            guard bytes.count >= 32 + length else { continue }
            let id = String(decoding: bytes[32..<(32 + length)], as: UTF8.self)
            result[id, default: []].append(path)
        }
        return result
    }

    /// Flips one byte near the end of the file (inside the record).
    public static func flipByte(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 3] ^= 0x20
        try data.write(to: URL(fileURLWithPath: path))
    }

    public static func delete(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path)
    }
}
