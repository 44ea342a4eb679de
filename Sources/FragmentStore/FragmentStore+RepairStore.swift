import CarmaJSON
import FragmentCore

extension FragmentStore: RepairStore, ContextSource {
    public func exactRecord(_ target: RepairTarget, from tier: RepairTier) -> [UInt8]? {
        switch tier {
        case .primary: self.exactRecordFromPrimary(target)
        case .cache: self.exactRecordFromCache(target)
        case .redundancy: self.exactRecordFromRedundancy(target)
        case .sketch: SketchRecovery.record(target, sketch: self.sketch(of: target.id))
        case .reconstruction, .none: nil
        }
    }

    public func sourceDescription(_ tier: RepairTier) -> String {
        switch tier {
        case .primary: "primary log"
        case .cache: "payload cache"
        case .redundancy: "redundancy log in \(self.redundancyLog.root)"
        case .sketch: "the registry's sketch (the text kept verbatim)"
        case .reconstruction: "surviving context"
        case .none: "nothing"
        }
    }

    public var fragmentCount: Int { self.state.withLock { $0.count } }
}
