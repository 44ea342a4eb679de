import DreamEngine
import FragmentCore
import MicroHTTP

/// Everything `carmad` can be told, with the defaults a fresh install runs with.
public struct ServiceConfiguration: Sendable {
    public var server: ServerConfiguration
    /// The limits on a fragment both backends enforce; the service checks query vectors against them.
    public var limits: FragmentLimits
    public var dream: DreamConfiguration
    /// When set, `PUT`, `DELETE` and `POST /dream` need `Authorization: Bearer <token>`.
    public var authToken: String?
    /// When true, reads and `/metrics` need the token too.
    public var protectReads: Bool
    /// Budget for the body of one list, query, context, history or topology response: past it the
    /// answer is cut short (a cursor, `truncated`, or content left out and flagged) instead of growing
    /// with what a client asked for (`/topology?limit=10000` over many links ran to gigabytes).
    public var maxResponseBytes: Int

    /// - Parameters:
    ///   - server: Listening and client limits; see `ServerConfiguration`.
    ///   - limits: Default `FragmentLimits()`; give the store's.
    ///   - dream: Dream-cycle schedule, budgets and politeness; see `DreamConfiguration`.
    ///   - authToken: Default none: every endpoint is open.
    ///   - protectReads: Default false.
    ///   - maxResponseBytes: Default 8 MiB: sixteen 512 KiB fragments, or a topology of ~40,000 edges.
    public init(
        server: ServerConfiguration, limits: FragmentLimits = FragmentLimits(), dream: DreamConfiguration = DreamConfiguration(),
        authToken: String? = nil, protectReads: Bool = false, maxResponseBytes: Int = 8 << 20
    ) {
        self.server = server
        self.limits = limits
        self.dream = dream
        self.authToken = authToken
        self.protectReads = protectReads
        self.maxResponseBytes = maxResponseBytes
    }
}
