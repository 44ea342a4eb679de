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

    /// Makes `path` read-only for everything opened from now on, by bind-mounting it read-only over
    /// itself (a file system with files open for writing cannot be remounted read-only). Undo with
    /// `unmount`.
    public static func makeReadOnly(_ path: String) throws {
        guard run("/bin/mount", ["--bind", path, path]) == 0, run("/bin/mount", ["-o", "remount,bind,ro", path]) == 0 else {
            throw ClientError("cannot bind-mount \(path) read-only (the test needs root)")
        }
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
