import CarmaJSON
import FragmentCore
import MicroHTTP

// POST /fragments and POST /namespaces/{ns}/fragments: many fragments in one request and one
// group commit, each with a result of its own.

extension CarmaService {
    /// Most items one batch may carry.
    static let maxBatchItems = 1000

    func putBatch(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let namespace = self.namespace(of: request)
        let value = try request.jsonBody(maxDepth: 34)
        guard let object = value.objectValue, case .array(let items)? = object["fragments"] else {
            throw HTTPError(.badRequest("invalid-batch", "Invalid batch", detail: "send {\"fragments\": [ … ]}"))
        }
        for key in object.keys where key != "fragments" {
            throw HTTPError(.badRequest("invalid-batch", "Invalid batch", detail: "unknown field '\(key)'"))
        }
        guard !items.isEmpty else { throw HTTPError(.badRequest("invalid-batch", "Invalid batch", detail: "fragments is empty")) }
        guard items.count <= Self.maxBatchItems else {
            throw HTTPError(.problem(
                413, type: "batch-too-large", title: "Batch too large", detail: "a batch holds at most \(Self.maxBatchItems) fragments; this one has \(items.count)",
                extra: ["max_items": .exact(Int64(Self.maxBatchItems))]))
        }
        var results = [JSONValue?](repeating: nil, count: items.count)
        var batch: [BatchPut] = []
        var positions: [Int] = []
        var seen = Set<String>()
        for (index, item) in items.enumerated() {
            do throws(HTTPError) {
                let (id, put) = try Self.batchItem(item, namespace: namespace)
                guard seen.insert(id).inserted else {
                    throw HTTPError(.badRequest("duplicate-id", "Duplicate id", detail: "'\(id)' appears earlier in this batch"))
                }
                batch.append(put)
                positions.append(index)
            } catch {
                results[index] = Self.itemResult(id: item.objectValue?["id"]?.stringValue, problem: error.response)
            }
        }
        if !batch.isEmpty { try self.ensureNamespace(namespace) }
        let store = self.store
        let metrics = self.metrics
        let (settled, puts, places) = (results, batch, positions)
        return .deferred { complete in
            store.put(batch: puts) { outcomes in
                metrics.refused(outcomes.compactMap { if case .failure(let error) = $0 { error } else { nil } })
                var results = settled
                for (position, (put, outcome)) in zip(places, zip(puts, outcomes)) {
                    let id = FragmentKey.local(put.id)
                    switch outcome {
                    case .success(let done):
                        results[position] = [
                            "id": .string(id), "status": .exact(Int64(done.created ? 201 : 200)),
                            "version": .exact(done.fragment.version), "fragment_status": .string(done.fragment.status.rawValue),
                            "outcome": .string(done.created ? "created" : done.unchanged ? "unchanged" : "updated"),
                        ]
                    case .failure(let error):
                        results[position] = Self.itemResult(id: id, problem: .problem(for: error))
                    }
                }
                let final = results.map { $0 ?? .null }
                let count = { (outcome: String) in final.filter { $0["outcome"]?.stringValue == outcome }.count }
                complete(.json(200, [
                    "results": .array(final),
                    "created": .exact(Int64(count("created"))), "updated": .exact(Int64(count("updated"))),
                    "unchanged": .exact(Int64(count("unchanged"))), "failed": .exact(Int64(final.filter { $0["problem"] != nil }.count)),
                ]))
            }
        }
    }

    /// One item: its id (given, or made here) and what to write.
    private static func batchItem(_ item: JSONValue, namespace: String) throws(HTTPError) -> (String, BatchPut) {
        guard let object = item.objectValue else { throw .invalid("body", "each item is a JSON object") }
        let id: String
        switch object["id"] {
        case nil, .null?:
            id = Self.makeID()
        case .string(let given)?:
            if let reason = FragmentID.validate(given) { throw HTTPError(.badRequest("invalid-id", "Invalid fragment id", detail: reason)) }
            id = given
        default:
            throw .invalid("id", "id is a string")
        }
        var precondition = WritePrecondition()
        switch object["if_match"] {
        case nil, .null?: break
        case let value?:
            guard let version = value.exactInteger, version > 0 else { throw .invalid("if_match", "if_match is a version number") }
            precondition.ifMatch = [UInt64(version)]
        }
        let input = try FragmentJSON.input(object, id: id, namespace: namespace, extraFields: ["if_match"]).qualified(in: namespace)
        return (id, BatchPut(id: FragmentKey.make(namespace, id), input: input, precondition: precondition, unlessUnchanged: true))
    }

    private static func itemResult(id: String?, problem: HTTPResponse) -> JSONValue {
        let document = (try? JSONParser.parse(problem.body, maxDepth: 8)) ?? .null
        return ["id": id.map(JSONValue.string) ?? .null, "status": .exact(Int64(problem.status)), "outcome": "failed", "problem": document]
    }

    /// An id made by the server: 10 characters of the millisecond clock (so ids sort by time of
    /// creation) and 16 random ones, lowercase base32.
    static func makeID(now: Timestamp = .now) -> String {
        var clock = UInt64(max(0, now.milliseconds))
        var head = [UInt8](repeating: 0, count: 10)
        for index in stride(from: 9, through: 0, by: -1) {
            head[index] = RandomText.alphabet[Int(clock & 31)]
            clock >>= 5
        }
        return String(decoding: head, as: UTF8.self) + RandomText.base32(16)
    }
}
