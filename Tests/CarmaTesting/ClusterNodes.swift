import CarmaClient
import Foundation
import Synchronization

/// Several `carmad` nodes in cluster mode on one PostgreSQL, for live tests.
///
/// Each node has its own data directory (carmad keeps node-local files there) and the name
/// `node1`, `node2`, …; all share `--database-url`. The nodes start at once, on threads, so that the
/// first start of a cluster (creating the schema) is also a concurrent one.
public final class ClusterNodes: @unchecked Sendable {
    // @unchecked: `nodes` changes only through `crash`/`restart`, which a test calls from one task.
    public let database: PostgresServer
    public private(set) var nodes: [ServerProcess]
    private let directories: [TemporaryDirectory]
    /// The flags every node was started with besides the cluster's own (for restarts).
    public let extraArguments: [String]

    /// The flags that put a node into cluster mode on `database`.
    public static func clusterArguments(database: PostgresServer, nodeName: String) -> [String] {
        ["--database-url", database.url, "--node-name", nodeName]
    }

    /// Starts `count` nodes on `database` at once and waits until every one listens.
    /// - Parameters:
    ///   - count: How many nodes.
    ///   - database: The PostgreSQL they share.
    ///   - extraArguments: More flags for every node (e.g. `manualDreamOnly`, `--repair-lease 2`).
    ///   - perNode: More flags for one node, by index from 0 (e.g. a slow duty cycle on the first).
    public init(
        count: Int, database: PostgresServer, extraArguments: [String] = [], perNode: [Int: [String]] = [:]
    ) throws {
        self.database = database
        self.extraArguments = extraArguments
        let directories = (0..<count).map { _ in TemporaryDirectory("node") }
        self.directories = directories
        let started = Mutex<[Int: ServerProcess]>([:])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do {
                let node = try ServerProcess(
                    dataDirectory: directories[index].path,
                    extraArguments: Self.clusterArguments(database: database, nodeName: "node\(index + 1)") + extraArguments + (perNode[index] ?? []))
                started.withLock { $0[index] = node }
            } catch {
                failures.withLock { $0.append("node\(index + 1): \(error)") }
            }
        }
        let nodes = started.withLock { $0 }
        let errors = failures.withLock { $0 }
        guard errors.isEmpty else {
            for node in nodes.values { node.stop(signal: SIGKILL) }
            for directory in directories { directory.remove() }
            throw ClientError("cluster did not start:\n" + errors.joined(separator: "\n"))
        }
        self.nodes = (0..<count).map { nodes[$0]! }
    }

    deinit {
        self.shutDown()
    }

    public var count: Int { self.nodes.count }

    public subscript(index: Int) -> ServerProcess { self.nodes[index] }

    /// A client of node `index` (from 0).
    public func api(_ index: Int, timeoutSeconds: Int = 60) -> CarmaAPI {
        CarmaAPI(port: self.nodes[index].port, timeoutSeconds: timeoutSeconds)
    }

    /// A client for every node, in order.
    public func apis(timeoutSeconds: Int = 60) -> [CarmaAPI] {
        self.nodes.indices.map { self.api($0, timeoutSeconds: timeoutSeconds) }
    }

    /// Starts node `index` again on its data directory and name (after `crash()` or `stop()`).
    /// - Parameter extraArguments: Replaces the node's extra flags; the cluster flags stay.
    @discardableResult
    public func restart(_ index: Int, extraArguments: [String]? = nil) throws -> ServerProcess {
        let old = self.nodes[index]
        if old.process.isRunning { old.stop() }
        let node = try ServerProcess(
            dataDirectory: self.directories[index].path,
            extraArguments: Self.clusterArguments(database: self.database, nodeName: "node\(index + 1)") + (extraArguments ?? self.extraArguments))
        self.nodes[index] = node
        return node
    }

    /// Every node's log, headed by its name, for failure messages.
    public var logs: String {
        self.nodes.enumerated().map { "--- node\($0.offset + 1) ---\n\($0.element.log)" }.joined(separator: "\n")
    }

    /// Stops every node (SIGTERM, then SIGKILL) and removes their directories; the database stays.
    public func shutDown() {
        for node in self.nodes where node.process.isRunning { node.stop() }
        for directory in self.directories { directory.remove() }
    }
}
