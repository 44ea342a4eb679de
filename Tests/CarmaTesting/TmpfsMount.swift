import CarmaClient
import Foundation

/// A small tmpfs, to fill a disk for real. Needs root (the test machines run tests as root).
public enum TmpfsMount {
    public static func mount(at path: String, size: String) throws {
        let status = run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        if status != 0 {
            throw ClientError("cannot mount a tmpfs at \(path) (exit \(status)); the disk-full tests need root")
        }
    }

    public static func unmount(_ path: String) {
        _ = run("/bin/umount", ["-l", path])
    }

    /// Remounts read-only or read-write.
    public static func remount(_ path: String, readOnly: Bool) throws {
        let status = run("/bin/mount", ["-o", readOnly ? "remount,ro" : "remount,rw", path])
        if status != 0 { throw ClientError("cannot remount \(path)") }
    }

    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            return -1
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
