// libFuzzer target: the JSON parser (Sources/CarmaJSON), built by scripts/fuzz.sh.
//
// Any input may be rejected, but none may crash, hang or grow memory without bound; what is accepted
// must print and parse back to an equal value, and every key of every object must be found again
// (the object's key index and its member list must agree).

import CarmaJSON

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let value = try? JSONParser.parse(bytes, maxDepth: 64, maxValues: 100_000) else { return 0 }
    let printed = value.bytes
    guard let again = try? JSONParser.parse(printed, maxDepth: 64) else {
        fatalError("the printed form of an accepted document does not parse: \(String(decoding: printed, as: UTF8.self))")
    }
    guard again == value else { fatalError("a parse-print-parse round trip changed the document") }
    checkLookups(value)
    return 0
}

/// Every member of every object is found by its key, and a key that is absent is not.
func checkLookups(_ value: JSONValue) {
    switch value {
    case .array(let elements):
        elements.forEach(checkLookups)
    case .object(let object):
        for member in object {
            guard object[member.key] == member.value else { fatalError("member '\(member.key)' not found by its key") }
            checkLookups(member.value)
        }
        guard object["\u{0}absent"] == nil || object.keys.contains("\u{0}absent") else { fatalError("an absent key was found") }
    default:
        break
    }
}
