import CISAL

/// CRC32C (Castagnoli), the checksum of every payload, computed by ISA-L's `crc32_iscsi`, which uses
/// the SSE4.2 CRC instruction where the CPU has it.
public enum CRC32C {
    /// The standard CRC32C of `bytes` (check value: "123456789" → 0xE3069283).
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
    }

    /// The CRC32C of two buffers one after the other, without copying them together.
    public static func checksum(_ first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer) -> UInt32 {
        update(update(0xFFFF_FFFF, first), second) ^ 0xFFFF_FFFF
    }

    private static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return start }
        var crc = start
        var offset = 0
        // crc32_iscsi takes an int length: feed large buffers in pieces.
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            crc = crc32_iscsi(UnsafeMutablePointer(mutating: base.advanced(by: offset).assumingMemoryBound(to: UInt8.self)), Int32(count), crc)
            offset += count
        }
        return crc
    }

    public static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The checksum as clients see it: `crc32c:` and eight lowercase hex digits.
    public static func format(_ crc: UInt32) -> String {
        let hex = String(crc, radix: 16)
        return "crc32c:" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// Byte containers whose bytes can be read in place.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
