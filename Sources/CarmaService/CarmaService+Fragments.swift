import CarmaJSON
import Dispatch
import FragmentCore
import MicroHTTP

// PUT, GET, HEAD, DELETE /fragments/{id}, GET /fragments and GET /fragments/{id}/history.

extension CarmaService {
    /// The key of the path's id in the request's namespace, or a 400 explaining what is wrong with it.
    func fragmentID(_ request: HTTPRequest) throws(HTTPError) -> String {
        let id = request.pathParameters["id"] ?? ""
        if let reason = FragmentID.validate(id) {
            throw HTTPError(.badRequest("invalid-id", "Invalid fragment id", detail: reason))
        }
        return FragmentKey.make(self.namespace(of: request), id)
    }

    func putFragment(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        let namespace = self.namespace(of: request)
        let input = try FragmentJSON.input(from: request, id: FragmentKey.local(id), namespace: namespace).qualified(in: namespace)
        let precondition = Self.precondition(request.headers)
        let store = self.store
        try self.ensureNamespace(namespace)
        return .deferred { [unowned self] complete in
            store.put(id, input, precondition: precondition) { result in
                switch result {
                case .success(let outcome):
                    var headers: HTTPHeaders = [
                        "ETag": Self.etag(outcome.fragment),
                        "X-Fragment-Status": outcome.fragment.status.rawValue,
                    ]
                    if outcome.created {
                        headers.add("Location", Self.path(of: id))
                    }
                    complete(.json(outcome.created ? 201 : 200, bytes: outcome.fragment.body, headers: headers))
                case .failure(let error):
                    complete(self.writeProblem(error, id: id))
                }
            }
        }
    }

    /// The problem for a failed write; a failed precondition carries the current ETag.
    func writeProblem(_ error: StoreError, id: String) -> HTTPResponse {
        self.metrics.refused([error])
        var response = HTTPResponse.problem(for: error)
        if error.code == .preconditionFailed, let row = self.store.row(id) {
            response.headers.set("ETag", Self.etag(version: row.version, status: row.status))
        }
        return response
    }

    func getFragment(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        switch self.store.read(id) {
        case .notFound:
            return .response(.notFound(id))
        case .fragment(let fragment):
            let etag = Self.etag(fragment)
            if let candidates = request.headers["If-None-Match"], Self.entityTags(candidates).contains(where: { $0 == fragment.version }) {
                return .response(HTTPResponse(status: 304, headers: ["ETag": etag]))
            }
            var headers = HTTPHeaders(capacity: 3)
            headers.add("Content-Type", "application/json")
            headers.add("ETag", etag)
            headers.add("X-Fragment-Status", fragment.status.rawValue)
            return .response(HTTPResponse(status: 200, headers: headers, body: fragment.body))
        case .blank(let blank):
            self.metrics.blankServed()
            // A repair is planned only for a queued fragment; the stub promises nothing else.
            let eta = blank.queuedAt == nil ? nil : self.engine.secondsUntilNextAttempt(blank.progress)
            return self.stubResponse(FragmentJSON.stub(blank, etaSeconds: eta), retryAfter: eta, detail: "blank", request: request)
        case .backendUnavailable:
            // Nothing is lost and nothing was recorded: the database is away, not the fragment.
            self.metrics.blankServed()
            let retry = 5
            return self.stubResponse(FragmentJSON.unavailableStub(id, retryAfter: retry), retryAfter: retry, detail: "backend-unavailable", request: request)
        case .unavailable(let reason):
            return .response(.problem(for: StoreError.unavailable(reason)))
        }
    }

    /// A blank stub: 200 (flagged) by default, 503 for a client that prefers `strict`.
    private func stubResponse(_ body: JSONValue, retryAfter: Int?, detail: String, request: HTTPRequest) -> HTTPResult {
        var headers: HTTPHeaders = [
            "X-Fragment-Status": "blank",
            "Cache-Status": "carma; fwd=miss; detail=\(detail)",
            "Cache-Control": "no-store",
        ]
        if let retryAfter { headers.add("Retry-After", String(retryAfter)) }
        if Self.prefersStrict(request) {
            var strictHeaders = headers
            strictHeaders.add("Preference-Applied", "strict")
            return .response(.json(503, body, headers: strictHeaders))
        }
        return .response(.json(200, body, headers: headers))
    }

    func deleteFragment(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        let precondition = Self.precondition(request.headers)
        let store = self.store
        return .deferred { [unowned self] complete in
            store.delete(id, precondition: precondition) { result in
                switch result {
                case .success: complete(HTTPResponse(status: 204))
                case .failure(let error): complete(self.writeProblem(error, id: id))
                }
            }
        }
    }

    func listFragments(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        var status: FragmentStatus?
        if let raw = request.queryValue("status") {
            guard let parsed = FragmentStatus(rawValue: raw) else {
                return .response(.badRequest("invalid-query", "Invalid query", detail: "status is one of ok, blank, reconstructed"))
            }
            status = parsed
        }
        let limit = try request.integer("limit", in: 1...1000, default: 100)
        let cursor = request.queryValue("cursor")
        if let cursor, !FragmentID.isValid(cursor) {
            return .response(.badRequest("invalid-query", "Invalid query", detail: "cursor is not one this server issued"))
        }
        let tag = request.queryValue("tag")
        let store = self.store
        let namespace = self.namespace(of: request)
        let wanted = status
        let budgetBytes = self.responseBudget
        return self.afterApplied {
            do throws(StoreError) {
                let page = try store.list(namespace: namespace, status: wanted, tag: tag, after: cursor.map { FragmentKey.make(namespace, $0) }, limit: limit)
                // A page ends early at the response budget (a summary carries up to 256 links); the
                // cursor then points after the last summary sent. The first always goes, so paging advances.
                var budget = budgetBytes
                var items: [JSONValue] = []
                for row in page.rows {
                    let summary = FragmentJSON.summary(row)
                    guard budget.take(summary.bytes.count + 1) || items.isEmpty else { break }
                    items.append(summary)
                }
                let nextCursor = (items.count < page.rows.count ? page.rows[items.count - 1].id : page.nextAfter).map(FragmentKey.local)
                return .json(200, [
                    "items": .array(items),
                    "next_cursor": nextCursor.map(JSONValue.string) ?? .null,
                ])
            } catch {
                return .problem(for: error)
            }
        }
    }

    /// Answers once the registry has applied every write acknowledged so far, so that listings and
    /// histories agree with earlier reads; the HTTP thread never waits for it (the connection is
    /// suspended meanwhile).
    func afterApplied(_ answer: @escaping @Sendable () -> HTTPResponse) -> HTTPResult {
        let store = self.store
        return .deferred { complete in
            store.whenApplied {
                // Not on the apply thread: the answer reads SQLite.
                DispatchQueue.global().async { complete(answer()) }
            }
        }
    }

    func history(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let id = try self.fragmentID(request)
        let store = self.store
        return self.afterApplied {
            do throws(StoreError) {
                guard let events = try store.history(id, limit: 500), let row = store.row(id) else {
                    return .notFound(id)
                }
                return .json(200, .object(FragmentJSON.namespaced([
                    "id": .string(FragmentKey.local(id)),
                    "status": .string(row.status.rawValue),
                    "version": .exact(row.version),
                    "events": .array(events.map(FragmentJSON.event)),
                ], key: id)))
            } catch {
                return .problem(for: error)
            }
        }
    }

    // MARK: - Header helpers

    static func etag(_ fragment: ServedFragment) -> String {
        self.etag(version: fragment.version, status: fragment.status)
    }

    static func etag(version: UInt64, status: FragmentStatus) -> String {
        // A reconstruction is not byte-equal to the version it stands for: its tag is weak.
        // Written by hand: this runs on every GET, and a tag of up to 15 bytes needs no allocation.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            var end = buffer.count
            buffer[end - 1] = UInt8(ascii: "\"")
            end -= 1
            var rest = version
            repeat {
                end -= 1
                buffer[end] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            end -= 1
            buffer[end] = UInt8(ascii: "\"")
            if status == .reconstructed {
                end -= 2
                buffer[end] = UInt8(ascii: "W")
                buffer[end + 1] = UInt8(ascii: "/")
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[end...]), as: UTF8.self)
        }
    }

    /// Version numbers named in an `If-Match` / `If-None-Match` list (weak or strong alike).
    static func entityTags(_ header: String) -> [UInt64] {
        header.split(separator: ",").compactMap { part in
            var tag = part.trimmingSpaces()
            if tag.hasPrefix("W/") { tag = String(tag.dropFirst(2)) }
            guard tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") else { return nil }
            return UInt64(tag.dropFirst().dropLast())
        }
    }

    static func precondition(_ headers: HTTPHeaders) -> WritePrecondition {
        var precondition = WritePrecondition()
        if let ifMatch = headers["If-Match"] {
            if ifMatch[...].trimmingSpaces() == "*" {
                precondition.matchAny = true
            } else {
                precondition.ifMatch = entityTags(ifMatch)
            }
        }
        if let ifNoneMatch = headers["If-None-Match"], ifNoneMatch[...].trimmingSpaces() == "*" {
            precondition.ifNoneMatchAny = true
        }
        return precondition
    }

    /// `Prefer: strict` or `?strict=true`: the client wants a hard failure instead of a blank.
    static func prefersStrict(_ request: HTTPRequest) -> Bool {
        if let value = request.queryValue("strict"), value == "true" || value == "1" {
            return true
        }
        return request.headers.values("Prefer").contains { header in
            header.split(separator: ",").contains { $0.trimmingSpaces().lowercased() == "strict" }
        }
    }
}
