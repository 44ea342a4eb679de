/// A small, fixed entropy code for short English text and JSON metadata, so that a short note fits
/// in its sketch at about 60% of its UTF-8 size (5.0 bits a byte on English prose, 5.5 on metadata
/// objects, measured when the table was made).
///
/// The code is a canonical Huffman code over bytes whose code lengths are fixed in `codeLengths`
/// (every byte value has a code, so any UTF-8 text can be coded). The table was computed once from
/// byte frequencies (runs of white space folded, digits and capitals raised) and limited to 15 bits. It must never
/// change: stored sketches are coded with it. Decoding treats its input as untrusted: it stops at
/// the expected length or returns nil.
///
/// The prose was software licences and this project's documentation; the metadata, the man-page
/// corpus's metadata objects as records write them (weighted at half the prose). The agent-memory
/// evaluation set was kept out of it, so that the sizes measured on it are fair.
public enum CompactText {
    /// Code length in bits of each byte value.
    static let codeLengths: [UInt8] = [15,15,15,15,15,15,15,15,15,15,7,15,14,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,3,15,4,12,14,13,14,11,9,9,10,14,6,8,7,6,8,7,8,8,8,8,8,8,8,8,6,11,13,13,13,14,14,8,10,8,9,7,9,9,10,8,10,10,8,9,8,8,8,10,8,8,8,9,10,10,10,10,10,13,14,13,15,9,8,4,7,5,6,4,7,6,5,5,11,8,6,6,5,4,6,10,5,4,4,6,8,7,9,7,8,8,10,8,14,15,13,15,14,15,15,15,14,15,14,14,15,15,15,15,15,15,15,15,14,14,13,15,14,14,15,15,15,15,14,15,15,15,15,15,15,15,14,14,14,14,15,15,15,15,15,15,15,15,15,15,15,15,15,14,15,14,15,15,15,15,14,15,15,15,15,15,14,14,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,12,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15]

    static let maxLength = 15

    /// Codes (right-aligned) by byte value, and the decoding tables of a canonical code.
    private static let tables: (codes: [UInt16], firstCode: [Int], firstIndex: [Int], counts: [Int], symbols: [UInt8]) = {
        let symbols = (0..<256).sorted { (codeLengths[$0], $0) < (codeLengths[$1], $1) }.map(UInt8.init)
        var counts = [Int](repeating: 0, count: maxLength + 1)
        for length in codeLengths { counts[Int(length)] += 1 }
        var codes = [UInt16](repeating: 0, count: 256)
        var firstCode = [Int](repeating: 0, count: maxLength + 1)
        var firstIndex = [Int](repeating: 0, count: maxLength + 1)
        var code = 0
        var index = 0
        for length in 1...maxLength {
            firstCode[length] = code
            firstIndex[length] = index
            for symbol in symbols[index..<(index + counts[length])] {
                codes[Int(symbol)] = UInt16(code)
                code += 1
            }
            index += counts[length]
            code <<= 1
        }
        return (codes, firstCode, firstIndex, counts, symbols)
    }()

    /// The bytes coded, most significant bit first, the last byte padded with zeros.
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 5 / 8 + 1)
        var buffer: UInt32 = 0
        var filled = 0
        for byte in bytes {
            let length = Int(codeLengths[Int(byte)])
            buffer = buffer << UInt32(length) | UInt32(tables.codes[Int(byte)])
            filled += length
            while filled >= 8 {
                filled -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(filled)))
            }
            buffer &= (1 << UInt32(filled)) - 1
        }
        if filled > 0 { output.append(UInt8(truncatingIfNeeded: buffer << UInt32(8 - filled))) }
        return output
    }

    /// Decodes exactly `count` bytes; nil when the input runs out or holds no valid code.
    public static func decode(_ coded: some Collection<UInt8>, count: Int) -> [UInt8]? {
        guard count >= 0, count <= coded.count * 8 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(count)
        var iterator = coded.makeIterator()
        var current: UInt8 = 0
        var bitsLeft = 0
        while output.count < count {
            var code = 0
            var length = 0
            while true {
                if bitsLeft == 0 {
                    guard let next = iterator.next() else { return nil }
                    current = next
                    bitsLeft = 8
                }
                bitsLeft -= 1
                code = code << 1 | Int((current >> UInt8(bitsLeft)) & 1)
                length += 1
                let offset = code - tables.firstCode[length]
                if offset >= 0, offset < tables.counts[length] {
                    output.append(tables.symbols[tables.firstIndex[length] + offset])
                    break
                }
                if length == maxLength { return nil }
            }
        }
        return output
    }
}

/// CRC32C (Castagnoli) in software, for the few bytes a sketch checks: this module has no C
/// dependency, and the store's own CRC32C (ISA-L) gives the same values.
public enum SoftwareCRC32C {
    private static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
