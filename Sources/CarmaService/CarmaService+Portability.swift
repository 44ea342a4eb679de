import CarmaJSON
import FragmentCore
import MicroHTTP

// GET /export and POST /import: every fragment out as NDJSON from one snapshot, and back in at
// the versions it had.

extension CarmaService {
    static let ndjson = "application/x-ndjson"

    func exportFragments(_ request: HTTPRequest) -> HTTPResult {
        let snapshot: StoreSnapshot
        do {
            snapshot = try self.store.snapshot(namespace: self.namespace(of: request))
        } catch {
            return .response(.problem(for: error))
        }
        let headers: HTTPHeaders = [
            "Content-Type": Self.ndjson,
            "Cache-Control": "no-store",
            "X-Export-Fragments": String(snapshot.rows.count),
            "X-Export-Max-Version": String(snapshot.maxVersion),
        ]
        return .response(.streaming(200, headers: headers, stream: ExportStream(snapshot: snapshot)))
    }

    func importFragments(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let namespace = self.namespace(of: request)
        let (parsed, lines) = try ImportJSON.fragments(from: request.body)
        // The route decides the namespace; a line's own `namespace` member is not looked at.
        let fragments = parsed.map { $0.qualified(in: namespace) }
        try self.ensureNamespace(namespace)
        let store = self.store
        return .deferred { complete in
            store.importFragments(fragments) { result in
                switch result {
                case .success(let outcomes):
                    var counts: JSONObject = ["imported": 0, "unchanged": 0, "superseded": 0]
                    for outcome in outcomes {
                        counts[outcome.rawValue] = .number(Double((counts[outcome.rawValue]?.intValue ?? 0) + 1))
                    }
                    counts["fragments"] = .number(Double(outcomes.count))
                    complete(.json(200, .object(counts)))
                case .failure(let error):
                    self.metrics.refused([error])
                    if let index = error.fragmentIndex, lines.indices.contains(index) {
                        // Name the line, as for the checks made while reading the body.
                        complete(.problem(for: error, line: lines[index]))
                    } else {
                        complete(.problem(for: error))
                    }
                }
            }
        }
    }
}
