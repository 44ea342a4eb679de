import Foundation

/// A fresh directory under the system's temporary directory, removed with `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "carma-test") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        self.path = "\(base)/\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }

    /// Every file under the directory whose name ends with `suffix`, sorted.
    public func files(endingWith suffix: String, under subdirectory: String = "") -> [String] {
        let root = subdirectory.isEmpty ? self.path : "\(self.path)/\(subdirectory)"
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [String] = []
        while let name = enumerator.nextObject() as? String {
            if name.hasSuffix(suffix) { found.append("\(root)/\(name)") }
        }
        return found.sorted()
    }
}
