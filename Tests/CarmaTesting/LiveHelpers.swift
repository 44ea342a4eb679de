import CarmaClient
import CarmaJSON
import Foundation

extension CarmaAPI {
    /// Starts a dream cycle (or joins the running one) and waits for its report.
    public func dream(budget: JSONValue? = nil, timeoutSeconds: Double = 300) throws -> JSONValue {
        let response = try self.request("POST", "/dream", json: budget)
        guard response.status == 202, let id = try response.json()["id"]?.intValue else {
            throw ClientError("POST /dream answered \(response.status): \(response.text)")
        }
        return try self.waitForCycle(id, timeoutSeconds: timeoutSeconds)
    }

    /// Polls a cycle's report until it is no longer running.
    public func waitForCycle(_ id: Int, timeoutSeconds: Double = 300) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            let report = try self.json("/dream/\(id)")
            if report["state"] != "running" { return report }
            usleep(50_000)
        }
        throw ClientError("cycle \(id) still running after \(timeoutSeconds) s")
    }

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
