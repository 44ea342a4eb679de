import CarmaJSON
import FragmentStore
import MicroHTTP

// POST /query and GET /fragments/{id}/context.

extension CarmaService {
    func query(_ request: HTTPRequest) -> HTTPResult {
        let started = ContinuousClock.now
        let value: JSONValue
        do {
            value = try request.jsonBody(maxDepth: 8)
        } catch {
            return .response(error.response)
        }
        func invalid(_ field: String, _ detail: String) -> HTTPResult {
            .response(.badRequest("invalid-query", "Invalid query", detail: detail, extra: ["field": .string(field)]))
        }
        guard let object = value.objectValue else { return invalid("body", "the body must be a JSON object") }
        for key in object.keys where !["text", "embedding", "k", "tags"].contains(key) {
            return invalid(key, "unknown field '\(key)'")
        }
        var text: String?
        if let raw = object["text"], !raw.isNull {
            guard let string = raw.stringValue, !string.isEmpty, string.utf8.count <= 65536 else {
                return invalid("text", "text is a non-empty string of at most 65536 bytes")
            }
            text = string
        }
        var embedding: [Double]?
        if let raw = object["embedding"], !raw.isNull {
            guard let numbers = raw.arrayValue?.compactMap(\.doubleValue), numbers.count == raw.arrayValue?.count, !numbers.isEmpty,
                numbers.count <= self.configuration.store.limits.maxEmbeddingDimension
            else { return invalid("embedding", "embedding is an array of numbers") }
            embedding = numbers
        }
        guard text != nil || embedding != nil else { return invalid("text", "give text, embedding or both") }
        var k = 10
        if let raw = object["k"] {
            guard let value = raw.intValue, (1...100).contains(value) else { return invalid("k", "k is an integer from 1 to 100") }
            k = value
        }
        var tags: [String] = []
        if let raw = object["tags"], !raw.isNull {
            guard let items = raw.arrayValue, items.count <= 16, let strings = Optional(items.compactMap(\.stringValue)), strings.count == items.count else {
                return invalid("tags", "tags is an array of at most 16 strings")
            }
            tags = strings
        }
        let hits: [FragmentStore.QueryHit]
        do {
            hits = try self.store.query(text: text, embedding: embedding, k: k, tags: tags)
        } catch {
            if error.code == .invalid { return invalid(error.field ?? "body", error.message) }
            return .response(.problem(for: error))
        }
        // Up to 100 hits of 512 KiB each would be 50 MiB: past the response budget, hits keep their
        // rank, id and status but leave their content out, flagged, for the client to GET.
        var budget = self.responseBudget
        var omitted = 0
        var results: [JSONValue] = []
        for hit in hits {
            var result: JSONObject = [
                "id": .string(hit.id),
                "score": .number((hit.score * 10000).rounded() / 10000),
                "version": .number(Double(hit.row.version)),
                "tags": JSONValue(hit.row.tags),
                "links": JSONValue(hit.row.links),
            ]
            if hit.row.status != .blank, let (content, status) = self.store.content(hit.id) {
                result["status"] = .string(status.rawValue)
                // Charged at the content's UTF-8 size plus the rest of the hit: escapes can make the
                // JSON longer, but serializing each content twice to know would cost more.
                if budget.take(content.utf8.count + JSONValue.object(result).bytes.count + 64) {
                    result["content"] = .string(content)
                } else {
                    result["content_omitted"] = true
                    omitted += 1
                }
                if status == .reconstructed, let confidence = hit.row.confidence {
                    result["confidence"] = .number((confidence * 1000).rounded() / 1000)
                }
            } else {
                // A blank: flagged, without content, as a GET would answer it.
                result["status"] = "blank"
                result["rebuild_needed"] = true
            }
            results.append(.object(result))
        }
        let elapsed = ContinuousClock.now - started
        let (fragments, terms) = self.store.textIndexSize
        return .response(.json(200, [
            "results": .array(results),
            "content_omitted": .number(Double(omitted)),
            "took_ms": .number((elapsed / .microseconds(1)).rounded() / 1000),
            "index": ["ready": .bool(self.store.textIndexReady), "fragments": .number(Double(fragments)), "terms": .number(Double(terms))],
        ]))
    }

    func context(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        guard let row = self.store.row(id) else { return .response(.notFound(id)) }
        let k = try request.integer("k", in: 0...50, default: 5)
        func describe(_ ids: [String]) -> JSONValue {
            let rows = self.store.rows(ids)
            return .array(zip(ids, rows).map { id, row in
                ["id": .string(id), "status": .string(row?.status.rawValue ?? "unknown")]
            })
        }
        var similar: [JSONValue] = []
        if k > 0, let sketch = self.store.sketch(of: id) {
            let hits = self.store.similar(to: sketch.vector, k: k, excluding: [id])
            let rows = self.store.rows(hits.map(\.id))
            similar = zip(hits, rows).map { hit, row in
                ["id": .string(hit.id), "status": .string(row?.status.rawValue ?? "unknown"), "score": .number((hit.score * 10000).rounded() / 10000)]
            }
        }
        // Links are bounded by the store (256) and similar by k; backlinks are not (any number of
        // fragments may link here), so they get what the links leave of the response budget.
        var budget = self.responseBudget
        _ = budget.take(row.links.reduce(0) { $0 + $1.utf8.count + 40 })
        var backlinks = self.store.backlinks(id)
        let total = backlinks.count
        if let cut = backlinks.firstIndex(where: { !budget.take($0.utf8.count + 40) }) {
            backlinks.removeSubrange(cut...)
        }
        var answer: JSONObject = [
            "id": .string(id),
            "status": .string(row.status.rawValue),
            "links": describe(row.links),
            "backlinks": describe(backlinks),
            "similar": .array(similar),
        ]
        if backlinks.count < total {
            answer["backlinks_truncated"] = true
        }
        return .response(.json(200, .object(answer)))
    }
}
