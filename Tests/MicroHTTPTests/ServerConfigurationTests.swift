import Testing

@testable import MicroHTTP

@Suite("Server configuration")
struct ServerConfigurationTests {
    @Test("the default connection limit leaves the store its descriptors, and is at most 10,000")
    func connectionLimitFromOpenFiles() {
        #expect(ServerConfiguration.defaultMaxConnections(openFileLimit: 400, threads: 2) == 136)
        #expect(ServerConfiguration.connectionCeiling(openFileLimit: 400, threads: 2) == 136)
        #expect(ServerConfiguration.defaultMaxConnections(openFileLimit: 1024, threads: 4) == 752)
        #expect(ServerConfiguration.defaultMaxConnections(openFileLimit: 1 << 20, threads: 2) == 10_000)
        #expect(ServerConfiguration.connectionCeiling(openFileLimit: 1 << 20, threads: 2) == (1 << 20) - 264)
        // Too few descriptors for any connection: the ceiling says so (carmad refuses to start).
        #expect(ServerConfiguration.connectionCeiling(openFileLimit: 200, threads: 2) == 0)
    }

    @Test("raising the open file limit leaves the soft limit at the hard one")
    func openFileLimit() {
        let limits = System.raiseOpenFileLimit()
        #expect(limits.now == limits.hard)
        #expect(limits.before <= limits.now)
        #expect(System.raiseOpenFileLimit().before == limits.hard)
    }

    @Test(
        "loopback addresses are told from the others; names are not addresses",
        arguments: [
            ("127.0.0.1", true), ("127.1.2.3", true), ("::1", true), ("::ffff:127.0.0.1", true),
            ("0.0.0.0", false), ("::", false), ("10.0.0.1", false), ("128.0.0.1", false), ("::2", false),
            ("::ffff:10.0.0.1", false), ("fe80::1", false), ("localhost", nil), ("", nil), ("127.0.0.1 ", nil),
        ] as [(String, Bool?)])
    func loopback(_ address: String, _ expected: Bool?) {
        #expect(System.isLoopback(address: address) == expected)
    }
}
