import CarmaJSON
import CarmaText
import Logging

/// Rebuilds the registry's fragment rows from the payload and redundancy files, for when the registry
/// was lost. Histories, the queue and cycle reports cannot be recovered; every fragment found gets a
/// `reindexed` event.
struct Reindexer {
    let registry: Registry
    let primary: PayloadDirectory
    let redundancy: RedundancyLog
    let logger: Logger

    struct Summary {
        var files = 0
        var fragments = 0
        var ok = 0
        var blank = 0
        var reconstructed = 0
        var unreadable = 0

        var metadata: Logger.Metadata {
            ["reindex.files": "\(files)", "reindex.fragments": "\(fragments)", "reindex.ok": "\(ok)", "reindex.blank": "\(blank)",
             "reindex.reconstructed": "\(reconstructed)", "reindex.unreadable_files": "\(unreadable)"]
        }
    }

    /// What the files say about one id's newest version.
    private struct Candidate {
        var header: PayloadFile.Header
        var primaryRecord: [UInt8]?
        var redundancyRecord: [UInt8]?
        var redundancyLocation: RedundancyLocation?
        var primaryDamaged = false
    }

    func run() throws(StoreError) -> Summary {
        var summary = Summary()
        var candidates: [String: Candidate] = [:]
        var reconstructions: [String: (PayloadFile.Header, [UInt8])] = [:]

        /// The candidate a file of `header`'s version updates: a fresh one for a newer version than
        /// seen so far, the current one for the same version, nil for an older one.
        func candidate(for header: PayloadFile.Header) -> Candidate? {
            guard let current = candidates[header.id], header.version <= current.header.version else { return Candidate(header: header) }
            return header.version == current.header.version ? current : nil
        }

        func visit(_ path: String, _ name: String) {
            guard !name.contains(".tmp-"), name.hasSuffix(".frag") || name.hasSuffix(".recon") else { return }
            summary.files += 1
            guard let bytes = try? FileSystem.read(path) else {
                summary.unreadable += 1
                return
            }
            let decoded = PayloadFile.decode(bytes)
            switch decoded {
            case .success(let (header, record)):
                if header.kind == .reconstruction {
                    if reconstructions[header.id].map({ $0.0.version < header.version }) ?? true {
                        reconstructions[header.id] = (header, record)
                    }
                    return
                }
                guard var candidate = candidate(for: header) else { return }
                candidate.primaryRecord = record
                candidates[header.id] = candidate
            case .failure(.recordChecksum(let header)):
                // The header is intact (its own checksum matched), so the id and version are known.
                summary.unreadable += 1
                guard header.kind == .original else { return }
                guard var candidate = candidate(for: header) else { return }
                candidate.primaryDamaged = true
                candidates[header.id] = candidate
            case .failure:
                summary.unreadable += 1
            }
        }
        self.primary.allFiles { visit($0, $1) }
        // Redundancy copies: the newest intact copy of each version (a copy may have been rewritten).
        let scanned = self.redundancy.scan { header, record, location in
            guard header.kind == .original else { return }
            guard var candidate = candidate(for: header) else { return }
            candidate.redundancyRecord = record
            candidate.redundancyLocation = location
            candidates[header.id] = candidate
        }
        summary.files += scanned.copies
        summary.unreadable += scanned.damaged

        let now = Timestamp.now
        var rows: [(FragmentRow, queue: Bool)] = []
        // Sketches come back from the texts that survive. Term statistics are gone with the registry,
        // so terms are chosen by count alone until a fragment is written again.
        var sketches: [String: (Sketch, [UInt8]?)] = [:]
        for (id, candidate) in candidates {
            let record = (candidate.primaryRecord ?? candidate.redundancyRecord).flatMap(FragmentRecord.decode)
            if let record {
                sketches[id] = (Sketch.make(record.content, idf: { _ in 1 }), record.embedding.map(FragmentStore.encodeEmbedding))
            }
            var row = FragmentRow(
                id: id, version: candidate.header.version, status: .ok, checksum: candidate.header.recordChecksum,
                recordLength: candidate.header.recordLength, size: record?.size ?? 0, links: record?.links ?? [],
                tags: record?.tags ?? [], createdAt: record?.createdAt ?? now, updatedAt: record?.updatedAt ?? now)
            row.redundancy = candidate.redundancyLocation
            if candidate.primaryRecord == nil {
                row.status = .blank
                row.blankReason = candidate.primaryDamaged ? .checksumMismatch : .missing
                row.lostAt = now
                row.detectedBy = .reindex
                if let (header, recordBytes) = reconstructions[id], header.version == row.version,
                    let rebuilt = FragmentRecord.decode(recordBytes), let reconstruction = rebuilt.reconstruction
                {
                    row.status = .reconstructed
                    row.originalChecksum = row.checksum
                    row.originalLength = row.recordLength
                    row.checksum = header.recordChecksum
                    row.recordLength = header.recordLength
                    row.confidence = reconstruction.confidence
                    row.links = rebuilt.links
                    row.tags = rebuilt.tags
                    row.size = rebuilt.size
                }
            }
            rows.append((row, row.status != .ok))
        }
        for (id, (header, recordBytes)) in reconstructions where candidates[id] == nil {
            // Only the reconstruction survived: serve it, flagged, with no exact original to wait for.
            guard let rebuilt = FragmentRecord.decode(recordBytes), let reconstruction = rebuilt.reconstruction else { continue }
            var row = FragmentRow(
                id: id, version: header.version, status: .reconstructed, checksum: header.recordChecksum,
                recordLength: header.recordLength, size: rebuilt.size, links: rebuilt.links, tags: rebuilt.tags,
                createdAt: rebuilt.createdAt, updatedAt: rebuilt.updatedAt)
            row.confidence = reconstruction.confidence
            rows.append((row, false))
        }

        do {
            try self.registry.writer.transaction {
                for (row, queue) in rows {
                    let (sketch, embedding) = sketches[row.id] ?? (Sketch.make("", idf: { _ in 1 }), nil)
                    try self.registry.upsert(row, previousTags: nil, sketch: sketch.encode(), embedding: embedding)
                    try self.registry.addEvent(row.id, at: now, kind: "reindexed", detail: ["version": .number(Double(row.version)), "status": .string(row.status.rawValue)])
                    if queue {
                        try self.registry.enqueueRepair(row.id, priority: .scrub, at: now, reason: row.blankReason?.rawValue ?? "reindex")
                    }
                    switch row.status {
                    case .ok: summary.ok += 1
                    case .blank: summary.blank += 1
                    case .reconstructed: summary.reconstructed += 1
                    }
                }
            }
        } catch let error as SQLiteError {
            throw .from(error, doing: "write the rebuilt registry")
        } catch {
            throw StoreError(.io, "cannot write the rebuilt registry: \(error)")
        }
        summary.fragments = rows.count
        return summary
    }
}
