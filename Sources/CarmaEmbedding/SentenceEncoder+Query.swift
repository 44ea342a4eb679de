extension SentenceEncoder {
    /// The unit-length embedding of a query: the model's query prefix (`carma.json`'s
    /// `query_prefix`, e.g. BGE's retrieval instruction) before the text. Stored fragments are
    /// embedded with `embed`, bare.
    public func embedQuery(_ text: String) -> [Float] {
        self.embed(self.card.queryPrefix + text)
    }
}
