#if canImport(Glibc)
import Glibc
#endif

/// A short hash that tells one model's weights from another's, for the identity stored with the
/// meanings (`SentenceEncoder.identity`): a store started with another model recomputes them.
///
/// FNV-1a (64-bit) over `config.json`, `carma.json` and `vocab.txt` whole, and over
/// `model.safetensors`' header (every tensor's name, shape and offsets) and one 8-byte word in every
/// 512 of its data: two trainings of one shape differ in nearly every word, and a sample keeps this
/// at a few milliseconds for a 130 MB file, in debug builds too.
enum ModelFingerprint {
    static func of(directory: String) throws(EmbeddingModelError) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        for file in ["config.json", "carma.json", "vocab.txt"] {
            do {
                mix(try ModelFile.read(directory + "/" + file, maxBytes: 16 << 20))
            } catch {
                guard case .missingFile = error else { throw error }
            }
            mix([0])
        }
        let path = directory + "/model.safetensors"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT ? .missingFile(path) : .unreadable(path, errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .unreadable(path, errno: errno) }
        let size = Int(status.st_size)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        var headerEnd = 8
        while offset < size {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, min($0.count, size - offset), off_t(offset)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .unreadable(path, errno: count < 0 ? errno : EIO) }
            if offset == 0, count >= 8 {
                var length = 0
                for index in 0..<8 { length |= Int(buffer[index]) << (8 * index) }
                headerEnd = 8 + min(max(length, 0), size)
            }
            var at = 0
            while at < count {
                if offset + at < headerEnd {
                    // The header, byte by byte.
                    let end = min(count, headerEnd - offset)
                    mix(buffer[at..<end])
                    at = end
                } else {
                    mix(buffer[at..<min(at + 8, count)])
                    at += 512
                }
            }
            offset += count
        }
        mix(withUnsafeBytes(of: UInt64(size).littleEndian, Array.init))
        return String(hash, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - self.count)) + self
    }
}
