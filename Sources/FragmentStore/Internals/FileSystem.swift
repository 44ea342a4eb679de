#if canImport(Glibc)
import FragmentCore
import Glibc
#endif

// The one file that makes file-system calls. It turns errno into FileError.

/// A failed file-system call.
struct FileError: Error, CustomStringConvertible {
    enum Kind {
        case notFound
        case noSpace
        case readOnly
        /// Out of descriptors or memory, interrupted, would block, or not permitted: the data may be
        /// intact, so this never counts as a loss (the request is answered 503 and retried).
        case transient
        /// The device failed to read or write (EIO) or the path is not a file: the data is gone as
        /// far as this process can tell.
        case io
        case other
    }

    let kind: Kind
    let errno: Int32
    let operation: String
    let path: String

    init(errno code: Int32, _ operation: String, _ path: String) {
        switch code {
        case ENOENT, ENOTDIR: self.kind = .notFound
        case ENOSPC, EDQUOT: self.kind = .noSpace
        case EROFS: self.kind = .readOnly
        case EACCES, EPERM: self.kind = operation == "read" || operation == "open" ? .transient : .readOnly
        case EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR, ENOBUFS: self.kind = .transient
        case EIO, EISDIR, ENXIO, EBADMSG: self.kind = .io
        default: self.kind = .other
        }
        self.errno = code
        self.operation = operation
        self.path = path
    }

    var description: String {
        "\(self.operation) \(self.path): \(String(cString: strerror(self.errno)))"
    }
}

enum FileSystem {
    /// Reads a whole file.
    static func read(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(errno: errno, "open", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(errno: errno, "stat", path) }
        return try readFully(fd, at: 0, count: Int(info.st_size), path: path)
    }

    /// Reads `count` bytes at `offset` (fewer at the end of the file).
    static func read(_ path: String, at offset: UInt64, count: Int) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(errno: errno, "open", path) }
        defer { close(fd) }
        return try readFully(fd, at: offset, count: count, path: path)
    }

    /// `pread` until `count` bytes are read or the file ends.
    private static func readFully(_ fd: Int32, at offset: UInt64, count: Int, path: String) throws(FileError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        let failure: Int32? = bytes.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                done += n
            }
            return nil
        }
        if let failure { throw FileError(errno: failure, "read", path) }
        if done < count { bytes.removeLast(count - done) }
        return bytes
    }


    /// Writes all of `bytes` at `offset`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(FileError) {
        var failure: FileError?
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = FileError(errno: errno, "write", path)
                    return
                }
                done += n
            }
        }
        if let failure { throw failure }
    }

    /// Opens (creating when asked) a file for reading and writing at explicit offsets.
    static func openReadWrite(_ path: String, create: Bool) throws(FileError) -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard fd >= 0 else { throw FileError(errno: errno, create ? "create" : "open", path) }
        return fd
    }

    /// Opens a file for reading at explicit offsets.
    static func openRead(_ path: String) throws(FileError) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(errno: errno, "open", path) }
        var info = stat()
        // A directory (or anything but a regular file) where a segment should be cannot be read.
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw FileError(errno: EISDIR, "open", path)
        }
        return fd
    }

    /// Reads `count` bytes at `offset` of an open file (fewer at its end).
    static func read(_ fd: Int32, at offset: UInt64, count: Int, path: String) throws(FileError) -> [UInt8] {
        try readFully(fd, at: offset, count: count, path: path)
    }

    /// `fdatasync(2)`: the file's data (and its size) reach the disk.
    static func syncData(_ fd: Int32, path: String) throws(FileError) {
        guard fdatasync(fd) == 0 else { throw FileError(errno: errno, "fdatasync", path) }
    }

    /// Cuts a file to `length` bytes.
    static func truncate(_ fd: Int32, to length: UInt64, path: String) throws(FileError) {
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileError(errno: errno, "truncate", path) }
    }

    /// The size of an open file.
    static func size(of fd: Int32) -> Int64? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    static func closeDescriptor(_ fd: Int32) {
        close(fd)
    }

    /// Writes a new file durably: `<path>.partial` first, synced, then renamed over `path` and the
    /// directory synced, so that `path` is never seen half-written.
    static func writeDurably(_ path: String, _ bytes: [UInt8]) throws(FileError) {
        let partial = path + ".partial"
        unlink(partial)
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(errno: errno, "create", partial) }
        do throws(FileError) {
            if !bytes.isEmpty { try writeAll(fd, bytes, at: 0, path: partial) }
            guard fsync(fd) == 0 else { throw FileError(errno: errno, "fsync", partial) }
        } catch {
            close(fd)
            unlink(partial)
            throw error
        }
        close(fd)
        try move(partial, to: path)
        try syncDirectory(of: path)
    }

    /// `fsync(2)` of a file by name.
    static func syncFile(_ path: String) throws(FileError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(errno: errno, "open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(errno: errno, "fsync", path) }
    }

    /// The absolute path with symbolic links and `..` resolved; nil if it does not exist.
    /// The canonical path `path` would have, whether or not it exists yet: its deepest existing
    /// ancestor resolved (symbolic links and all), then the rest, `.` and `..` applied. Creates nothing.
    static func prospectivePath(_ path: String) -> String? {
        var absolute = path
        if !absolute.hasPrefix("/") {
            guard let cwd = getcwd(nil, 0) else { return nil }
            defer { free(cwd) }
            absolute = String(cString: cwd) + "/" + absolute
        }
        var existing = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var rest: [String] = []
        while true {
            let candidate = "/" + existing.joined(separator: "/")
            if let resolved = canonicalPath(candidate) {
                var components = resolved.split(separator: "/").map(String.init)
                for component in rest {
                    switch component {
                    case ".": continue
                    case "..": if !components.isEmpty { components.removeLast() }
                    default: components.append(component)
                    }
                }
                return "/" + components.joined(separator: "/")
            }
            guard let last = existing.popLast() else { return nil }
            rest.insert(last, at: 0)
        }
    }

    static func canonicalPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }




    static func move(_ from: String, to: String) throws(FileError) {
        guard rename(from, to) == 0 else { throw FileError(errno: errno, "rename", from) }
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func makeDirectory(_ path: String) throws(FileError) {
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            if errno == ENOENT {
                try makeParents(of: path)
                if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
            }
            throw FileError(errno: errno, "mkdir", path)
        }
    }

    static func makeParents(of path: String) throws(FileError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        try makeDirectory(String(path[..<slash]))
    }

    static func syncDirectory(of path: String) throws(FileError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(errno: errno, "open", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(errno: errno, "fsync", directory) }
    }



    /// Names in a directory, without `.` and `..`; empty if it cannot be read.
    static func list(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}
