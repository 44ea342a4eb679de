import CarmaJSON
import FragmentCore
import MicroHTTP

// POST /query and GET /fragments/{id}/context.

extension CarmaService {
    func query(_ http: HTTPRequest) -> HTTPResult {
        let started = ContinuousClock.now
        let value: JSONValue
        do {
            value = try http.jsonBody(maxDepth: 8)
        } catch {
            return .response(error.response)
        }
        func invalid(_ field: String, _ detail: String) -> HTTPResult {
            .response(.badRequest("invalid-query", "Invalid query", detail: detail, extra: ["field": .string(field)]))
        }
        guard let object = value.objectValue else { return invalid("body", "the body must be a JSON object") }
        for key in object.keys where !["text", "embedding", "k", "tags", "mode", "status", "metadata", "fusion", "min_score"].contains(key) {
            return invalid(key, "unknown field '\(key)'")
        }
        var request = QueryRequest()
        request.namespace = self.namespace(of: http)
        if let raw = object["text"], !raw.isNull {
            guard let string = raw.stringValue, !string.isEmpty, string.utf8.count <= 65536 else {
                return invalid("text", "text is a non-empty string of at most 65536 bytes")
            }
            request.text = string
        }
        if let raw = object["embedding"], !raw.isNull {
            guard let numbers = raw.arrayValue?.compactMap(\.doubleValue), numbers.count == raw.arrayValue?.count, !numbers.isEmpty,
                numbers.count <= self.configuration.limits.maxEmbeddingDimension
            else { return invalid("embedding", "embedding is an array of numbers") }
            request.embedding = numbers
        }
        guard request.text != nil || request.embedding != nil else { return invalid("text", "give text, embedding or both") }
        if let raw = object["k"] {
            guard let value = raw.intValue, (1...100).contains(value) else { return invalid("k", "k is an integer from 1 to 100") }
            request.k = value
        }
        if let raw = object["tags"], !raw.isNull {
            guard let items = raw.arrayValue, items.count <= 16, let strings = Optional(items.compactMap(\.stringValue)), strings.count == items.count else {
                return invalid("tags", "tags is an array of at most 16 strings")
            }
            request.tags = strings
        }
        if let raw = object["mode"], !raw.isNull {
            guard let mode = raw.stringValue.flatMap(QueryMode.init(rawValue:)) else {
                return invalid("mode", "mode is one of \(QueryMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            request.mode = mode
        }
        if let raw = object["min_score"], !raw.isNull {
            guard let value = raw.doubleValue, (0...1).contains(value) else { return invalid("min_score", "min_score is a number from 0 to 1") }
            request.minScore = value
        }
        if let raw = object["fusion"], !raw.isNull {
            guard let fusion = raw.stringValue.flatMap(QueryFusion.init(rawValue:)) else {
                return invalid("fusion", "fusion is one of \(QueryFusion.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            request.fusion = fusion
        }
        if let raw = object["status"], !raw.isNull {
            let items = raw.arrayValue ?? [raw]
            let statuses = items.compactMap { $0.stringValue.flatMap(FragmentStatus.init(rawValue:)) }
            guard !statuses.isEmpty, statuses.count == items.count, items.count <= FragmentStatus.allCases.count else {
                return invalid("status", "status is one of ok, reconstructed, blank, or an array of 1 to 3 of them")
            }
            request.statuses = Set(statuses)
        }
        if let raw = object["metadata"], !raw.isNull {
            guard let members = raw.objectValue, members.count <= 16,
                members.allSatisfy({ member in if case .object = member.value { false } else if case .array = member.value { false } else { true } })
            else {
                return invalid("metadata", "metadata is an object of at most 16 members whose values are strings, numbers, booleans or null")
            }
            request.metadata = members
        }
        let answer: QueryAnswer
        do {
            answer = try self.store.query(request)
        } catch {
            if error.code == .invalid { return invalid(error.field ?? "body", error.message) }
            return .response(.problem(for: error))
        }
        let hits = answer.hits
        // Up to 100 hits of 512 KiB each would be 50 MiB: past the response budget, hits keep their
        // rank, id and status but leave their content out, flagged, for the client to GET.
        var budget = self.responseBudget
        var omitted = 0
        var results: [JSONValue] = []
        for hit in hits {
            var result: JSONObject = [
                "id": .string(FragmentKey.local(hit.id)),
                "score": .number((hit.score * 10000).rounded() / 10000),
                "version": .exact(hit.row.version),
                "tags": JSONValue(hit.row.tags),
                "links": JSONValue(hit.row.links.map(FragmentKey.local)),
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
        let (fragments, terms, meanings) = self.store.textIndexSize(in: request.namespace)
        var body: JSONObject = [
            "results": .array(results),
            "content_omitted": .number(Double(omitted)),
            "took_ms": .number((elapsed / .microseconds(1)).rounded() / 1000),
            "signals": .array(answer.signals.map { .string($0.rawValue) }),
            "notes": .array(answer.notes.map(JSONValue.string)),
            "index": [
                "ready": .bool(self.store.textIndexReady), "fragments": .number(Double(fragments)), "terms": .number(Double(terms)),
                "embedded": .number(Double(meanings)), "model": self.store.encoder.map { .string($0.name) } ?? .null,
            ],
        ]
        if let fusion = answer.fusion { body["fusion"] = .string(fusion.rawValue) }
        // Which model each model-made signal used (the meaning signal: the built-in model's name).
        if let model = answer.meaningModel { body["signal_models"] = ["meaning": .string(model)] }
        return .response(.json(200, .object(body)))
    }

    func context(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        guard let row = self.store.row(id) else { return .response(.notFound(id)) }
        let k = try request.integer("k", in: 0...50, default: 5)
        let namespace = self.namespace(of: request)
        func describe(_ ids: [String]) -> JSONValue {
            let rows = self.store.rows(ids)
            return .array(zip(ids, rows).map { id, row in
                ["id": .string(FragmentKey.local(id)), "status": .string(row?.status.rawValue ?? "unknown")]
            })
        }
        var similar: [JSONValue] = []
        // By meaning when the fragment has an embedding; by its sketch otherwise.
        var basis = "meaning"
        var hits: [(id: String, score: Double)] = []
        if k > 0, let meaning = self.store.meaning(of: id) {
            hits = self.store.nearestByMeaning(to: meaning, k: k, in: namespace, excluding: [id])
        } else if k > 0, let sketch = self.store.sketch(of: id) {
            basis = "sketch"
            hits = self.store.similar(to: sketch.vector, k: k, in: namespace, excluding: [id])
        }
        if !hits.isEmpty {
            let rows = self.store.rows(hits.map(\.id))
            // The index keeps expired fragments until compaction removes them; they are not listed.
            similar = zip(hits, rows).compactMap { hit, row in
                row.map { ["id": .string(FragmentKey.local(hit.id)), "status": .string($0.status.rawValue), "score": .number((hit.score * 10000).rounded() / 10000)] }
            }
        }
        // Links are bounded by the store (256) and similar by k; backlinks are not (any number of
        // fragments may link here), so they get what the links leave of the response budget.
        var budget = self.responseBudget
        _ = budget.take(row.links.reduce(0) { $0 + $1.utf8.count + 40 })
        let linking = self.store.backlinks(id)
        var backlinks = zip(linking, self.store.rows(linking)).compactMap { id, row in row == nil ? nil : id }
        let total = backlinks.count
        if let cut = backlinks.firstIndex(where: { !budget.take($0.utf8.count + 40) }) {
            backlinks.removeSubrange(cut...)
        }
        var answer: JSONObject = FragmentJSON.namespaced([
            "id": .string(FragmentKey.local(id)),
            "status": .string(row.status.rawValue),
            "links": describe(row.links),
            "backlinks": describe(backlinks),
            "similar": .array(similar),
            "similar_by": .string(basis),
        ], key: id)
        if backlinks.count < total {
            answer["backlinks_truncated"] = true
        }
        return .response(.json(200, .object(answer)))
    }
}
