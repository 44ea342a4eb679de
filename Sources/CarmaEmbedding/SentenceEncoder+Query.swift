import Foundation

extension SentenceEncoder {
    /// The unit-length embedding of a query: the model's query prefix (`carma.json`'s
    /// `query_prefix`, e.g. BGE's retrieval instruction) before the text. Stored fragments are
    /// embedded with `embed`, bare.
    ///
    /// A query embedded while no other is, and none has overlapped another for `quietSpell`,
    /// splits each layer with the encoder's helper thread, so that one client's query takes both
    /// cores. Under concurrent queries each keeps to its own thread: they already fill the cores,
    /// and a helper spinning between their layers would take CPU from them (a quarter of it at 16
    /// clients, measured before the spell was added). The vector is the same either way.
    public func embedQuery(_ text: String) -> [Float] {
        let input = self.card.queryPrefix + text
        let now = Int(clamping: DispatchTime.now().uptimeNanoseconds)
        let others = self.queriesEmbedding.add(1, ordering: .relaxed).newValue - 1
        defer { self.queriesEmbedding.subtract(1, ordering: .relaxed) }
        if others > 0 { self.lastOverlap.store(now, ordering: .relaxed) }
        let quiet = others == 0 && now - self.lastOverlap.load(ordering: .relaxed) > Self.quietSpell
        guard quiet, let team = self.team else { return self.embed(input) }
        return team.withHelper { self.embed(batch: [input], threads: 1, team: $0)[0] }
    }

    /// How long after two queries' embeddings last overlapped the helper stays out (nanoseconds):
    /// long enough to span the gaps between a busy server's queries, short enough that a client
    /// alone again gets it back at once.
    static let quietSpell = 200_000_000
}
