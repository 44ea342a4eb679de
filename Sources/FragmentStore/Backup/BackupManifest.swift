import FragmentCore
import CarmaJSON

/// What a backup directory holds, with a checksum per file and a count of records per segment:
/// written last by a backup, read by `verify` and by the next (incremental) backup.
///
/// On disk: one line of JSON, then `crc32c:<8 hex>` of that line, so that a damaged manifest is
/// found before anything in it is trusted. The manifest is read as untrusted input: every path must
/// be one of the layout's own names, every number within bounds.
struct BackupManifest: Equatable {
    static let format = "carma-backup-1"
    /// Far more segments than a store holds (64 MiB each: 64 TiB); more is damage, not a backup.
    static let maxSegments = 1 << 20
    static let maxBytes = 256 << 20

    struct Segment: Equatable {
        /// Relative to the backup directory: `data/segments/<8 hex>.seg` or `redundancy/segments/…`.
        var path: String
        var bytes: Int
        var checksum: UInt32
        /// Records that verify, and damaged stretches (carried over from the source, as it was).
        var records: Int
        var damaged: Int
        /// The highest record sequence number in the copy (0 for none).
        var maxSequence: UInt64
    }

    struct Registry: Equatable {
        var path: String
        var bytes: Int
        var checksum: UInt32
        var schemaVersion: Int
        var fragments: Int
        /// How far the snapshot had applied the logs (`segment:offset`); start-up replays the rest.
        var appliedPrimary: String?
        var appliedRedundancy: String?
    }

    var startedAt: Timestamp
    var finishedAt: Timestamp
    var dataDirectory: String
    var redundancyDirectory: String
    var registry: Registry?
    var segments: [Segment]

    static let registryPath = "data/registry.sqlite3"
    static let primaryRoot = "data/segments"
    static let redundancyRoot = "redundancy/segments"

    /// Whether `path` names a segment of the backup layout (nothing else may appear in a manifest).
    static func isSegmentPath(_ path: String) -> Bool {
        for root in [primaryRoot, redundancyRoot] where path.hasPrefix(root + "/") {
            let name = path.dropFirst(root.count + 1)
            guard name.utf8.count == 12, name.hasSuffix(".seg"), let number = UInt32(name.prefix(8), radix: 16) else { return false }
            return number > 0 && name.prefix(8).utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        return false
    }

    func encode() -> [UInt8] {
        var object: JSONObject = [
            "format": .string(Self.format),
            "started_at": .string(self.startedAt.rfc3339),
            "finished_at": .string(self.finishedAt.rfc3339),
            "source": ["data_dir": .string(self.dataDirectory), "redundancy_dir": .string(self.redundancyDirectory)],
        ]
        if let registry = self.registry {
            object["registry"] = [
                "path": .string(registry.path), "bytes": .number(Double(registry.bytes)), "crc32c": .string(CRC32C.format(registry.checksum)),
                "schema_version": .number(Double(registry.schemaVersion)), "fragments": .number(Double(registry.fragments)),
                "applied_primary": registry.appliedPrimary.map(JSONValue.string) ?? .null,
                "applied_redundancy": registry.appliedRedundancy.map(JSONValue.string) ?? .null,
            ]
        } else {
            object["registry"] = .null
        }
        object["segments"] = .array(
            self.segments.map { segment in
                [
                    "path": .string(segment.path), "bytes": .number(Double(segment.bytes)), "crc32c": .string(CRC32C.format(segment.checksum)),
                    "records": .number(Double(segment.records)), "damaged": .number(Double(segment.damaged)),
                    "max_sequence": .number(Double(segment.maxSequence)),
                ]
            })
        var bytes = JSONValue.object(object).bytes
        let checksum = CRC32C.checksum(bytes)
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: "\(CRC32C.format(checksum))\n".utf8)
        return bytes
    }

    /// Parses and checks a manifest; the failure says what is wrong, for the operator.
    static func decode(_ bytes: [UInt8]) -> Result<BackupManifest, ManifestProblem> {
        guard bytes.count <= maxBytes, let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return .failure(ManifestProblem("not a backup manifest (no checksum line)"))
        }
        let body = Array(bytes[..<newline])
        let trailer = String(decoding: bytes[(newline + 1)...], as: UTF8.self)
        guard trailer == CRC32C.format(CRC32C.checksum(body)) + "\n" else {
            return .failure(ManifestProblem("the manifest's checksum does not match its contents (the manifest is damaged)"))
        }
        guard let value = try? JSONParser.parse(body, maxDepth: 8), let object = value.objectValue, object["format"] == .string(format),
            let started = object["started_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
            let finished = object["finished_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
            let dataDirectory = object["source"]?["data_dir"]?.stringValue,
            let redundancyDirectory = object["source"]?["redundancy_dir"]?.stringValue,
            let segmentValues = object["segments"]?.arrayValue, segmentValues.count <= maxSegments
        else {
            return .failure(ManifestProblem("the manifest is not in the \(format) format"))
        }
        var registry: Registry?
        if let entry = object["registry"], !entry.isNull {
            guard entry["path"]?.stringValue == registryPath, let bytes = count(entry["bytes"]), let checksum = crc(entry["crc32c"]),
                let schema = count(entry["schema_version"]), let fragments = count(entry["fragments"])
            else {
                return .failure(ManifestProblem("the manifest's registry entry is malformed"))
            }
            registry = Registry(
                path: registryPath, bytes: bytes, checksum: checksum, schemaVersion: schema, fragments: fragments,
                appliedPrimary: entry["applied_primary"]?.stringValue, appliedRedundancy: entry["applied_redundancy"]?.stringValue)
        }
        var segments: [Segment] = []
        var seen = Set<String>()
        for entry in segmentValues {
            guard let path = entry["path"]?.stringValue, isSegmentPath(path), seen.insert(path).inserted, let bytes = count(entry["bytes"]),
                let checksum = crc(entry["crc32c"]), let records = count(entry["records"]), let damaged = count(entry["damaged"]),
                let maxSequence = count(entry["max_sequence"])
            else {
                return .failure(ManifestProblem("the manifest has a malformed segment entry"))
            }
            segments.append(
                Segment(path: path, bytes: bytes, checksum: checksum, records: records, damaged: damaged, maxSequence: UInt64(maxSequence)))
        }
        return .success(
            BackupManifest(
                startedAt: started, finishedAt: finished, dataDirectory: dataDirectory, redundancyDirectory: redundancyDirectory,
                registry: registry, segments: segments))
    }

    private static func count(_ value: JSONValue?) -> Int? {
        guard let number = value?.doubleValue, number >= 0, number <= Double(1 << 52), number.rounded() == number else { return nil }
        return Int(number)
    }

    private static func crc(_ value: JSONValue?) -> UInt32? {
        guard let text = value?.stringValue, text.hasPrefix("crc32c:"), text.utf8.count == 15 else { return nil }
        return UInt32(text.dropFirst(7), radix: 16)
    }
}

/// What is wrong with a manifest.
struct ManifestProblem: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
