import FragmentCore
import Testing

@testable import FragmentStore

@Suite("Checksums, hashes and file format")
struct PrimitivesTests {
    @Test("CRC32C matches the standard check value")
    func crc32c() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.format(0xE306_9283) == "crc32c:e3069283")
        #expect(CRC32C.format(0x1) == "crc32c:00000001")
    }

    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hex(SHA256.digest(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(SHA256.digest([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(SHA256.digest(long)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("a log record decodes to what was encoded, at any offset")
    func recordRoundTrip() throws {
        let body = Array("{\"content\":\"hello\"}".utf8)
        var bytes = Array("junk".utf8)
        LogRecord.encode(into: &bytes, kind: .put, id: "x", version: 7, sequence: 42, body: body, bodyChecksum: CRC32C.checksum(body))
        guard case .success(let (header, decoded)) = LogRecord.decode(bytes, at: 4) else {
            Issue.record("did not decode")
            return
        }
        #expect(header == LogRecord.Header(kind: .put, id: "x", version: 7, sequence: 42, bodyLength: body.count, bodyChecksum: CRC32C.checksum(body)))
        #expect(decoded == body)
        #expect(header.totalLength == bytes.count - 4)
    }

    @Test("any flipped byte in a log record is detected, and a cut record is truncated")
    func recordBitFlips() throws {
        let body = Array("some record body".utf8)
        let bytes = LogRecord.encode(kind: .put, id: "abc", version: 3, sequence: 1, body: body, bodyChecksum: CRC32C.checksum(body))
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0x10
            if case .success = LogRecord.decode(damaged) {
                Issue.record("flip at \(index) went unnoticed")
            }
        }
        guard case .failure(.truncated) = LogRecord.decode(Array(bytes.dropLast())) else {
            Issue.record("a cut record was not reported as truncated")
            return
        }
    }

    @Test("a damaged body still yields its header, so a scan knows whose record it was")
    func damagedBodyKeepsHeader() throws {
        let body = Array("0123456789".utf8)
        var bytes = LogRecord.encode(kind: .reconstruction, id: "abc", version: 9, sequence: 5, body: body, bodyChecksum: CRC32C.checksum(body))
        bytes[bytes.count - 1] ^= 0xFF
        guard case .failure(.bodyChecksum(let header)) = LogRecord.decode(bytes) else {
            Issue.record("expected a body checksum failure with its header")
            return
        }
        #expect(header.id == "abc")
        #expect(header.version == 9)
        #expect(header.kind == .reconstruction)
    }

    @Test("a record with reserved bytes set is refused, even with a matching header checksum (a fuzzing finding)")
    func reservedBytesRefused() throws {
        // The input the fuzzer found, cut to its first record: reserved bytes 10-11 are 0x1000, the
        // header checksum matches, and it used to decode into a record that encoded differently.
        let finding: [UInt8] = [
            0x43, 0x52, 0x4d, 0x4c, 0x01, 0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
            0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x5a, 0xd0, 0x8e, 0x40, 0x6e, 0x33,
        ]
        guard case .failure(.unsupportedFormat) = LogRecord.decode(finding) else {
            Issue.record("a record with reserved bytes set was accepted")
            return
        }
        // And every record this code writes has them zero, so it still decodes.
        let record = LogRecord.encode(kind: .delete, id: "n3", version: 4, sequence: 7, body: [], bodyChecksum: 0)
        guard case .success = LogRecord.decode(record) else {
            Issue.record("a fresh record does not decode")
            return
        }
    }

    @Test("headers with impossible lengths are rejected before any allocation")
    func hostileHeaders() throws {
        var bytes = LogRecord.encode(kind: .delete, id: "a", version: 1, sequence: 1, body: [], bodyChecksum: 0)
        // An id length of 65535: reported as damage, not read past the end.
        bytes[8] = 0xFF
        bytes[9] = 0xFF
        if case .success = LogRecord.decode(bytes) { Issue.record("accepted a 65535-byte id") }
        guard case .failure(.truncated) = LogRecord.decode([UInt8](repeating: 0xFF, count: 3)) else {
            Issue.record("three bytes decoded")
            return
        }
    }

    @Test("ids follow the documented alphabet")
    func ids() {
        for id in ["a", "A-Z_0.9~x", String(repeating: "a", count: 200)] {
            #expect(FragmentID.isValid(id), "\(id)")
        }
        for id in ["", ".", "..", ".hidden", "a/b", "a b", "é", "a\u{0}", String(repeating: "a", count: 201), "a%2F"] {
            #expect(!FragmentID.isValid(id), "\(id)")
        }
    }

    @Test("timestamps print as RFC 3339 and parse back")
    func timestamps() {
        let stamp = Timestamp(milliseconds: 1_796_083_200_123)
        #expect(stamp.rfc3339 == "2026-12-01T00:00:00.123Z")
        #expect(Timestamp(rfc3339: stamp.rfc3339) == stamp)
        #expect(Timestamp(rfc3339: "2024-02-29T12:34:56.789Z")?.rfc3339 == "2024-02-29T12:34:56.789Z")
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }
}

@Suite("Payload cache")
struct PayloadCacheTests {
    @Test("the cache evicts least recently used bodies to stay within its byte budget")
    func eviction() {
        let slot = 100 + PayloadCache.slotOverhead
        var cache = PayloadCache(capacityBytes: slot * 3)
        let a = cache.insert(id: "a", version: 1, body: [UInt8](repeating: 1, count: 100), recordLength: 100).slot!
        _ = cache.insert(id: "b", version: 1, body: [UInt8](repeating: 2, count: 100), recordLength: 100)
        _ = cache.insert(id: "c", version: 1, body: [UInt8](repeating: 3, count: 100), recordLength: 100)
        cache.touch(a)
        let (_, evicted) = cache.insert(id: "d", version: 1, body: [UInt8](repeating: 4, count: 100), recordLength: 100)
        #expect(evicted.map(\.id) == ["b"])
        #expect(cache.bytes <= cache.capacityBytes)
        #expect(cache.count == 3)
        #expect(cache.slot(a).body.first == 1)
    }

    @Test("a body larger than the whole cache is not cached")
    func oversized() {
        var cache = PayloadCache(capacityBytes: 50)
        #expect(cache.insert(id: "a", version: 1, body: [UInt8](repeating: 0, count: 100), recordLength: 100).slot == nil)
        #expect(cache.count == 0)
    }
}

@Suite("Timestamps before 1970 (issue 28, found by the import fuzz target)")
struct EarlyTimestampTests {
    @Test("a time before 1970 prints with milliseconds from 0 to 999 and reads back as itself, in a record too")
    func earlyTimesRoundTrip() throws {
        for text in ["1013-01-02T03:04:05.006Z", "1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"] {
            let time = try #require(Timestamp(rfc3339: text))
            #expect(time.rfc3339 == text)
            let record = FragmentRecord(id: "old", version: 1, input: FragmentInput(content: "x"), createdAt: time, updatedAt: time)
            #expect(FragmentRecord.decode(record.encode())?.createdAt == time, "\(text)")
        }
        #expect(Timestamp(milliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }
}
