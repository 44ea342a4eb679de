import CarmaJSON
import FragmentStore
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
        var graph: Graph
        if let around = request.queryValue("around") {
            guard FragmentID.isValid(around), self.store.row(around) != nil else {
                return .response(.notFound(around))
            }
            graph = self.neighbourhood(of: around, depth: depth, limit: limit)
        } else {
            let after = request.queryValue("after")
            if let after, !FragmentID.isValid(after) {
                return .response(.badRequest("invalid-query", "Invalid query", detail: "after is a fragment id"))
            }
            do {
                let ids = try self.store.ids(after: after, limit: limit + 1)
                graph = self.graph(ids: Array(ids.prefix(limit)))
                graph.truncated = ids.count > limit
            } catch {
                return .response(.problem(for: error))
            }
        }
        if format == "dot" {
            return .response(HTTPResponse(status: 200, headers: ["Content-Type": "text/vnd.graphviz; charset=utf-8"], body: Array(graph.dot.utf8)))
        }
        return .response(.json(200, graph.json))
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

    private func graph(ids: [String]) -> Graph {
        let rows = self.store.rows(ids)
        let included = Set(ids)
        var graph = Graph()
        for (id, row) in zip(ids, rows) {
            guard let row else {
                graph.nodes.append(Graph.Node(id: id, status: "unknown", confidence: nil))
                continue
            }
            graph.nodes.append(Graph.Node(id: id, status: row.status.rawValue, confidence: row.status == .reconstructed ? row.confidence : nil))
            for link in row.links {
                if included.contains(link) {
                    graph.edges.append((id, link))
                } else {
                    graph.edgesOutside += 1
                }
            }
        }
        return graph
    }

    struct Graph {
        struct Node {
            var id: String
            var status: String
            var confidence: Double?
        }

        var nodes: [Node] = []
        var edges: [(String, String)] = []
        /// Links from included nodes to nodes left out.
        var edgesOutside = 0
        var truncated = false

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
            lines.append("}")
            return lines.joined(separator: "\n") + "\n"
        }

        /// Ids use a quote-free alphabet; labels may carry `\n` escapes, which DOT interprets.
        static func quote(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
    }
}
