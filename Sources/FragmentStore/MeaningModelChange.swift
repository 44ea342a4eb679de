import CarmaEmbedding

/// What start-up does with the meanings in the registry, given the model they were made by
/// (`meaning_model` in the registry's meta) and the model loaded now.
enum MeaningModelChange: Equatable {
    /// The same model: the meanings are loaded.
    case same
    /// The same model, tagged by its name alone (a carmad before model identities): the meanings
    /// are loaded and the tag is brought up to date. Its weights cannot be told apart from another
    /// model of the same name and shape; every later start can.
    case sameUnderOldTag
    /// Another model (nil: none tagged, a store that never had one): its meanings are dropped and
    /// every fragment is embedded again in the background.
    case replaced(previous: String?)

    init(stored: String?, encoder: SentenceEncoder) {
        self.init(stored: stored, identity: encoder.identity, name: encoder.name)
    }

    init(stored: String?, identity: String, name: String) {
        switch stored {
        case identity: self = .same
        case name: self = .sameUnderOldTag
        case let other: self = .replaced(previous: other.map(Self.displayName))
        }
    }

    /// A stored identity without its fingerprint ("name (… layers, … dimensions)").
    static func displayName(_ identity: String) -> String {
        guard let cut = identity.range(of: " #", options: .backwards) else { return identity }
        return String(identity[..<cut.lowerBound])
    }
}
