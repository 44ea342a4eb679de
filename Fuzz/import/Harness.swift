// libFuzzer target: the `POST /import` body decoder (CarmaService's ImportJSON), issue 28. The input
// is an NDJSON body as a client sends it. Nothing may crash; a body that decodes must give one
// fragment per line it names, on increasing lines, each with a valid id, a version from 1 to below
// 2^62 that is exactly the integer the line wrote, and, for an exact or reconstructed fragment, a
// record that encodes and decodes back to the same fields. A refused body is a 400 problem that
// names a line (409 for the same id and version twice with other content).

import CarmaJSON
import FragmentStore
import MicroHTTP
@testable import CarmaService

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImport(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    let decoded: (fragments: [ImportedFragment], lines: [Int])
    do {
        decoded = try ImportJSON.fragments(from: body)
    } catch {
        let response = error.response
        guard response.status == 400 || response.status == 409, case .object(let problem)? = try? JSONParser.parse(response.body),
            problem["line"]?.exactInteger != nil
        else {
            fatalError("a refused import must be a 400 (or, for one version with two contents, 409) problem naming a line: \(response.status)")
        }
        return 0
    }
    guard decoded.fragments.count == decoded.lines.count, !decoded.fragments.isEmpty else { fatalError("one line per fragment") }
    guard zip(decoded.lines, decoded.lines.dropFirst()).allSatisfy({ $0 < $1 }) else { fatalError("lines out of order: \(decoded.lines)") }
    let lines = body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    for (fragment, line) in zip(decoded.fragments, decoded.lines) {
        guard FragmentID.validate(fragment.id) == nil else { fatalError("invalid id accepted: \(fragment.id)") }
        guard fragment.version >= 1, fragment.version < FragmentStore.versionCeiling else { fatalError("version out of range: \(fragment.version)") }
        // The version is exactly what the line wrote.
        guard line <= lines.count, let object = try? JSONParser.parse(Array(lines[line - 1]).filter { $0 != UInt8(ascii: "\r") }),
            object["version"]?.exactInteger == Int64(fragment.version)
        else { fatalError("line \(line): the version decoded is not the one written") }
        if let record = fragment.record {
            guard let back = FragmentRecord.decode(record.encode()), back.id == fragment.id, back.version == fragment.version,
                back.content == record.content, back.expiresAt == record.expiresAt
            else { fatalError("line \(line): the record does not survive encode/decode") }
        }
    }
    return 0
}
