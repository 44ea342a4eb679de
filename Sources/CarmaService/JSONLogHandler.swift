import Foundation
import FragmentCore
import Logging

/// A swift-log handler writing one JSON object per line to standard error: `ts`, `level`, `label`,
/// `msg`, then the metadata keys as they are.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(event.level)\",\"label\":\(Self.quote(self.label)),\"msg\":\(Self.quote(event.message.description))"
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            line += ",\(Self.quote(key)):\(Self.quote(merged[key]!.description))"
        }
        line += "}\n"
        // write(2), not FileHandle.write, which traps when the write fails (a full disk under the
        // log file must not take the service down).
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        Timestamp.now.rfc3339
    }
}
