@testable import ClusterStore
import FragmentCore

import Testing

@Suite("Cluster store pieces")
struct ClusterStoreUnitTests {
    @Test("text arrays survive the round trip through PostgreSQL's text form, quotes and backslashes included")
    func arrays() {
        let values = ["plain", "with space", "quote\"inside", "back\\slash", "comma,here", "{braces}", "", "日本語"]
        #expect(PGArray.parse(PGArray.literal(values)) == values)
        #expect(PGArray.parse("{}") == [])
        #expect(PGArray.parse("{a,b}") == ["a", "b"])
        #expect(PGArray.parse("{\"a\",NULL}") == nil)
        #expect(PGArray.parse("a,b") == nil)
        #expect(PGArray.parse("{\"unterminated}") == nil)
    }

    @Test("bytea cells decode from hex; anything malformed reads as nil, never as bytes")
    func bytea() {
        func row(_ text: String?) -> PGRow { PGRow(cells: [text.map { Array($0.utf8) }]) }
        #expect(row("\\x00ff7a").bytes(0) == [0x00, 0xFF, 0x7A])
        #expect(row("\\x").bytes(0) == [])
        #expect(row("\\x0").bytes(0) == nil)
        #expect(row("\\xzz").bytes(0) == nil)
        #expect(row("00ff").bytes(0) == nil)
        #expect(row(nil).bytes(0) == nil)
        #expect(row("12x").int(0) == nil)
        #expect(row("-42").int(0) == -42)
    }

    @Test("a registry row with a cell out of shape is refused, not half-read")
    func rows() {
        let good: [String?] = ["a", "3", "ok", "4294967295", "10", "5", "{b}", "{}", "1", "2", nil, nil, nil, nil, nil, nil, nil]
        let parsed = ClusterStore.row(PGRow(cells: good.map { $0.map { Array($0.utf8) } }))
        #expect(parsed?.id == "a")
        #expect(parsed?.checksum == UInt32.max)
        #expect(parsed?.links == ["b"])
        for (column, bad) in [(1, "0"), (1, "x"), (2, "lost"), (6, "b")] {
            var cells = good
            cells[column] = bad
            #expect(ClusterStore.row(PGRow(cells: cells.map { $0.map { Array($0.utf8) } })) == nil, "column \(column) = \(bad)")
        }
    }

    @Test("the node cache stays within its bytes, evicts the least recently used first, and a replaced entry is not evicted for its old slot")
    func cache() {
        // Four entries of 100 bytes fit (each also costs the LRU's per-slot overhead).
        let each = 100 + PayloadCache.slotOverhead
        var cache = NodeCache(capacity: 4 * each)
        func entry(_ version: UInt64, _ size: Int) -> NodeCache.Entry {
            NodeCache.Entry(version: version, status: .ok, checksum: 0, body: [UInt8](repeating: 1, count: size))
        }
        cache.set("a", entry(1, 100))
        cache.set("b", entry(1, 100))
        cache.set("a", entry(2, 100))
        cache.set("c", entry(1, 100))
        cache.set("d", entry(1, 100))
        #expect(cache.bytes == 4 * each)
        cache.set("e", entry(1, 100))
        #expect(cache.bytes == 4 * each)
        #expect(cache.use("b") == nil)
        #expect(cache.use("a")?.version == 2)
        cache.set("f", entry(1, 100))
        #expect(cache.use("a")?.version == 2, "a was used last, so c went first")
        #expect(cache.use("c") == nil)
        cache.set("huge", entry(1, 4 * each))
        #expect(cache.use("huge") == nil)
        #expect(NodeCache(capacity: 0).bytes == 0)
    }

    @Test("the change feed's mark moves over applied entries, waits at a gap, and passes it only after it has lasted")
    func feedPosition() {
        let follower = ChangeFollower()
        #expect(follower.accept([1, 2, 4]) == [1, 2, 4])
        #expect(follower.position.withLock { $0.low } == 2)
        #expect(follower.accept([1, 2, 4]).isEmpty)
        #expect(follower.accept([3, 4, 5]) == [3, 5])
        #expect(follower.position.withLock { $0.low } == 5)
        _ = follower.accept([7])
        follower.position.withLock { position in
            position.gap = (6, .now - .seconds(ChangeFollower.gapSeconds + 1))
            ChangeFollower.advance(&position)
        }
        #expect(follower.position.withLock { $0.low } == 7)
    }
}
