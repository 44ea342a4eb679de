import CarmaClient
import CarmaJSON
import Foundation

extension CarmaAPI {
    /// Stores fragments `prefix0 … prefix(n-1)` with distinct, checkable content.
    public func seed(_ count: Int, prefix: String = "f", size: Int = 300) throws -> [String: String] {
        var contents: [String: String] = [:]
        for index in 0..<count {
            let id = "\(prefix)\(index)"
            let content = "Fragment \(id): " + String(repeating: "lorem ipsum \(index) ", count: max(1, size / 16))
            let response = try self.put(id, ["content": .string(content), "links": [.string("\(prefix)\((index + 1) % count)")], "tags": ["seed"]])
            guard response.status == 201 else { throw ClientError("PUT \(id): \(response.status) \(response.text)") }
            contents[id] = content
        }
        return contents
    }
}

/// Flags that keep the dream engine from starting cycles on its own, so a test decides when.
public let manualDreamOnly = ["--dream-interval", "3600", "--dream-max-interval", "3600", "--dream-idle-delay", "100000"]
