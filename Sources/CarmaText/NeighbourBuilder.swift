import CarmaVectors
import Dispatch
import Foundation
import Synchronization

/// A text index behind a read-write lock: the stores' `ReadWriteLock<TextIndex>`.
package protocol TextIndexLock: AnyObject, Sendable {
    func read<T>(_ body: (borrowing TextIndex) throws -> T) rethrows -> T
    func write<T>(_ body: (inout TextIndex) throws -> T) rethrows -> T
}

/// What gives a text index's `NeighbourIndexes` their graphs: once a kind of vector reaches the
/// threshold, it reads the saved graph (checked whole; a damaged file is set aside) or builds one,
/// brings it up to date with the index chunk by chunk under the read lock, applies what changed
/// meanwhile, and only then lets queries use it, under the write lock for a moment. Queries scan
/// exactly until then: serving never waits for a graph. It rebuilds a graph whose removed elements
/// pile up, and `save` writes the graphs at shutdown. The store runs `buildDue` on a worker of its
/// own (the `vector-index` worker, FragmentStore+Neighbours.swift); `cancel` drops a build going on.
package final class NeighbourBuilder: Sendable {
    /// Cleared by `cancel`: a build going on stops at its next chunk.
    private let running = Atomic<Bool>(true)
    private let report: @Sendable (String, [String: String]) -> Void

    /// - Parameter report: Told what was built, loaded, set aside or saved (the store logs it).
    package init(report: @escaping @Sendable (String, [String: String]) -> Void = { _, _ in }) {
        self.report = report
    }

    /// Drops a build going on (at its next chunk) and every later one.
    package func cancel() {
        self.running.store(false, ordering: .relaxed)
    }

    /// Writes each serving graph changed since it was saved (under the read lock: queries go on,
    /// writers wait). At 1,000,000 vectors about a second (bench/vector-1m.sh).
    package func save(_ lock: some TextIndexLock) {
        lock.read { index in
            guard let neighbours = index.neighbours else { return }
            for kind in NeighbourIndexes.Kind.allCases {
                let set = neighbours.set(kind)
                guard let path = neighbours.path(kind), let graph = set.serving else { continue }
                guard set.state.withLock({ $0.unsaved }) > 0 || !FileManager.default.fileExists(atPath: path) else { continue }
                self.write(graph, to: path, kind: kind)
                set.state.withLock { $0.unsaved = 0 }
            }
        }
    }

    /// Builds every graph that is due, one after the other (on the caller's thread: tests and the benchmark).
    package func buildDue(_ lock: some TextIndexLock) {
        for kind in NeighbourIndexes.Kind.allCases {
            guard self.running.load(ordering: .relaxed) else { return }
            let due: (NeighbourIndexes, Int, Int)? = lock.read { index in
                guard let neighbours = index.neighbours else { return nil }
                let set = neighbours.set(kind)
                let count = index.neighbourCount(kind)
                guard count >= max(1, neighbours.configuration.minimumVectors), let dimension = set.dimension else { return nil }
                let due = set.state.withLock { state in
                    guard state.journal == nil else { return false }
                    guard let graph = state.serving else { return true }
                    return Double(graph.removed) > neighbours.configuration.rebuildRemovedShare * Double(max(1, graph.elements))
                }
                return due ? (neighbours, count, dimension) : nil
            }
            guard let (neighbours, count, dimension) = due else { continue }
            self.build(kind, in: lock, neighbours: neighbours, count: count, dimension: dimension)
        }
    }

    private var mayGoOn: Bool { self.running.load(ordering: .relaxed) }

    private func build(_ kind: NeighbourIndexes.Kind, in lock: some TextIndexLock, neighbours: NeighbourIndexes, count: Int, dimension: Int) {
        let set = neighbours.set(kind)
        let clock = ContinuousClock()
        let began = clock.now
        // Under the write lock, so that no change is half applied: from here every change is journaled.
        let rebuilding = lock.write { _ in
            set.state.withLock { state in
                state.journal = []
                return state.serving != nil
            }
        }
        var published = false
        defer {
            if !published { set.state.withLock { $0.journal = nil } }
        }
        let configuration = neighbours.configuration
        var graph: VectorIndex?
        var loaded = false
        // A rebuild drops removed elements: it starts empty rather than from the file.
        if !rebuilding, let path = neighbours.path(kind), FileManager.default.fileExists(atPath: path) {
            do throws(VectorIndexError) {
                graph = try VectorIndex.load(path: path, dimensions: dimension, extraCapacity: count / 4 + 1024)
                loaded = true
            } catch {
                // Set aside, not deleted: someone may want to look at it. Rebuilt below.
                try? FileManager.default.removeItem(atPath: path + ".damaged")
                try? FileManager.default.moveItem(atPath: path, toPath: path + ".damaged")
                self.report("vector index file set aside; rebuilding", ["vectors.kind": kind.rawValue, "error": "\(error)"])
            }
        }
        if graph == nil {
            graph = try? VectorIndex(dimensions: dimension, capacity: count + count / 4 + 1024, parameters: configuration.parameters)
        }
        guard let graph else { return }

        // One pass over the index: what the graph lacks or holds differently is added.
        var seen = Set<UInt64>(minimumCapacity: count)
        var cursor = 0
        var epoch: Int?
        var added = 0
        while self.mayGoOn {
            let chunk = lock.read { $0.neighbourChunk(kind, from: cursor, limit: 4096) }
            if let walked = epoch, walked != chunk.epoch {
                // The slots were renumbered under us: walk them again (what is in the graph stays).
                cursor = 0
                seen.removeAll(keepingCapacity: true)
                epoch = chunk.epoch
                continue
            }
            epoch = chunk.epoch
            let todo = chunk.items.filter { seen.insert($0.label).inserted && graph.vector(of: $0.label) != $0.vector }
            if graph.elements + todo.count > graph.capacity {
                guard (try? graph.reserve(max(graph.capacity * 3 / 2, graph.elements + todo.count + 1024))) != nil else { return }
            }
            guard self.add(todo, to: graph, threads: configuration.buildThreads) else { return }
            added += todo.count
            guard let next = chunk.next else { break }
            cursor = next
        }
        guard self.mayGoOn else { return }
        let dropped = graph.retain { seen.contains($0) }
        if let path = neighbours.path(kind), added > 0 || dropped > 0 || !loaded {
            self.write(graph, to: path, kind: kind)
        }

        // What changed during the pass, until little is left; the rest under the write lock.
        for _ in 0..<16 {
            let labels = set.state.withLock { state in
                let labels = state.journal ?? []
                state.journal = []
                return labels
            }
            guard labels.count > 256, self.mayGoOn else {
                set.state.withLock { $0.journal?.formUnion(labels) }
                break
            }
            for label in labels {
                let vector = lock.read { $0.neighbourVector(kind, label: label) }
                guard Self.apply(vector, label: label, to: graph) else { return }
            }
        }
        guard self.mayGoOn else { return }
        let seconds = Double((clock.now - began) / .milliseconds(1)) / 1000
        published = lock.write { index in
            // The store may have put a new text index in place (cluster mode reloads it whole).
            guard index.neighbours === neighbours else { return false }
            return set.state.withLock { state in
                for label in state.journal ?? [] {
                    guard Self.apply(index.neighbourVector(kind, label: label), label: label, to: graph) else { return false }
                }
                state.journal = nil
                state.serving = graph
                state.loadedFromFile = loaded
                state.buildSeconds = seconds
                state.unsaved = 0
                return true
            }
        }
        if published {
            self.report(
                loaded ? "vector index loaded" : "vector index built",
                [
                    "vectors.kind": kind.rawValue, "vectors.count": "\(graph.count)", "vectors.added": "\(added)",
                    "vectors.memory_mib": "\(graph.memoryBytes >> 20)", "vectors.seconds": String(format: "%.1f", seconds),
                ])
        }
    }

    private static func apply(_ vector: [Int8]?, label: UInt64, to graph: VectorIndex) -> Bool {
        guard let vector else {
            graph.remove(label)
            return true
        }
        return NeighbourSet.put(vector, label: label, in: graph)
    }

    /// Adds from `threads` threads (hnswlib locks per element); false on a failure or a stop.
    private func add(_ items: [(label: UInt64, vector: [Int8])], to graph: VectorIndex, threads: Int) -> Bool {
        let failed = Atomic<Bool>(false)
        let lanes = max(1, min(threads, items.count))
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            var at = lane
            while at < items.count, !failed.load(ordering: .relaxed) {
                if !self.mayGoOn {
                    failed.store(true, ordering: .relaxed)
                    break
                }
                if (try? graph.add(items[at].vector, label: items[at].label)) == nil { failed.store(true, ordering: .relaxed) }
                at += lanes
            }
        }
        return !failed.load(ordering: .relaxed)
    }

    private func write(_ graph: VectorIndex, to path: String, kind: NeighbourIndexes.Kind) {
        do throws(VectorIndexError) {
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try graph.save(to: path)
        } catch {
            self.report("cannot save the vector index", ["vectors.kind": kind.rawValue, "error": "\(error)"])
        }
    }
}
