#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole model file, bounded in size, with plain POSIX calls.
enum ModelFile {
    static func read(_ path: String, maxBytes: Int) throws(EmbeddingModelError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw errno == ENOENT ? .missingFile(path) : .unreadable(path, errno: errno)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .unreadable(path, errno: errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .malformed(path, "not a regular file") }
        let size = Int(status.st_size)
        guard size <= maxBytes else { throw .malformed(path, "\(size) bytes, more than the \(maxBytes) accepted") }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .unreadable(path, errno: count < 0 ? errno : EIO) }
            done += count
        }
        return bytes
    }

    static func text(_ path: String, maxBytes: Int) throws(EmbeddingModelError) -> String {
        let bytes = try read(path, maxBytes: maxBytes)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed(path, "not UTF-8") }
        return text
    }
}
