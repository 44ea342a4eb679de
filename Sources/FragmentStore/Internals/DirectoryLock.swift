#if canImport(Glibc)
import FragmentCore
import Glibc
#endif

/// An exclusive lock on a data directory (`flock` on its `LOCK` file), held while the store is open,
/// so that a second process refuses to start instead of writing the same logs. The kernel releases
/// it when the process dies, so a crash never leaves a stale lock behind.
final class DirectoryLock: Sendable {
    private let descriptor: Int32

    init(path: String) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .from(FileError(errno: errno, "open", path), doing: "lock the data directory") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? FileSystem.read(path)).map { String(decoding: $0, as: UTF8.self).trimmingWhitespace } ?? ""
            close(fd)
            throw StoreError(
                .locked,
                "another process (\(holder.isEmpty ? "pid unknown" : "pid " + holder)) has the data directory open (\(path)); stop it first")
        }
        // Who holds it, for the message above; informational only.
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.descriptor = fd
    }

    /// Lets go of the lock before the object goes away (a command that hands the directory on).
    func release() {
        flock(self.descriptor, LOCK_UN)
    }

    deinit {
        close(self.descriptor)
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(self.drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
