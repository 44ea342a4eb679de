// libFuzzer target: the segment log's record decoder (Sources/FragmentStore/Internals/LogRecord.swift),
// built by scripts/fuzz.sh. Everything it reads comes from disk and is not trusted.
//
// Any input may be rejected, but none may crash or read out of bounds, at any offset; a record that
// decodes must encode back to exactly the bytes it was decoded from, and one flipped bit anywhere in
// it must make it fail.

@testable import SegmentRecords

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegmentRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A scan tries every offset after damage: none may crash.
    for offset in [0, 1, size / 2, max(0, size - 40)] where offset <= size {
        _ = bytes.withUnsafeBytes { LogRecord.header($0, at: offset) }
    }
    guard case .success(let (header, body)) = LogRecord.decode(bytes) else { return 0 }
    let encoded = LogRecord.encode(
        kind: header.kind, id: header.id, version: header.version, sequence: header.sequence, body: body, bodyChecksum: header.bodyChecksum)
    guard encoded == Array(bytes.prefix(header.totalLength)) else { fatalError("a decoded record does not encode back to its bytes") }
    var flipped = encoded
    flipped[Int(header.version % UInt64(flipped.count))] ^= 0x01
    if case .success = LogRecord.decode(flipped) { fatalError("a flipped bit went unnoticed") }
    return 0
}
