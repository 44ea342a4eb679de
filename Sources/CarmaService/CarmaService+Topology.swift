import CarmaJSON
import FragmentCore
import MicroHTTP

// GET /topology: the link graph with statuses, as JSON or Graphviz DOT, bounded in size.

extension CarmaService {
    static let topologyDefaultLimit = 500
    static let topologyMaxLimit = 10_000

    func topology(_ request: HTTPRequest) throws(HTTPError) -> HTTPResult {
        let format = request.queryValue("format") ?? "json"
        guard format == "json" || format == "dot" else {
            return .response(.badRequest("invalid-query", "Invalid query", detail: "format is json or dot"))
        }
        let limit = try request.integer("limit", in: 1...Self.topologyMaxLimit, default: Self.topologyDefaultLimit)
        let depth = try request.integer("depth", in: 0...10, default: 2)
        let respond: @Sendable (Graph) -> HTTPResponse = { graph in
            if format == "dot" {
                return HTTPResponse(status: 200, headers: ["Content-Type": "text/vnd.graphviz; charset=utf-8"], body: Array(graph.dot.utf8))
            }
            return .json(200, graph.json)
        }
        let namespace = self.namespace(of: request)
        if let around = request.queryValue("around") {
            guard FragmentID.isValid(around), self.store.row(FragmentKey.make(namespace, around)) != nil else {
                return .response(.notFound(around))
            }
            var graph = self.neighbourhood(of: FragmentKey.make(namespace, around), depth: depth, limit: limit)
            graph.fit(self.responseBudget)
            return .response(respond(graph))
        }
        let after = request.queryValue("after")
        if let after, !FragmentID.isValid(after) {
            return .response(.badRequest("invalid-query", "Invalid query", detail: "after is a fragment id"))
        }
        // The walk in id order comes from the registry: answer once it has every acknowledged write.
        return self.afterApplied { [self] in
            do throws(StoreError) {
                let ids = try self.store.ids(namespace: namespace, after: after.map { FragmentKey.make(namespace, $0) }, limit: limit + 1)
                var graph = self.graph(ids: Array(ids.prefix(limit)))
                graph.truncated = ids.count > limit
                graph.fit(self.responseBudget)
                if graph.truncated {
                    graph.nextAfter = graph.nodes.last?.id
                }
                return respond(graph)
            } catch {
                return .problem(for: error)
            }
        }
    }

    /// Nodes reached from `root` along links, breadth first, up to `depth` hops and `limit` nodes.
    private func neighbourhood(of root: String, depth: Int, limit: Int) -> Graph {
        var order = [root]
        var seen: Set<String> = [root]
        var frontier = [root]
        var truncated = false
        for _ in 0..<depth where !frontier.isEmpty {
            var next: [String] = []
            for row in self.store.rows(frontier).compactMap({ $0 }) {
                for link in row.links where !seen.contains(link) {
                    guard order.count < limit else {
                        truncated = true
                        break
                    }
                    seen.insert(link)
                    order.append(link)
                    next.append(link)
                }
            }
            frontier = next
        }
        var graph = self.graph(ids: order)
        graph.truncated = truncated
        return graph
    }

    /// The graph of some keys, with the ids and links of their namespace.
    private func graph(ids keys: [String]) -> Graph {
        let rows = self.store.rows(keys).map { $0?.localized }
        var graph = Graph()
        for (id, row) in zip(keys.map(FragmentKey.local), rows) {
            guard let row else {
                graph.nodes.append(Graph.Node(id: id, status: "unknown", confidence: nil, links: []))
                continue
            }
            graph.nodes.append(
                Graph.Node(id: id, status: row.status.rawValue, confidence: row.status == .reconstructed ? row.confidence : nil, links: row.links))
        }
        graph.connect()
        return graph
    }

    struct Graph {
        struct Node {
            var id: String
            var status: String
            var confidence: Double?
            /// Every link of the fragment, whether its target is in the graph or not.
            var links: [String]
        }

        var nodes: [Node] = []
        var edges: [(String, String)] = []
        /// Links from included nodes to nodes left out.
        var edgesOutside = 0
        var truncated = false
        /// Without `around`, where the next page starts when nodes were left out.
        var nextAfter: String?

        /// Edges among the nodes, and the count of links to nodes left out.
        mutating func connect() {
            let included = Set(self.nodes.map(\.id))
            self.edges = []
            self.edgesOutside = 0
            for node in self.nodes {
                for link in node.links {
                    if included.contains(link) {
                        self.edges.append((node.id, link))
                    } else {
                        self.edgesOutside += 1
                    }
                }
            }
        }

        /// Keeps the longest prefix of the nodes whose drawing fits `budget`, at least one.
        ///
        /// 10,000 nodes of 256 links each made gigabytes of JSON. Each node is charged with an edge
        /// for every link to a node of the graph before the cut (an upper bound, in either format: a
        /// JSON edge is `{"from":"…","to":"…"},` and a DOT one `  "…" -> "…";`), so the cut is made
        /// before the edges are known.
        mutating func fit(_ budget: ResponseBudget) {
            var budget = budget
            let candidates = Set(self.nodes.map(\.id))
            let firstLeftOut = self.nodes.firstIndex { node in
                let width = node.id.utf8.count
                let cost = 2 * width + 96 + node.links.reduce(0) { $0 + (candidates.contains($1) ? width + $1.utf8.count + 24 : 0) }
                return !budget.take(cost)
            }
            guard let firstLeftOut, max(1, firstLeftOut) < self.nodes.count else { return }
            self.nodes.removeSubrange(max(1, firstLeftOut)...)
            self.truncated = true
            self.connect()
        }

        var json: JSONValue {
            var counts: [String: Int] = [:]
            for node in self.nodes { counts[node.status, default: 0] += 1 }
            return [
                "nodes": .array(self.nodes.map { node in
                    var object: JSONObject = ["id": .string(node.id), "status": .string(node.status)]
                    if let confidence = node.confidence { object["confidence"] = .number(confidence) }
                    return .object(object)
                }),
                "edges": .array(self.edges.map { ["from": .string($0.0), "to": .string($0.1)] }),
                "counts": .object(JSONObject(counts.sorted(by: { $0.key < $1.key }).map { ($0.key, JSONValue.number(Double($0.value))) })),
                "edges_outside": .number(Double(self.edgesOutside)),
                "truncated": .bool(self.truncated),
                "next_after": self.nextAfter.map(JSONValue.string) ?? .null,
            ]
        }

        static let colours = ["ok": "#7bc96f", "blank": "#e05d5d", "reconstructed": "#f2b134", "unknown": "#ffffff"]

        var dot: String {
            var lines = [
                "digraph carma {",
                "  graph [rankdir=LR, overlap=false, splines=true, fontname=\"Helvetica\"];",
                "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];",
                "  edge [color=\"#888888\", arrowsize=0.6];",
            ]
            for node in self.nodes {
                var label = node.id
                if let confidence = node.confidence { label += "\\n\(Int((confidence * 100).rounded()))%" }
                lines.append("  \(Self.quote(node.id)) [label=\(Self.quote(label)), fillcolor=\"\(Self.colours[node.status] ?? "#ffffff")\"\(node.status == "unknown" ? ", style=dashed" : "")];")
            }
            for (from, to) in self.edges {
                lines.append("  \(Self.quote(from)) -> \(Self.quote(to));")
            }
            if self.truncated {
                // DOT has no field for it; a comment tells a reader of the file that nodes were left out.
                lines.append("  // truncated: nodes were left out" + (self.nextAfter.map { "; the next page starts after=\($0)" } ?? ""))
            }
            lines.append("}")
            return lines.joined(separator: "\n") + "\n"
        }

        /// Ids use a quote-free alphabet; labels may carry `\n` escapes, which DOT interprets.
        static func quote(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
    }
}
