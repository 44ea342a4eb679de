import CarmaJSON
import FragmentCore
import Foundation
import MicroHTTP
import Synchronization

/// The body of `GET /export`: NDJSON of one snapshot of the store, produced as the client reads it.
///
/// A header line (`{"carma_export":"header",…}`), one line per fragment in id order (an `ok` or
/// `reconstructed` fragment exactly as a GET serves it, a blank as `ExportLine.blank`), and a
/// closing line (`{"carma_export":"end","fragments":N}`) whose absence tells a reader that the
/// stream was cut. Memory holds one fragment at a time beyond the snapshot's rows.
final class ExportStream: HTTPBodyStream {
    private struct State {
        var next = 0
        var pending: [UInt8] = []
        var sent = 0
        var headerSent = false
        var finished = false
    }

    private let snapshot: StoreSnapshot
    private let state = Mutex(State())

    init(snapshot: StoreSnapshot) {
        self.snapshot = snapshot
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTPBodyStreamRead {
        self.state.withLock { state in
            while state.pending.count - state.sent < buffer.count, !state.finished {
                guard let line = self.nextLine(&state) else { return .failed }
                if state.sent > 0 {
                    state.pending.removeFirst(state.sent)
                    state.sent = 0
                }
                state.pending.append(contentsOf: line)
                state.pending.append(UInt8(ascii: "\n"))
            }
            let count = min(buffer.count, state.pending.count - state.sent)
            guard count > 0 else { return .end }
            state.pending.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[state.sent..<(state.sent + count)]))
            }
            state.sent += count
            return .bytes(count)
        }
    }

    func close() {
        self.snapshot.close()
    }

    /// The next line, or nil when a record stayed unreadable for passing reasons (the stream then
    /// fails rather than leave the fragment out).
    private func nextLine(_ state: inout State) -> [UInt8]? {
        if !state.headerSent {
            state.headerSent = true
            return ExportLine.header(self.snapshot)
        }
        guard state.next < self.snapshot.rows.count else {
            state.finished = true
            return JSONValue.object(["carma_export": "end", "fragments": .number(Double(self.snapshot.rows.count))]).bytes
        }
        let index = state.next
        state.next += 1
        for attempt in 0..<5 {
            switch self.snapshot.entry(index) {
            case .fragment(let body): return body
            case .blank(let row): return ExportLine.blank(row).bytes
            case .unavailable: usleep(useconds_t(10_000 << attempt))
            }
        }
        return nil
    }
}

/// Lines of an export other than served bodies.
enum ExportLine {
    static func header(_ snapshot: StoreSnapshot) -> [UInt8] {
        JSONValue.object([
            "carma_export": "header", "format_version": 1,
            "taken_at": .string(snapshot.takenAt.rfc3339),
            "max_version": .exact(snapshot.maxVersion),
            "fragments": .number(Double(snapshot.rows.count)),
        ]).bytes
    }

    /// A blank: what the registry still knows (its content, metadata and embedding were lost with
    /// the record).
    static func blank(_ key: FragmentRow) -> JSONValue {
        let row = key.localized
        return .object(FragmentJSON.namespaced([
            "id": .string(row.id),
            "version": .exact(row.version),
            "links": JSONValue(row.links),
            "tags": JSONValue(row.tags),
            "size": .number(Double(row.size)),
            "created_at": .string(row.createdAt.rfc3339),
            "updated_at": .string(row.updatedAt.rfc3339),
            "status": "blank",
            "rebuild_needed": true,
            "reason": .string(row.blankReason?.rawValue ?? "missing"),
            "lost_at": row.lostAt.map { .string($0.rfc3339) } ?? .null,
        ], key: key.id))
    }
}
