extension SentenceEncoder {
    /// The unit-length embedding of a query: the model's query prefix (`carma.json`'s
    /// `query_prefix`, e.g. BGE's retrieval instruction) before the text. Stored fragments are
    /// embedded with `embed`, bare.
    ///
    /// A query embedded while no other is splits each layer with the encoder's helper thread, so
    /// that one client's query takes both cores; several at once each keep to their own thread
    /// (they already fill the cores). The vector is the same either way.
    public func embedQuery(_ text: String) -> [Float] {
        let input = self.card.queryPrefix + text
        let alone = self.queriesEmbedding.add(1, ordering: .relaxed).newValue == 1
        defer { self.queriesEmbedding.subtract(1, ordering: .relaxed) }
        guard alone, let team = self.team else { return self.embed(input) }
        return team.withHelper { self.embed(batch: [input], threads: 1, team: $0)[0] }
    }
}
