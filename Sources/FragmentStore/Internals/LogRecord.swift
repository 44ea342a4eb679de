import FragmentCore

/// One self-describing record of a segment log: a 40-byte header, the id, then the body.
///
/// ```
///  0  magic "CRML"                         4
///  4  format version (1)                   u8
///  5  kind                                 u8   1 put, 2 delete, 3 reconstruction
///  6  reserved (0)                         u16
///  8  id length                            u16 LE
/// 10  reserved (0)                         u16
/// 12  body length                          u32 LE
/// 16  version                              u64 LE
/// 24  sequence number (store-wide)         u64 LE
/// 32  CRC32C of the body                   u32 LE
/// 36  CRC32C of bytes 0..<36 and the id    u32 LE
/// 40  id, then body
/// ```
/// A `put` body is the fragment's record JSON (content, links, tags, metadata, embedding, times), so
/// the registry can be rebuilt from the log alone; a `delete` (tombstone) has an empty body; a
/// `reconstruction` body is an approximate record rebuilt from context, kept only in the primary log.
/// The header checksum lets a scan trust the id and version of a record whose body is damaged.
enum LogRecord {
    static let magic: [UInt8] = Array("CRML".utf8)
    static let formatVersion: UInt8 = 1
    static let headerSize = 40
    /// Keys (namespace, `/`, id) are at most 401 bytes; anything longer in a header is damage.
    static let maxIDLength = FragmentKey.maxLength
    /// Bodies are bounded by the store's content limit; a header claiming more is damage.
    static let maxBodyLength = 64 << 20

    enum Kind: UInt8, Sendable {
        case put = 1
        case delete = 2
        case reconstruction = 3
    }

    /// A header that verified, with the facts a reader or a scan needs.
    struct Header: Sendable, Equatable {
        var kind: Kind
        var id: String
        var version: UInt64
        var sequence: UInt64
        var bodyLength: Int
        var bodyChecksum: UInt32

        /// Bytes the whole record takes in its segment.
        var totalLength: Int { LogRecord.headerSize + self.id.utf8.count + self.bodyLength }
    }

    enum DecodeError: Error, Equatable {
        case truncated
        case badMagic
        case badHeaderChecksum
        case unsupportedFormat
        /// The header is intact (its own checksum holds) but the body is not.
        case bodyChecksum(Header)
    }

    /// Bytes one record takes: header, id and body.
    static func length(id: String, bodyLength: Int) -> Int {
        headerSize + id.utf8.count + bodyLength
    }

    /// Appends an encoded record to `bytes`.
    static func encode(
        into bytes: inout [UInt8], kind: Kind, id: String, version: UInt64, sequence: UInt64, body: [UInt8], bodyChecksum: UInt32
    ) {
        let start = bytes.count
        bytes.append(contentsOf: magic)
        bytes.append(formatVersion)
        bytes.append(kind.rawValue)
        put(&bytes, 0, width: 2)
        let idBytes = id.utf8
        put(&bytes, UInt64(idBytes.count), width: 2)
        put(&bytes, 0, width: 2)
        put(&bytes, UInt64(body.count), width: 4)
        put(&bytes, version, width: 8)
        put(&bytes, sequence, width: 8)
        put(&bytes, UInt64(bodyChecksum), width: 4)
        // The header checksum (bytes 36..<40) covers the fixed fields and the id that follows it.
        put(&bytes, 0, width: 4)
        bytes.append(contentsOf: idBytes)
        let headerChecksum = bytes.withUnsafeBytes { buffer in
            CRC32C.checksum(
                UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 36)]),
                then: UnsafeRawBufferPointer(rebasing: buffer[(start + headerSize)...]))
        }
        for shift in 0..<4 {
            bytes[start + 36 + shift] = UInt8(truncatingIfNeeded: headerChecksum >> UInt32(shift * 8))
        }
        bytes.append(contentsOf: body)
    }

    static func encode(kind: Kind, id: String, version: UInt64, sequence: UInt64, body: [UInt8], bodyChecksum: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length(id: id, bodyLength: body.count))
        encode(into: &bytes, kind: kind, id: id, version: version, sequence: sequence, body: body, bodyChecksum: bodyChecksum)
        return bytes
    }

    /// Reads and verifies the header at `offset` of `bytes` (nothing of the body). Every length is
    /// bounded before use: these bytes come from disk and are not trusted.
    static func header(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Result<Header, DecodeError> {
        guard offset >= 0, bytes.count - offset >= headerSize else { return .failure(.truncated) }
        let base = bytes.baseAddress! + offset
        guard base.load(as: UInt8.self) == magic[0], (base + 1).load(as: UInt8.self) == magic[1],
            (base + 2).load(as: UInt8.self) == magic[2], (base + 3).load(as: UInt8.self) == magic[3]
        else { return .failure(.badMagic) }
        let idLength = Int(read(base, 8, width: 2))
        guard idLength >= 1, idLength <= maxIDLength else { return .failure(.badHeaderChecksum) }
        guard bytes.count - offset >= headerSize + idLength else { return .failure(.truncated) }
        let computed = CRC32C.checksum(
            UnsafeRawBufferPointer(start: base, count: 36), then: UnsafeRawBufferPointer(start: base + headerSize, count: idLength))
        guard UInt32(read(base, 36, width: 4)) == computed else { return .failure(.badHeaderChecksum) }
        // Reserved fields are zero in this format version: anything else is a format this code does
        // not know (found by fuzzing: such a record decoded, and did not encode back to its bytes).
        guard base.load(fromByteOffset: 4, as: UInt8.self) == formatVersion,
            let kind = Kind(rawValue: base.load(fromByteOffset: 5, as: UInt8.self)),
            read(base, 6, width: 2) == 0, read(base, 10, width: 2) == 0
        else { return .failure(.unsupportedFormat) }
        let bodyLength = Int(read(base, 12, width: 4))
        guard bodyLength <= maxBodyLength else { return .failure(.badHeaderChecksum) }
        let idBytes = UnsafeRawBufferPointer(start: base + headerSize, count: idLength)
        guard let id = String(validating: idBytes, as: UTF8.self) else { return .failure(.badHeaderChecksum) }
        return .success(
            Header(
                kind: kind, id: id, version: read(base, 16, width: 8), sequence: read(base, 24, width: 8),
                bodyLength: bodyLength, bodyChecksum: UInt32(read(base, 32, width: 4))))
    }

    /// Decodes and verifies the record at `offset`: header, then body against its checksum.
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Result<(Header, [UInt8]), DecodeError> {
        switch header(bytes, at: offset) {
        case .failure(let error):
            return .failure(error)
        case .success(let header):
            let start = offset + headerSize + header.id.utf8.count
            guard bytes.count - start >= header.bodyLength else { return .failure(.truncated) }
            let body = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + header.bodyLength)])
            guard CRC32C.checksum(body) == header.bodyChecksum else { return .failure(.bodyChecksum(header)) }
            return .success((header, Array(body)))
        }
    }

    static func decode(_ bytes: [UInt8], at offset: Int = 0) -> Result<(Header, [UInt8]), DecodeError> {
        bytes.withUnsafeBytes { decode($0, at: offset) }
    }

    private static func put(_ bytes: inout [UInt8], _ value: UInt64, width: Int) {
        for shift in 0..<width {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift * 8)))
        }
    }

    private static func read(_ base: UnsafeRawPointer, _ offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for shift in 0..<width {
            value |= UInt64(base.load(fromByteOffset: offset + shift, as: UInt8.self)) << UInt64(shift * 8)
        }
        return value
    }
}

extension StoredRow {
    /// The kind of record this row's status serves from.
    var servedKind: LogRecord.Kind { self.status == .reconstructed ? .reconstruction : .put }
}
