/// How the HTTP server listens and what it tolerates from clients.
public struct ServerConfiguration: Sendable {
    /// Address to bind; `0.0.0.0` or `::` for every interface.
    public var host: String
    /// TCP port; 0 picks a free one (read it back from `HTTPServer.port`).
    public var port: Int
    /// Worker threads in libmicrohttpd's pool, each with its own epoll loop.
    public var threads: Int
    /// Largest request body accepted; a larger `Content-Length` is answered 413 before the body is read.
    public var maxBodyBytes: Int
    /// Seconds of inactivity after which a connection is closed (libmicrohttpd's default, 0, never closes).
    public var connectionTimeoutSeconds: Int
    /// Open connections in total; past it new ones are refused at accept.
    public var maxConnections: Int
    /// Open connections from one IP address; 0 means no per-address limit.
    public var maxConnectionsPerIP: Int
    /// Memory per connection for the request line and headers; larger heads get 431. libmicrohttpd
    /// zeroes this pool for every request on a kept-alive connection, so it is a per-request cost:
    /// 64 KiB spent a quarter of the CPU in memset at 60k requests/s.
    public var maxHeaderBytes: Int
    /// How long a graceful stop waits for requests in flight before answering them 503.
    public var drainTimeout: Duration

    /// - Parameters:
    ///   - host: Default `127.0.0.1`, so nothing is exposed by accident.
    ///   - port: Default 8080.
    ///   - threads: Default: the number of online processors.
    ///   - maxBodyBytes: Default 1 MiB.
    ///   - connectionTimeoutSeconds: Default 30.
    ///   - maxConnections: Default 1000; carmad derives its default from the open file limit instead
    ///     (`defaultMaxConnections(openFileLimit:)`).
    ///   - maxConnectionsPerIP: Default 0, no per-address limit (a reverse proxy is one address).
    ///   - maxHeaderBytes: Default 8 KiB (Apache's limit per header line; nginx's per request line).
    ///   - drainTimeout: Default 10 seconds.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        threads: Int = System.processorCount,
        maxBodyBytes: Int = 1 << 20,
        connectionTimeoutSeconds: Int = 30,
        maxConnections: Int = 1000,
        maxConnectionsPerIP: Int = 0,
        maxHeaderBytes: Int = 8 << 10,
        drainTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.threads = threads
        self.maxBodyBytes = maxBodyBytes
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
        self.maxHeaderBytes = maxHeaderBytes
        self.drainTimeout = drainTimeout
    }
}

extension ServerConfiguration {
    /// Descriptors kept free for everything that is not a client connection: the listening socket,
    /// each pool thread's epoll and wake-up descriptors, the store's registry, logs and segment files,
    /// and the payload files a read or a group commit opens for a moment.
    public static func reservedDescriptors(threads: Int) -> Int {
        256 + 4 * threads
    }

    /// The most connections a process with `openFileLimit` descriptors can hold without running out
    /// of descriptors for its own files (0 if the limit is too low for any).
    public static func connectionCeiling(openFileLimit: Int, threads: Int = System.processorCount) -> Int {
        max(0, openFileLimit - self.reservedDescriptors(threads: threads))
    }

    /// The default connection limit under `openFileLimit`: as many as the descriptors allow, up to
    /// 10,000 (each connection holds `maxHeaderBytes` + 2 KiB of libmicrohttpd pool: 100 MiB at 10,000).
    public static func defaultMaxConnections(openFileLimit: Int, threads: Int = System.processorCount) -> Int {
        max(1, min(10_000, self.connectionCeiling(openFileLimit: openFileLimit, threads: threads)))
    }
}

/// Facts about the machine the server runs on.
public enum System {
    /// Online processors, at least 1.
    public static var processorCount: Int {
        max(1, sysconfProcessors())
    }

    /// Raises the soft limit on open descriptors to the hard limit, so that the connection limit can
    /// be derived from what the process may really open (the soft limit is often 1,024).
    /// - Returns: The soft limit before and after, and the hard limit.
    public static func raiseOpenFileLimit() -> (before: Int, now: Int, hard: Int) {
        raiseOpenFileLimitToHard()
    }

    /// Whether `address`, a numeric IPv4 or IPv6 address, is a loopback address (127.0.0.0/8, ::1,
    /// or 127.x mapped into IPv6); nil when it is not a numeric address at all.
    public static func isLoopback(address: String) -> Bool? {
        loopbackAddress(address)
    }
}
