import FragmentCore
import CarmaTesting
import Foundation
import Testing

@testable import FragmentStore

/// The backup's pieces without a server: the manifest format, the cuts of the logs, and a backup
/// of an open store restored by opening a store on it.
@Suite("Backup")
struct BackupTests {
    static func record(_ id: String, sequence: UInt64) -> [UInt8] {
        let body = Array("{\"id\":\"\(id)\"}".utf8)
        return LogRecord.encode(kind: .put, id: id, version: sequence, sequence: sequence, body: body, bodyChecksum: CRC32C.checksum(body))
    }

    @Test("a manifest reads back as written; a changed byte or a foreign path is refused")
    func manifestRoundTrip() throws {
        let manifest = BackupManifest(
            startedAt: Timestamp(milliseconds: 1_800_000_000_000), finishedAt: Timestamp(milliseconds: 1_800_000_001_000), dataDirectory: "/d",
            redundancyDirectory: "/r",
            registry: .init(path: BackupManifest.registryPath, bytes: 10, checksum: 7, schemaVersion: 3, fragments: 2, appliedPrimary: "1:0", appliedRedundancy: nil),
            segments: [.init(path: "data/segments/00000001.seg", bytes: 5, checksum: 9, records: 1, damaged: 0, maxSequence: 4)])
        let bytes = manifest.encode()
        #expect(try BackupManifest.decode(bytes).get() == manifest)
        var changed = bytes
        changed[20] ^= 1
        #expect(throws: ManifestProblem.self) { try BackupManifest.decode(changed).get() }
        for path in ["../etc/passwd", "data/segments/../../x.seg", "data/segments/0000000G.seg", "data/segments/00000000.seg", "data/registry.sqlite3"] {
            #expect(!BackupManifest.isSegmentPath(path), "\(path)")
        }
        var foreign = manifest
        foreign.segments[0].path = "data/segments/../../x.seg"
        #expect(throws: ManifestProblem.self) { try BackupManifest.decode(foreign.encode()).get() }
    }

    @Test("the segment being written is copied up to its last whole record; the redundancy log stops at the primary copy's sequence")
    func cuts() {
        let whole = Self.record("a", sequence: 1) + Self.record("b", sequence: 3)
        let torn = whole + Array(Self.record("c", sequence: 5).prefix(30))
        #expect(StoreBackup.upToLastRecord(torn) == whole)
        #expect(StoreBackup.count(whole).records == 2 && StoreBackup.count(whole).maxSequence == 3)

        let redundancy = Self.record("a", sequence: 2) + Self.record("b", sequence: 4) + Self.record("c", sequence: 6)
        let second = Self.record("a", sequence: 2).count + Self.record("b", sequence: 4).count
        // Primary copy ends at sequence 3: the copy of b (4) stays, that of c (6) goes.
        let cut = StoreBackup.RedundancyCut(guaranteed: LogLocation(segment: 1, offset: 0), limit: 4)
        #expect(cut.end(of: redundancy, segment: 1) == second)
        // Records appended before the backup began are kept whatever their sequence.
        let early = StoreBackup.RedundancyCut(guaranteed: LogLocation(segment: 1, offset: UInt64(redundancy.count)), limit: 0)
        #expect(early.end(of: redundancy, segment: 1) == nil)
        #expect(cut.end(of: redundancy, segment: 2) == second)
    }

    @Test("a backup of an open store, opened as a store, has every fragment; a second one keeps the sealed segments and verifies")
    func backupOfOpenStore() throws {
        let test = try TestStore(cacheBytes: 0)
        let target = TemporaryDirectory("backup-unit")
        defer { target.remove() }
        var configuration = TestStore.configuration(test.directory.path, cacheBytes: 0)
        configuration.segmentBytes = 4096
        test.store.close()
        test.store = try FragmentStore(configuration: configuration, logger: .init(label: "test"))
        for index in 0..<60 { try test.put("f\(index)", String(repeating: "content \(index) ", count: 20), tags: ["b"]) }
        let first = try StoreBackup.take(from: configuration, to: target.path)
        #expect(first.segmentsCopied > 4 && first.segmentsReused == 0 && first.fragments != nil)
        for index in 60..<70 { try test.put("f\(index)", "later \(index)") }
        // The registry follows the logs behind the acknowledgement: without this wait a loaded machine
        // can take the snapshot before any row is applied, and the restored store then rebuilds its
        // registry from the logs (histories say `reindexed`, not `created`).
        test.store.flush()
        let second = try StoreBackup.take(from: configuration, to: target.path)
        #expect(second.segmentsReused > 0 && second.segmentsCopied < first.segmentsCopied)
        let verification = StoreBackup.verify(target.path)
        #expect(verification.isIntact, "\(verification.problems)")
        #expect(verification.records == second.records)

        let restored = try FragmentStore(
            configuration: StoreConfiguration(dataDirectory: "\(target.path)/data", redundancyDirectory: "\(target.path)/redundancy", cacheBytes: 0),
            logger: .init(label: "restored"))
        defer { restored.close() }
        for index in 0..<70 {
            guard case .fragment = restored.read("f\(index)") else {
                Issue.record("f\(index) not restored")
                continue
            }
        }
        #expect(try restored.history("f0")?.first?.kind == "created")
    }

    @Test("a backup into the store's own directory, or of something that is not a store, is refused")
    func refusals() throws {
        let test = try TestStore()
        try test.put("a", "x")
        let configuration = TestStore.configuration(test.directory.path)
        #expect(throws: BackupError.self) { try StoreBackup.take(from: configuration, to: "\(test.directory.path)/segments/backup") }
        #expect(throws: BackupError.self) { try StoreBackup.take(from: configuration, to: test.directory.path) }
        let empty = TemporaryDirectory("not-a-store")
        defer { empty.remove() }
        #expect(throws: BackupError.self) { try StoreBackup.take(from: TestStore.configuration(empty.path), to: "\(empty.path)-backup") }
        #expect(!StoreBackup.verify(empty.path).isIntact)
    }
}
