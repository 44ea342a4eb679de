import ArgumentParser
import Foundation
import FragmentCore
import FragmentStore

/// `carmad backup`: an online backup of a store, beside the carmad serving it, and its verification.
///
/// Exit status: 0 the backup was written (or verified intact); 1 it could not be written, or the
/// verification found a problem (each named on standard error); 2 a usage error.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up a store, running or not, to a directory; or verify such a backup.",
        discussion: """
            carmad backup --data-dir D [--redundancy-dir R] --to DIR
                Copies a consistent backup of the store into DIR while carmad keeps serving: every write
                acknowledged before the backup began is in it. DIR/data and DIR/redundancy are a data
                directory and a redundancy directory that carmad starts on. Run it again with the same
                DIR for an incremental backup: sealed segments already there (checksum verified) are kept.
            carmad backup --verify DIR
                Re-reads every file of the backup and checks it against DIR/MANIFEST: each file's size and
                CRC32C, every record's checksums, the registry's SQLite integrity check.
            Exit status: 0 done (or intact), 1 failed (or damaged: each problem names its file), 2 usage.
            """)

    @Option(help: "The store's --data-dir (env CARMA_DATA_DIR). Default ./carma-data.")
    var dataDir: String?

    @Option(help: "The store's --redundancy-dir (env CARMA_REDUNDANCY_DIR). Default <data-dir>/redundancy.")
    var redundancyDir: String?

    @Option(help: "The backup directory to write (created if missing).")
    var to: String?

    @Option(help: "A backup directory to verify instead.")
    var verify: String?

    func validate() throws {
        switch (self.to, self.verify) {
        case (nil, nil): throw ValidationError("give --to DIR (take a backup) or --verify DIR (check one)")
        case (.some, .some): throw ValidationError("--to and --verify do not go together")
        case (.some(let to), nil) where to.isEmpty: throw ValidationError("--to needs a directory")
        case (nil, .some(let verify)) where verify.isEmpty: throw ValidationError("--verify needs a directory")
        default: break
        }
    }

    func run() throws {
        if let directory = self.verify {
            try Self.verify(directory)
            return
        }
        let environment = ProcessInfo.processInfo.environment
        let dataDirectory = self.dataDir ?? environment["CARMA_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./carma-data"
        let redundancy = self.redundancyDir ?? environment["CARMA_REDUNDANCY_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        let configuration = StoreConfiguration(dataDirectory: dataDirectory, redundancyDirectory: redundancy)
        let clock = ContinuousClock.now
        let summary: BackupSummary
        do {
            summary = try StoreBackup.take(from: configuration, to: self.to!)
        } catch {
            Self.fail("backup failed: \(error)")
        }
        let seconds = (ContinuousClock.now - clock) / .milliseconds(1) / 1000
        for line in summary.unreadable {
            FileHandle.standardError.write(Data("warning: segment not readable, left out (the store reports its fragments blank): \(line)\n".utf8))
        }
        let registry = summary.registryBytes.map { "registry snapshot \(Self.mebibytes($0)) (\(summary.fragments ?? 0) fragments)" } ?? "no registry (a carmad started on the backup rebuilds it from the logs)"
        print(
            "backup of \(dataDirectory) in \(self.to!), taken from \(summary.startedAt.rfc3339): "
                + "\(summary.segmentsCopied) segments copied (\(Self.mebibytes(summary.bytesCopied))), "
                + "\(summary.segmentsReused) kept from the previous backup (\(Self.mebibytes(summary.bytesReused))), "
                + "\(summary.records) records, \(registry), \(String(format: "%.2f", seconds)) s")
    }

    static func verify(_ directory: String) throws {
        let result = StoreBackup.verify(directory)
        for note in result.notes { print("note: \(note)") }
        guard result.isIntact else {
            for problem in result.problems { FileHandle.standardError.write(Data("damaged: \(problem)\n".utf8)) }
            fail("the backup in \(directory) is damaged: \(result.problems.count) problems")
        }
        print(
            "the backup in \(directory) is intact: \(result.files) files, \(Self.mebibytes(result.bytes)), \(result.records) records verified"
                + (result.startedAt.map { ", taken from \($0.rfc3339)" } ?? ""))
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(1)
    }

    static func mebibytes(_ bytes: Int64) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
