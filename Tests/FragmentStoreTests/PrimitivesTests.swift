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

    @Test("a payload file decodes to what was encoded")
    func payloadRoundTrip() throws {
        let record = Array(#"{"id":"x"}"#.utf8)
        let bytes = PayloadFile.encode(kind: .original, id: "x", version: 7, record: record, recordChecksum: CRC32C.checksum(record))
        guard case .success(let (header, decoded)) = PayloadFile.decode(bytes) else {
            Issue.record("did not decode")
            return
        }
        #expect(header.id == "x")
        #expect(header.version == 7)
        #expect(decoded == record)
    }

    @Test("any flipped byte in a payload file is detected")
    func payloadCorruption() {
        let record = Array(#"{"id":"abc","content":"hello"}"#.utf8)
        let bytes = PayloadFile.encode(kind: .original, id: "abc", version: 3, record: record, recordChecksum: CRC32C.checksum(record))
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0x01
            if case .success = PayloadFile.decode(damaged) {
                Issue.record("flip at \(index) went unnoticed")
            }
        }
        if case .success = PayloadFile.decode(Array(bytes.dropLast())) {
            Issue.record("truncation went unnoticed")
        }
    }

    @Test("a damaged record still yields its header, so a scan knows whose it was")
    func headerSurvivesRecordDamage() {
        let record = Array(#"{"id":"abc"}"#.utf8)
        var bytes = PayloadFile.encode(kind: .original, id: "abc", version: 9, record: record, recordChecksum: CRC32C.checksum(record))
        bytes[bytes.count - 2] ^= 0xFF
        guard case .failure(.recordChecksum(let header)) = PayloadFile.decode(bytes) else {
            Issue.record("expected a record checksum failure")
            return
        }
        #expect(header.id == "abc")
        #expect(header.version == 9)
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
