import CarmaJSON

/// What each kind of history event says, in one place for both backends (the API serves these
/// members beside `at` and `kind`).
package enum HistoryDetail {
    /// `created` / `updated` (`imported` when an import wrote it).
    package static func written(version: UInt64, size: Int, imported: Bool = false) -> JSONObject {
        var detail: JSONObject = ["version": .exact(version), "size": .number(Double(size))]
        if imported { detail["imported"] = true }
        return detail
    }

    package static func lost(version: UInt64, reason: BlankReason, detectedBy: Detection) -> JSONObject {
        ["version": .exact(version), "reason": .string(reason.rawValue), "detected_by": .string(detectedBy.rawValue)]
    }

    /// `redundancy_repaired`: the scrub found the copy damaged and wrote it again from the intact record.
    package static func redundancyRepaired(version: UInt64, reason: BlankReason) -> JSONObject {
        ["version": .exact(version), "reason": .string(reason.rawValue), "detected_by": .string(Detection.scrub.rawValue)]
    }

    package static func queued(_ priority: RepairPriority) -> JSONObject {
        ["priority": .string(priority.name)]
    }

    package static func recovered(_ item: Restoration) -> JSONObject {
        var detail: JSONObject = [
            "version": .exact(item.target.version), "tier": .string(item.tier.rawValue), "source": .string(item.source),
            "duration_ms": .number((item.durationMilliseconds * 1000).rounded() / 1000), "was": .string(item.target.row.status.rawValue),
        ]
        if let cycle = item.cycle { detail["cycle"] = .number(Double(cycle)) }
        return detail
    }

    package static func repairFailed(_ target: RepairTarget, reason: String, attempt: Int, retryAt: Timestamp, cycle: Int64?) -> JSONObject {
        var detail: JSONObject = [
            "version": .exact(target.version), "reason": .string(reason), "attempt": .number(Double(attempt)),
            "next_try_at": .string(retryAt.rfc3339),
        ]
        if let cycle { detail["cycle"] = .number(Double(cycle)) }
        return detail
    }
}
