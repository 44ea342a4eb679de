import CarmaEmbedding
import CarmaJSON
import CarmaText
import FragmentCore

// Listings, histories, and the node's text index (loaded at start, then following the change feed)
// behind queries, context and reconstruction.

extension ClusterStore {
    // MARK: Listing and history

    public func list(namespace: String, status: FragmentStatus?, tag: String?, after: String?, limit: Int) throws(StoreError) -> FragmentPage {
        // The index on (namespace, id) gives the page in key order.
        var conditions = ["f.namespace = $3", "f.id > $2", "(f.expires_at IS NULL OR f.expires_at > $1)"]
        var parameters: [PGValue] = [.int(Timestamp.now.milliseconds), .text(after ?? ""), .text(namespace)]
        if let status {
            parameters.append(.text(status.rawValue))
            conditions.append("f.status = $\(parameters.count)")
        }
        if let tag {
            parameters.append(.texts([tag]))
            conditions.append("f.tags @> $\(parameters.count)::text[]")
        }
        parameters.append(.int(limit + 1))
        let name = "carma_list_\(status == nil ? 0 : 1)\(tag == nil ? 0 : 1)"
        let statement = PGStatement(name, "SELECT \(Self.rowColumns) FROM carma_fragments f WHERE \(conditions.joined(separator: " AND ")) ORDER BY f.id LIMIT $\(parameters.count)")
        do {
            let result = try self.pool.with { connection, deadline throws(PGError) in try connection.run(statement, parameters, deadline: deadline) }
            let rows = result.all.compactMap { Self.row($0) }
            let page = Array(rows.prefix(limit))
            return FragmentPage(rows: page, nextAfter: rows.count > limit ? page.last?.id : nil)
        } catch {
            throw Self.storeError(error, doing: "list fragments")
        }
    }

    static let events = PGStatement(
        "carma_history", "SELECT sequence, id, at, kind, detail FROM carma_events WHERE id = $1 ORDER BY sequence DESC LIMIT $2")

    public func history(_ id: String, limit: Int) throws(StoreError) -> [FragmentEvent]? {
        do {
            guard try self.fetchRows([id])[0] != nil else { return nil }
            let result = try self.pool.with { connection, deadline throws(PGError) in try connection.run(Self.events, [.text(id), .int(limit)], deadline: deadline) }
            return result.all.compactMap { r -> FragmentEvent? in
                guard let sequence = r.int(0), let id = r.string(1), let at = r.int(2), let kind = r.string(3) else { return nil }
                let detail = r.string(4).flatMap { try? JSONParser.parse($0) }?.objectValue ?? [:]
                return FragmentEvent(sequence: sequence, id: id, at: Timestamp(milliseconds: at), kind: kind, detail: detail)
            }.reversed()
        } catch {
            throw Self.storeError(error, doing: "read the history of '\(id)'")
        }
    }

    static let idPage = PGStatement("carma_ids", "SELECT id FROM carma_fragments WHERE id > $1 ORDER BY id LIMIT $2")
    static let namespaceIDPage = PGStatement(
        "carma_namespace_ids", "SELECT id FROM carma_fragments WHERE namespace = $3 AND id > $1 ORDER BY id LIMIT $2")

    public func ids(namespace: String?, after: String?, limit: Int) throws(StoreError) -> [String] {
        do {
            let result = try self.pool.with { connection, deadline throws(PGError) in
                if let namespace {
                    return try connection.run(Self.namespaceIDPage, [.text(after ?? ""), .int(limit), .text(namespace)], deadline: deadline)
                }
                return try connection.run(Self.idPage, [.text(after ?? ""), .int(limit)], deadline: deadline)
            }
            return result.all.compactMap { $0.string(0) }
        } catch {
            throw Self.storeError(error, doing: "walk the registry")
        }
    }

    // MARK: The node's text index

    static let feedPosition = PGStatement("carma_feed_position", "SELECT COALESCE(max(sequence), 0) FROM carma_changes")
    static let allDocuments = PGStatement(
        "carma_all_documents",
        """
        SELECT f.id, f.version, f.status, f.sketch, p.version, p.record, f.links, f.tags, m.vector
        FROM carma_fragments f LEFT JOIN carma_payloads p ON p.id = f.id
        LEFT JOIN carma_meanings m ON m.id = f.id AND m.version = f.version AND m.model = ANY($2::text[])
        WHERE f.id > $1 ORDER BY f.id LIMIT 2000
        """)
    static let feed = PGStatement(
        "carma_feed",
        """
        SELECT c.sequence, c.id, f.version, f.status, f.sketch, p.version, p.record, f.links, f.tags, m.vector
        FROM carma_changes c LEFT JOIN carma_fragments f ON f.id = c.id LEFT JOIN carma_payloads p ON p.id = c.id
        LEFT JOIN carma_meanings m ON m.id = f.id AND m.version = f.version AND m.model = ANY($2::text[])
        WHERE c.sequence > $1 ORDER BY c.sequence LIMIT 1000
        """)

    /// Builds the index afresh from every fragment, in pages, and swaps it in; the feed's position
    /// is noted first (what changes during the load is applied again from the feed: indexing the
    /// current state twice gives the same index).
    func loadTextIndex() throws(PGError) {
        let position = try self.pool.with(timeout: .seconds(30)) { connection, deadline throws(PGError) in
            try connection.run(Self.feedPosition, [], deadline: deadline)
        }.first?.int(0) ?? 0
        var fresh: [String: TextIndex] = [:]
        let dimensions = self.configuration.encoder?.dimensions ?? 0
        var after = ""
        while true {
            let page = try self.pool.with(timeout: .seconds(60)) { connection, deadline throws(PGError) in
                try connection.run(Self.allDocuments, [.text(after), .texts(self.modelTags)], deadline: deadline)
            }
            let changes = self.changes(page.all.map { ($0.string(0) ?? "", Array($0.cells[1...])) })
            for (namespace, part) in Self.split(changes) {
                Self.apply(part, to: &fresh[namespace, default: TextIndex(meaningDimensions: dimensions)])
            }
            guard page.count == 2000, let last = page.all.last?.string(0) else { break }
            after = last
        }
        self.text.replace(with: fresh)
        // Entries just below the highest may belong to transactions still committing: the follower
        // reads them again.
        self.follower.position.withLock { $0 = ChangeFollower.Position(low: max(0, position - 256)) }
    }

    /// Applies what the feed holds past this node's position; true when it applied anything. The
    /// first call loads the whole index; so does a call after the feed went unread for longer than
    /// it keeps entries (the node was cut off from the database).
    func followFeed() -> Bool {
        let lastRead = self.feedReadAt.withLock { $0 }
        if lastRead.map({ ContinuousClock.now - $0 > .milliseconds(ChangeFollower.retentionMilliseconds * 5 / 6) }) ?? true {
            let started = ContinuousClock.now
            do {
                try self.loadTextIndex()
            } catch {
                // Tried again every 200 ms while the database is away: said once a minute.
                let failures = self.loadFailures.add(1, ordering: .relaxed).newValue
                if failures % 300 == 1 {
                    self.logger.warning("text index not loaded; retrying", metadata: ["error": "\(error)", "attempts": "\(failures)"])
                }
                return false
            }
            self.loadFailures.store(0, ordering: .relaxed)
            self.feedReadAt.withLock { $0 = started }
            self.textLoaded.store(true, ordering: .relaxed)
            self.logger.info("text index loaded", metadata: ["index.fragments": "\(self.text.size.fragments)"])
            return true
        }
        let low = self.follower.position.withLock { $0.low }
        let started = ContinuousClock.now
        guard
            let result = try? self.pool.with({ connection, deadline throws(PGError) in
                try connection.run(Self.feed, [.int(low), .texts(self.modelTags)], deadline: deadline)
            })
        else { return false }
        self.feedReadAt.withLock { $0 = started }
        let entries = result.all.compactMap { r -> (Int64, String, [[UInt8]?])? in
            guard let sequence = r.int(0), let id = r.string(1) else { return nil }
            return (sequence, id, Array(r.cells[2...]))
        }
        let fresh = self.follower.accept(entries.map(\.0))
        let wanted = entries.filter { fresh.contains($0.0) }
        if !wanted.isEmpty {
            let changes = self.changes(wanted.map { ($0.1, $0.2) })
            for (namespace, part) in Self.split(changes) {
                let index = self.text.namespace(namespace)
                index.write { Self.apply(part, to: &$0) }
                // A namespace left with nothing (deleted, most often) keeps no index on this node.
                if namespace != Namespace.default, !part.removed.isEmpty, index.size.fragments == 0 {
                    self.text.drop(namespace)
                }
            }
        }
        return !wanted.isEmpty
    }

    typealias IndexChanges = (documents: [TextIndex.Document], meanings: [(String, UInt64, [Int8])], removed: [String])

    /// What to change in an index for fragments read as cells (version, status, sketch, payload
    /// version, record, links, tags, meaning); a fragment with no version left is removed. CPU work,
    /// done outside the index lock.
    private func changes(_ items: [(id: String, cells: [[UInt8]?])]) -> IndexChanges {
        var documents: [TextIndex.Document] = []
        var meanings: [(String, UInt64, [Int8])] = []
        var removed: [String] = []
        for (id, cells) in items {
            let r = PGRow(cells: cells)
            guard let version = r.int(0), version > 0 else {
                removed.append(id)
                continue
            }
            if let vector = r.bytes(7) {
                meanings.append((id, UInt64(version), vector.map { Int8(bitPattern: $0) }))
            }
            let sketch = r.bytes(2).flatMap(Sketch.decode)
            let status = r.string(1).flatMap(FragmentStatus.init(rawValue:))
            if status != .blank, r.int(3) == version, let bytes = r.bytes(4), let record = FragmentRecord.decode(bytes), record.id == id {
                documents.append(TextIndex.Document.fragment(id: id, version: UInt64(version), input: record.input, sketch: sketch ?? self.sketch(record.input, key: id)))
            } else if let sketch {
                // A blank (or an unreadable record): findable by its kept sketch, as on one machine.
                documents.append(
                    TextIndex.Document(
                        id: id, version: UInt64(version), sketch: sketch, terms: nil, words: sketch.words, tags: r.texts(6) ?? [],
                        links: r.texts(5) ?? [], metadata: [],
                        clientEmbedding: nil, mentionsTime: sketch.verbatim.map { TimeExpressions.mentionsTime($0.content) } ?? false))
            }
        }
        return (documents, meanings, removed)
    }

    /// Index changes per namespace.
    private static func split(_ changes: IndexChanges) -> [String: IndexChanges] {
        var parts: [String: IndexChanges] = [:]
        for document in changes.documents { parts[FragmentKey.namespace(of: document.id), default: ([], [], [])].documents.append(document) }
        for meaning in changes.meanings { parts[FragmentKey.namespace(of: meaning.0), default: ([], [], [])].meanings.append(meaning) }
        for id in changes.removed { parts[FragmentKey.namespace(of: id), default: ([], [], [])].removed.append(id) }
        return parts
    }

    private static func apply(_ changes: IndexChanges, to index: inout TextIndex) {
        for id in changes.removed { index.remove(id) }
        for document in changes.documents { index.upsert(document) }
        // A vector of the wrong length (another model's, or damaged) is refused by the index.
        for (id, version, vector) in changes.meanings { _ = index.setMeaning(id, version: version, vector) }
    }

    // MARK: Queries and context

    static let damaged = PGStatement("carma_damaged", "SELECT id, status FROM carma_fragments WHERE status <> 'ok' AND namespace = $1")

    public func query(_ request: QueryRequest) throws(StoreError) -> QueryAnswer {
        // A status filter needs every candidate's status: the few fragments not `ok` are read once
        // (the partial index of damaged fragments), not one row per candidate.
        var statuses: [String: FragmentStatus] = [:]
        if request.statuses != nil {
            do {
                let rows = try self.pool.with { connection, deadline throws(PGError) in
                    try connection.run(Self.damaged, [.text(request.namespace)], deadline: deadline)
                }
                for r in rows.all {
                    if let id = r.string(0), let status = r.string(1).flatMap(FragmentStatus.init(rawValue:)) { statuses[id] = status }
                }
            } catch {
                throw Self.storeError(error, doing: "filter by status")
            }
        }
        let damaged = statuses
        let ranking = try QueryRanking.rank(
            request, index: self.text.namespace(request.namespace), encoder: self.configuration.encoder, embeddingDimension: self.embeddingDimension.withLock { $0 },
            status: { id in damaged[id] ?? .ok },
            beforeSearch: { [self] in
                // Every change committed before the query is in the index before it runs.
                if let position = try? self.pool.with({ connection, deadline throws(PGError) in
                    try connection.run(Self.feedPosition, [], deadline: deadline)
                }).first?.int(0) {
                    self.follower.wait(until: position, timeout: 1)
                }
            })
        return ranking.answer(rows: self.rows(ranking.hits.map(\.id)))
    }

    public var textIndexReady: Bool { self.textLoaded.load(ordering: .relaxed) }

    public var textIndexSize: (fragments: Int, terms: Int, meanings: Int) { self.text.size }
    public func textIndexSize(in namespace: String) -> (fragments: Int, terms: Int, meanings: Int) { self.text.namespace(namespace).size }
    public func sketch(of id: String) -> Sketch? { self.text.sketch(of: id) }
    public func idf(_ hash: UInt32, in namespace: String) -> Double { self.text.namespace(namespace).idf(hash) }
    public func backlinks(_ id: String) -> [String] { self.text.backlinks(id) }

    public func similar(to vector: [Int8], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).similar(to: vector, k: k, excluding: excluded)
    }

    public func related(to sketch: Sketch, k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).related(to: sketch, k: k, excluding: excluded)
    }

    /// The content of a readable fragment (for reconstruction and query answers).
    public func content(_ id: String) -> (content: String, status: FragmentStatus)? {
        guard case .fragment(let served) = self.read(id), let value = try? JSONParser.parse(served.body), let content = value["content"]?.stringValue else {
            return nil
        }
        return (content, served.status)
    }
}
