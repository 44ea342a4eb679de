import CarmaVectors

// Vector search through the graphs of `NeighbourIndexes`, and what their builder reads.
//
// A graph only proposes candidates: each is scored again exactly as the scan scores it (the same
// integer dot product for meanings, the same double-precision cosine for client vectors), and the
// best are chosen by the scan's own `top`, so a query whose true neighbours are among the candidates
// gets the very answer of the exact scan. Whenever the graph cannot vouch for its candidates (it
// stopped at its budget, or found fewer than asked), the exact scan answers instead.

extension TextIndex {
    /// The meaning ranking through the graph; nil: scan exactly.
    func approximateMeaning(to vector: [Int8], queryNorm: Double, k: Int, filter: Filter) -> [Hit]? {
        guard let neighbours = self.neighbours, let graph = neighbours.meaning.serving, graph.dimensions == vector.count else { return nil }
        // A few more than asked: the graph's float distances may order near-ties unlike the scan's doubles.
        guard
            let slots = self.candidates(
                graph, query: vector, k: k, fetch: k + 8, filter: filter, neighbours: neighbours, vectors: self.meaningCount)
        else { return nil }
        let overflow = neighbours.overflow.compactMap { self.slots[$0] }
        return self.top(self.scoredMeanings(vector, queryNorm: queryNorm, slots: slots + overflow), k: k, filter: filter)
    }

    /// The client-vector ranking through the graph; nil: scan exactly.
    func approximateClient(to embedding: [Float], norm: Double, k: Int, filter: Filter) -> [Hit]? {
        guard let neighbours = self.neighbours, let graph = neighbours.client.serving, graph.dimensions == embedding.count else { return nil }
        let query = TextIndex.quantize(embedding)
        // Twice as many as asked: the graph compares the vectors rounded to int8, which reorders
        // those about as close as the k-th; their float cosines decide.
        guard
            let slots = self.candidates(
                graph, query: query, k: k, fetch: 2 * k, filter: filter, neighbours: neighbours, vectors: neighbours.clientVectors)
        else { return nil }
        let candidates = slots + neighbours.overflow.compactMap { self.slots[$0] }
        let scored = candidates.compactMap { slot in self.clientCosine(embedding, norm: norm, slot: Int(slot)).map { (slot, $0) } }
        return self.top(scored, k: k, filter: filter)
    }

    /// The slots of the graph's `fetch` nearest accepted labels, or nil when they may not hold the
    /// true `k` nearest.
    private func candidates(
        _ graph: VectorIndex, query: [Int8], k: Int, fetch: Int, filter: Filter, neighbours: NeighbourIndexes, vectors: Int
    ) -> [UInt32]? {
        let configuration = neighbours.configuration
        let unfiltered = filter.tags.isEmpty && filter.metadata.isEmpty && filter.excluded.isEmpty && filter.custom == nil
        let budget = configuration.budget(vectors: vectors)
        let width = configuration.beam(vectors: vectors, fetch: fetch)
        // A tag few carry: scoring its fragments costs less than the graph's budget, and is exact.
        if let slots = self.taggedSlots(filter), slots.count <= budget { return nil }
        if !unfiltered, !self.graphCanFill(width, budget: budget, filter: filter) { return nil }
        let answer = graph.search(
            query, k: fetch, ef: width, budget: budget,
            accept: unfiltered
                ? nil
                : { label in
                    guard let slot = neighbours.slots[label].map(Int.init), self.alive[slot] else { return false }
                    return self.accepts(slot, filter)
                })
        guard answer.complete, answer.neighbours.count >= min(fetch, graph.count) else { return nil }
        // A filter that passed fewer than asked of the graph's vectors: only the scan knows it found them all.
        guard answer.neighbours.count == fetch || unfiltered else { return nil }
        return answer.neighbours.compactMap { neighbours.slots[$0.label] }
    }

    /// Whether a filter passes enough fragments for the graph to fill a beam `width` wide within its
    /// budget (it meets about ten candidates for each it keeps, divided by the share that pass: at
    /// 1,000,000 vectors a filter that 1% pass ran out of a 50,000 budget; bench/vector-1m.sh),
    /// judged on 256 fragments spread over the index. A filter few pass goes straight to the scan
    /// rather than spending the budget first.
    private func graphCanFill(_ width: Int, budget: Int, filter: Filter) -> Bool {
        guard !self.ids.isEmpty else { return false }
        var live = 0, passed = 0
        // Scattered by a multiplicative hash, not a fixed stride, which a periodic pattern of
        // writes (every tenth fragment tagged) would alias with.
        for i in 0..<256 {
            let slot = Int(((UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 11) % UInt64(self.ids.count))
            guard self.alive[slot] else { continue }
            live += 1
            if self.accepts(slot, filter) { passed += 1 }
        }
        guard passed > 0 else { return false }
        return Double(width) * 10 * Double(live) / Double(passed) <= Double(budget)
    }

    // MARK: For the builder (under the read lock)

    /// Labels and vectors of up to `limit` slots from `start`: the fragments that belong in the
    /// graph of `kind`. `next` is nil at the end; `epoch` changes when the slots were renumbered.
    func neighbourChunk(_ kind: NeighbourIndexes.Kind, from start: Int, limit: Int) -> (
        items: [(label: UInt64, vector: [Int8])], next: Int?, epoch: Int
    ) {
        guard let neighbours = self.neighbours else { return ([], nil, 0) }
        let end = min(self.ids.count, start + limit)
        var items: [(label: UInt64, vector: [Int8])] = []
        items.reserveCapacity(end - start)
        if start < end {
            for slot in start..<end {
                guard let vector = self.neighbourVector(kind, slot: slot, neighbours: neighbours) else { continue }
                items.append((NeighbourIndexes.label(self.ids[slot]), vector))
            }
        }
        return (items, end < self.ids.count ? end : nil, neighbours.epoch)
    }

    /// The vector a label should have in the graph of `kind` now; nil: none.
    func neighbourVector(_ kind: NeighbourIndexes.Kind, label: UInt64) -> [Int8]? {
        guard let neighbours = self.neighbours, let slot = neighbours.slots[label] else { return nil }
        return self.neighbourVector(kind, slot: Int(slot), neighbours: neighbours)
    }

    private func neighbourVector(_ kind: NeighbourIndexes.Kind, slot: Int, neighbours: NeighbourIndexes) -> [Int8]? {
        guard self.alive[slot], !neighbours.overflow.contains(self.ids[slot]) else { return nil }
        switch kind {
        case .meaning:
            guard self.meaningNorms[slot] > 0 else { return nil }
            let base = slot * self.meaningDimensions
            return Array(self.meanings[base..<(base + self.meaningDimensions)])
        case .client:
            guard let embedding = self.embeddings[slot], embedding.count == neighbours.client.dimension else { return nil }
            return TextIndex.quantize(embedding)
        }
    }

    /// Vectors of `kind` the index holds (the builder's threshold).
    func neighbourCount(_ kind: NeighbourIndexes.Kind) -> Int {
        kind == .meaning ? self.meaningCount : self.neighbours?.clientVectors ?? 0
    }
}
