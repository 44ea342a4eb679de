import CarmaEmbedding
import FragmentCore

/// How a carmad node runs on PostgreSQL.
public struct ClusterConfiguration: Sendable {
    /// `postgresql://user@host:port/db?…` (libpq's URL form; several hosts and
    /// `target_session_attrs=read-write` for a replicated setup).
    public var databaseURL: String
    /// Connections this node opens at most.
    public var poolSize: Int
    /// How long one database call may take, waiting for a connection included; past it the database
    /// counts as unavailable (reads from the cache or a stub, writes 503).
    public var timeout: Duration
    /// This node's name, in repair leases, cycle reports and `application_name`.
    public var nodeName: String
    /// How long a claimed repair stays with this node; after it another node may take it.
    public var repairLease: Duration
    /// Where the redundancy table goes when the schema is first created (nil: the default tablespace).
    public var redundancyTablespace: String?
    /// Bytes of served bodies this node keeps.
    public var cacheBytes: Int
    public var limits: FragmentLimits
    public var retention: Retention
    /// How often scheduled dream cycles run: one node scrubs per interval, whichever comes first.
    public var scrubInterval: Duration
    /// The built-in sentence-embedding model; nodes share the embedding work (nil: words only).
    public var encoder: SentenceEncoder?
    /// How long after its start a cycle still marked running may be taken for a node that died in
    /// it: its time budget plus a repair lease. Past it another node marks it interrupted.
    public var cycleLease: Duration

    public init(
        databaseURL: String, poolSize: Int = 8, timeout: Duration = .seconds(2), nodeName: String, repairLease: Duration = .seconds(60),
        redundancyTablespace: String? = nil, cacheBytes: Int = 64 << 20, limits: FragmentLimits = FragmentLimits(),
        retention: Retention = Retention(), scrubInterval: Duration = .seconds(300), encoder: SentenceEncoder? = nil,
        cycleLease: Duration? = nil
    ) {
        self.cycleLease = cycleLease ?? .seconds(300) + repairLease
        self.databaseURL = databaseURL
        self.poolSize = poolSize
        self.timeout = timeout
        self.nodeName = nodeName
        self.repairLease = repairLease
        self.redundancyTablespace = redundancyTablespace
        self.cacheBytes = cacheBytes
        self.limits = limits
        self.retention = retention
        self.scrubInterval = scrubInterval
        self.encoder = encoder
    }

    /// The URL without its password, for logs.
    public var redactedURL: String {
        guard let scheme = self.databaseURL.range(of: "://"), let at = self.databaseURL[scheme.upperBound...].firstIndex(of: "@") else {
            return self.databaseURL
        }
        let credentials = self.databaseURL[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return self.databaseURL }
        return String(self.databaseURL[..<colon]) + ":***" + String(self.databaseURL[at...])
    }
}
