import FragmentCore

// How a lifecycle transition becomes statement parameters on PostgreSQL. The statements take the
// row's state, the queue's values and the history lines from the transition: what changes is
// decided by `FragmentLifecycle`, never in SQL.

extension ClusterStore {
    /// The parameters every outcome statement ends with: the statuses the event applies to (the
    /// guard), the served state (status, checksum, length, blank reason, lost at, detected by,
    /// original checksum and length, confidence), and the history lines (kinds, details).
    /// Eleven values, bound as `$base`…`$(base + 10)`, in `stateColumns(from:)`'s order.
    static func transitionParameters(_ event: LifecycleEvent, _ transition: LifecycleTransition) -> [PGValue] {
        let row = transition.row!
        return [
            .texts(FragmentLifecycle.statuses(for: event).map(\.rawValue)),
            .text(row.status.rawValue), .uint(row.checksum), .int(row.recordLength), .optional(row.blankReason?.rawValue),
            .optional(row.lostAt?.milliseconds), .optional(row.detectedBy?.rawValue), row.originalChecksum.map { .uint($0) } ?? .null,
            row.originalLength.map { .int($0) } ?? .null, .optional(row.confidence),
            .texts(transition.history.map(\.kind.rawValue)), .texts(transition.history.map { Self.json($0.detail) }),
        ]
    }

    /// The guarded update of the served state, `u`, with parameters from `$first` on (see
    /// `transitionParameters`); `$1` is the id and `$2` the version.
    static func stateUpdate(from first: Int) -> String {
        let p = (first...(first + 9)).map { "$\($0)" }
        return """
            u AS (
                UPDATE carma_fragments SET status = \(p[1]), checksum = \(p[2])::bigint, record_length = \(p[3])::bigint, blank_reason = \(p[4]),
                    lost_at = \(p[5])::bigint, detected_by = \(p[6]), original_checksum = \(p[7])::bigint, original_length = \(p[8])::bigint,
                    confidence = \(p[9])::double precision
                WHERE id = $1 AND version = $2 AND status = ANY(\(p[0])::text[]) RETURNING id)
            """
    }

    /// The history lines of the transition, `e`, for the fragments `u` updated, at `$at`.
    static func historyInsert(kinds: Int, details: Int, at: Int) -> String {
        """
        e AS (INSERT INTO carma_events (id, at, kind, detail)
              SELECT u.id, $\(at)::bigint, h.kind, h.detail FROM u, unnest($\(kinds)::text[], $\(details)::text[]) WITH ORDINALITY AS h(kind, detail, n)
              ORDER BY h.n)
        """
    }
}
