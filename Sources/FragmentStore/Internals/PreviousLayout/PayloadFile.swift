import FragmentCore

/// The self-describing payload file: a 32-byte header, the id, then the record.
///
/// ```
///  0  magic "CRMF"            4
///  4  format version (1)      u16 LE
///  6  kind                    u8   0 original, 1 reconstruction
///  7  reserved                u8
///  8  id length               u16 LE
/// 10  reserved                u16
/// 12  record length           u32 LE
/// 16  version                 u64 LE
/// 24  CRC32C of the record    u32 LE
/// 28  CRC32C of bytes 0..<28 and the id   u32 LE
/// 32  id, then record
/// ```
/// The header checksum lets a scan trust the id and version of a file whose record is damaged.
enum PayloadFile {
    static let magic: [UInt8] = Array("CRMF".utf8)
    static let formatVersion: UInt16 = 1
    static let headerSize = 32

    enum Kind: UInt8, Sendable {
        case original = 0
        case reconstruction = 1
    }

    struct Header: Sendable, Equatable {
        var kind: Kind
        var id: String
        var version: UInt64
        var recordLength: Int
        var recordChecksum: UInt32
    }

    enum DecodeError: Error, Equatable {
        case truncated
        case badMagic
        case badHeaderChecksum
        case unsupportedFormat
        /// The header is intact (its own checksum holds) but the record is not.
        case recordChecksum(Header)
    }

    static func encode(kind: Kind, id: String, version: UInt64, record: [UInt8], recordChecksum: UInt32) -> [UInt8] {
        let idBytes = Array(id.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + idBytes.count + record.count)
        bytes.append(contentsOf: magic)
        append(&bytes, UInt64(formatVersion), width: 2)
        bytes.append(kind.rawValue)
        bytes.append(0)
        append(&bytes, UInt64(idBytes.count), width: 2)
        append(&bytes, 0, width: 2)
        append(&bytes, UInt64(record.count), width: 4)
        append(&bytes, version, width: 8)
        append(&bytes, UInt64(recordChecksum), width: 4)
        let headerChecksum = CRC32C.checksum(bytes[0..<28] + idBytes)
        append(&bytes, UInt64(headerChecksum), width: 4)
        bytes.append(contentsOf: idBytes)
        bytes.append(contentsOf: record)
        return bytes
    }

    /// The whole file's length from its first 32 bytes (magic checked, lengths bounded), or nil.
    static func totalLength(header: [UInt8]) -> Int? {
        guard header.count >= headerSize, Array(header[0..<4]) == magic else { return nil }
        let idLength = Int(read(header, at: 8, width: 2))
        let recordLength = Int(read(header, at: 12, width: 4))
        guard idLength <= 1024, recordLength <= 1 << 30 else { return nil }
        return headerSize + idLength + recordLength
    }

    /// Reads the header and verifies both checksums; returns the header and the record bytes.
    static func decode(_ bytes: [UInt8]) -> Result<(Header, [UInt8]), DecodeError> {
        guard bytes.count >= headerSize else { return .failure(.truncated) }
        guard Array(bytes[0..<4]) == magic else { return .failure(.badMagic) }
        let idLength = Int(read(bytes, at: 8, width: 2))
        guard bytes.count >= headerSize + idLength else { return .failure(.truncated) }
        let idBytes = bytes[headerSize..<(headerSize + idLength)]
        guard UInt32(read(bytes, at: 28, width: 4)) == CRC32C.checksum(Array(bytes[0..<28]) + idBytes) else {
            return .failure(.badHeaderChecksum)
        }
        guard read(bytes, at: 4, width: 2) == UInt64(formatVersion), let kind = Kind(rawValue: bytes[6]) else {
            return .failure(.unsupportedFormat)
        }
        let recordLength = Int(read(bytes, at: 12, width: 4))
        let start = headerSize + idLength
        let recordChecksum = UInt32(read(bytes, at: 24, width: 4))
        let header = Header(
            kind: kind, id: String(decoding: idBytes, as: UTF8.self), version: read(bytes, at: 16, width: 8),
            recordLength: recordLength, recordChecksum: recordChecksum)
        guard bytes.count == start + recordLength else { return .failure(.recordChecksum(header)) }
        let record = Array(bytes[start...])
        guard CRC32C.checksum(record) == recordChecksum else { return .failure(.recordChecksum(header)) }
        return .success((header, record))
    }

    private static func append(_ bytes: inout [UInt8], _ value: UInt64, width: Int) {
        for shift in 0..<width {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift * 8)))
        }
    }

    private static func read(_ bytes: [UInt8], at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for shift in 0..<width {
            value |= UInt64(bytes[offset + shift]) << UInt64(shift * 8)
        }
        return value
    }
}
