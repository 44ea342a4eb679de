import CarmaJSON
import CarmaText

/// The sketch tier of recovery, shared by both backends: a short fragment's sketch keeps its text
/// and metadata verbatim, and the registry row keeps everything else its record holds, so the exact
/// record can be written again. It is used only if it matches the kept checksum and length, like the
/// bytes of every other tier.
package enum SketchRecovery {
    /// The exact record of `target` rebuilt from its sketch; nil when the sketch does not hold the
    /// text, fails its own checksum, or the rebuilt record does not match the original's checksum.
    package static func record(_ target: RepairTarget, sketch: Sketch?) -> [UInt8]? {
        // A reconstruction with no kept original (imported as such) has nothing exact to go back to.
        if target.row.status == .reconstructed, target.row.originalChecksum == nil { return nil }
        guard let verbatim = sketch?.verbatim, verbatim.verifies,
            let metadata = (try? JSONParser.parse(verbatim.metadata, maxDepth: 64))?.objectValue
        else { return nil }
        let row = target.row
        let input = FragmentInput(
            content: verbatim.content, links: row.links, tags: row.tags, metadata: metadata, embedding: nil, expiresAt: row.expiresAt)
        let record = FragmentRecord(id: row.id, version: row.version, input: input, createdAt: row.createdAt, updatedAt: row.updatedAt).encode()
        guard record.count == target.exactLength, CRC32C.checksum(record) == target.exactChecksum else { return nil }
        return record
    }
}

extension FragmentRecord {
    /// A metadata object exactly as a record writes it.
    package static func metadataBytes(_ metadata: JSONObject) -> [UInt8] {
        var writer = JSONWriter(capacity: 64)
        writer.write(.object(metadata))
        return writer.bytes
    }
}
