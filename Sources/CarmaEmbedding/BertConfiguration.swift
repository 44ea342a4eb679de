import CarmaJSON

/// The shape of a BERT encoder, from the model directory's `config.json`, bounded so that a hostile
/// file cannot ask for absurd allocations.
struct BertConfiguration: Sendable, Equatable {
    var hidden: Int
    var layers: Int
    var heads: Int
    var intermediate: Int
    var positions: Int
    var vocabulary: Int
    var layerNormEpsilon: Float

    init(file path: String) throws(EmbeddingModelError) {
        let text = try ModelFile.text(path, maxBytes: 1 << 20)
        guard let object = (try? JSONParser.parse(text, maxDepth: 8))?.objectValue else {
            throw .malformed(path, "not a JSON object")
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(EmbeddingModelError) -> Int {
            guard let value = object[key]?.intValue, range.contains(value) else {
                throw .malformed(path, "\(key) is missing or outside \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        guard object["model_type"]?.stringValue == "bert" else { throw .malformed(path, "model_type is not bert") }
        if let activation = object["hidden_act"]?.stringValue, activation != "gelu" {
            throw .malformed(path, "hidden_act \(activation) is not supported (gelu is)")
        }
        self.hidden = try integer("hidden_size", 8...4096)
        self.layers = try integer("num_hidden_layers", 1...48)
        self.heads = try integer("num_attention_heads", 1...64)
        self.intermediate = try integer("intermediate_size", 8...16384)
        self.positions = try integer("max_position_embeddings", 8...8192)
        self.vocabulary = try integer("vocab_size", 8...1_000_000)
        guard self.hidden % self.heads == 0 else { throw .malformed(path, "hidden_size is not a multiple of num_attention_heads") }
        let epsilon = object["layer_norm_eps"]?.doubleValue ?? 1e-12
        guard epsilon > 0, epsilon < 1 else { throw .malformed(path, "layer_norm_eps is outside (0, 1)") }
        self.layerNormEpsilon = Float(epsilon)
    }
}
