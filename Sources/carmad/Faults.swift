import ArgumentParser
import CarmaFaults
import Foundation

/// `carmad faults`: damage a stopped store on purpose, to watch it heal (and for the experiment and
/// the tests). Refuses while a carmad holds the data directory.
struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Damage a stopped store on purpose: corrupt chosen fragments' records, drop segments, tear the tail.",
        discussion: """
            Actions:
              zero ID...        overwrite every record of these fragments with zeros (read as checksum_mismatch)
              flip ID...        flip one bit in the body of every record of these fragments (checksum_mismatch)
              drop-segment N    delete segment N (every fragment whose record lived there turns missing)
              cut-tail BYTES    cut BYTES off the newest segment (a write torn by a crash)
              list ID...        show where each fragment's records are
            --log primary (default), redundancy or both chooses the log.
            Start carmad afterwards: reads answer flagged blanks, and a dream cycle (POST /dream) repairs them.
            """)

    @Option(help: "The store's --data-dir.")
    var dataDir: String = "./carma-data"

    @Option(help: "The store's --redundancy-dir. Default <data-dir>/redundancy.")
    var redundancyDir: String?

    @Option(help: "Which log: primary, redundancy or both.")
    var log: String = "primary"

    @Argument(help: "zero, flip, drop-segment, cut-tail or list, then its arguments.")
    var action: [String]

    func run() throws {
        let disk = DiskDamage(dataDirectory: self.dataDir, redundancyDirectory: self.redundancyDir)
        let volumes: [DiskDamage.Volume]
        switch self.log {
        case "primary": volumes = [.primary]
        case "redundancy": volumes = [.redundancy]
        case "both": volumes = [.primary, .redundancy]
        default: throw ValidationError("--log is primary, redundancy or both")
        }
        guard let verb = self.action.first else { throw ValidationError("name an action: zero, flip, drop-segment, cut-tail or list") }
        // No store there is an error, not "zeroed 0 records" (issue 28: run without --data-dir in
        // the wrong directory, it exited 0).
        var isDirectory: ObjCBool = false
        let segments = "\(self.dataDir)/segments"
        guard FileManager.default.fileExists(atPath: segments, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("no store at \(self.dataDir) (no segments/ directory): give the store's --data-dir")
        }
        let arguments = Array(self.action.dropFirst())
        if verb != "list" && disk.storeIsRunning {
            throw ValidationError("a carmad has \(self.dataDir) open; stop it first (damage to a running store: see docs/configuration.md)")
        }
        for volume in volumes {
            switch verb {
            case "zero", "flip":
                guard !arguments.isEmpty else { throw ValidationError("\(verb) needs fragment ids") }
                let saved = verb == "zero" ? try disk.zero(Set(arguments), in: volume) : try disk.flip(Set(arguments), in: volume)
                print("\(volume.rawValue): \(verb == "zero" ? "zeroed" : "flipped a bit in") \(saved.count) records of \(Set(saved.map(\.0.id)).count) fragments")
            case "drop-segment":
                guard arguments.count == 1, let number = UInt32(arguments[0]) else { throw ValidationError("drop-segment takes one segment number") }
                try disk.dropSegment(number, in: volume)
                print("\(volume.rawValue): deleted segment \(number)")
            case "cut-tail":
                guard arguments.count == 1, let bytes = Int(arguments[0]), bytes > 0 else { throw ValidationError("cut-tail takes a byte count") }
                try disk.cutTail(bytes, in: volume)
                print("\(volume.rawValue): cut \(bytes) bytes off the newest segment")
            case "list":
                let records = disk.records(volume)
                for id in arguments {
                    for record in records[id] ?? [] {
                        print("\(volume.rawValue) \(id) version \(record.version) kind \(record.kind) segment \(record.segment) offset \(record.offset) length \(record.length)")
                    }
                }
            default:
                throw ValidationError("unknown action '\(verb)': zero, flip, drop-segment, cut-tail or list")
            }
        }
    }
}
