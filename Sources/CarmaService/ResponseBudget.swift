/// The bytes a response body may still grow by, so that a handler stops adding items before the
/// body outgrows `ServiceConfiguration.maxResponseBytes`, whatever limit or `k` the client asked for.
///
/// Handlers charge what an item will add to the body (its serialized size, or a close upper bound
/// where serializing twice would cost more than it saves) and cut the answer short, with a cursor or
/// a flag, at the first item that does not fit.
struct ResponseBudget {
    private(set) var remaining: Int

    /// - Parameter bytes: The whole budget; a few hundred bytes of envelope need not be charged.
    init(bytes: Int) {
        self.remaining = bytes
    }

    /// Takes `bytes` if they fit. Returns false, taking nothing, if they do not.
    mutating func take(_ bytes: Int) -> Bool {
        guard bytes <= self.remaining else { return false }
        self.remaining -= bytes
        return true
    }
}

extension CarmaService {
    /// A fresh budget for one response.
    var responseBudget: ResponseBudget {
        ResponseBudget(bytes: self.configuration.maxResponseBytes)
    }
}
