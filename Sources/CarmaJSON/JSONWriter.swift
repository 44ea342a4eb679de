/// Prints JSON compactly as UTF-8, escaping only what RFC 8259 requires.
public struct JSONWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: self.writeRaw("null")
        case .bool(let b): self.writeRaw(b ? "true" : "false")
        case .number(let n): self.writeNumber(n)
        case .integer(let i): self.writeRaw(String(i))
        case .string(let s): self.writeString(s)
        case .array(let elements):
            self.bytes.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { self.bytes.append(UInt8(ascii: ",")) }
                self.write(element)
            }
            self.bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            self.bytes.append(UInt8(ascii: "{"))
            for (i, member) in object.members.enumerated() {
                if i > 0 { self.bytes.append(UInt8(ascii: ",")) }
                self.writeString(member.key)
                self.bytes.append(UInt8(ascii: ":"))
                self.write(member.value)
            }
            self.bytes.append(UInt8(ascii: "}"))
        }
    }

    public mutating func writeRaw(_ text: String) {
        self.bytes.append(contentsOf: text.utf8)
    }

    /// Prints an integral double below 2^53 in magnitude as an integer (`7`, never `7.0`), others in
    /// Swift's shortest round-trip form (which reads back as the same double).
    public mutating func writeNumber(_ n: Double) {
        if n.rounded() == n, abs(n) < JSONValue.exactDoubleLimit {
            self.writeRaw(String(Int64(n)))
        } else if n.isFinite {
            self.writeRaw(n.description)
        } else {
            self.writeRaw("null")
        }
    }

    /// Prints an integer exactly.
    public mutating func writeInteger(_ n: UInt64) {
        self.writeRaw(String(n))
    }

    public mutating func writeString(_ s: String) {
        self.bytes.append(UInt8(ascii: "\""))
        // Most strings need no escaping: copy them whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            self.bytes.append(contentsOf: s.utf8)
            self.bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): self.bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: self.bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: self.bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: self.bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                self.bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: self.bytes.append(byte)
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// The compact UTF-8 serialization.
    public var bytes: [UInt8] {
        var writer = JSONWriter()
        writer.write(self)
        return writer.bytes
    }

    /// The compact serialization as a string.
    public var serialized: String {
        String(decoding: self.bytes, as: UTF8.self)
    }
}
