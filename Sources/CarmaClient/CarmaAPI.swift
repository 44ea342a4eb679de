import CarmaJSON
import Foundation

/// Calls to a CARMA server over one keep-alive connection, reconnecting once if the server closed it.
///
/// Not thread-safe: use one per thread.
public final class CarmaAPI {
    public let host: String
    public let port: Int
    public let token: String?
    /// The namespace whose routes `put`, `get`, `delete` and `scoped(_:)` use; `default` (the
    /// unprefixed routes) unless given. Every other call takes its path as it is.
    public let namespace: CarmaNamespace
    private var connection: HTTPConnection?
    private let timeoutSeconds: Int
    /// When set, the longest one call may take in all (connecting, sending, waiting, reading, and a
    /// retry on a fresh connection); past it the call fails with a `timedOut` error.
    public var callTimeout: Duration?
    /// When set, overrides `callTimeout` for the next calls: the instant by which they must end.
    public var deadline: ContinuousClock.Instant?

    public init(host: String = "127.0.0.1", port: Int, token: String? = nil, namespace: CarmaNamespace = .default, timeoutSeconds: Int = 60) {
        self.host = host
        self.port = port
        self.token = token
        self.namespace = namespace
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends a request with an optional JSON body; retries once on a fresh connection if the kept-alive
    /// one turned out to be closed.
    public func request(_ method: String, _ path: String, json: JSONValue? = nil, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        var allHeaders = headers
        var body: [UInt8]?
        if let json {
            body = json.bytes
            allHeaders.append(("Content-Type", "application/json"))
        }
        if let token, !allHeaders.contains(where: { $0.0.lowercased() == "authorization" }) {
            allHeaders.append(("Authorization", "Bearer \(token)"))
        }
        return try self.send(method, path, headers: allHeaders, body: body)
    }

    /// One call, retried once on a fresh connection if the kept-alive one turned out to be closed,
    /// but never after a timeout (the server may be acting on it) and never past the deadline.
    private func send(_ method: String, _ path: String, headers: [(String, String)], body: [UInt8]?) throws(ClientError) -> ClientResponse {
        let deadline = self.deadline ?? self.callTimeout.map { ContinuousClock.now.advanced(by: $0) }
        for attempt in 0..<2 {
            do throws(ClientError) {
                if let deadline, ContinuousClock.now >= deadline {
                    throw ClientError("timed out before the request could be sent", timedOut: true)
                }
                if self.connection?.isOpen != true {
                    self.connection = try HTTPConnection(host: self.host, port: self.port, timeoutSeconds: self.timeoutSeconds)
                }
                self.connection!.deadline = deadline
                return try self.connection!.request(method, path, headers: headers, body: body)
            } catch {
                self.connection?.close()
                self.connection = nil
                if attempt == 1 || error.timedOut { throw error }
            }
        }
        throw ClientError("unreachable")
    }

    /// Sends a request with a raw body (its headers name its type), retrying once on a fresh
    /// connection like `request`.
    public func raw(_ method: String, _ path: String, body: [UInt8], headers: [(String, String)]) throws(ClientError) -> ClientResponse {
        try self.send(method, path, headers: headers, body: body)
    }

    /// A fragment-scoped route (`/fragments/a`, `/query`, `/export`, ...) in this client's namespace.
    public func scoped(_ route: String) -> String {
        self.namespace.path(route)
    }

    public func put(_ id: String, _ fragment: JSONValue, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("PUT", self.scoped("/fragments/\(id)"), json: fragment, headers: headers)
    }

    public func get(_ id: String, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("GET", self.scoped("/fragments/\(id)"), headers: headers)
    }

    public func delete(_ id: String, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("DELETE", self.scoped("/fragments/\(id)"), headers: headers)
    }

    /// GETs a path and parses the JSON body.
    public func json(_ path: String) throws(ClientError) -> JSONValue {
        let response = try self.request("GET", path)
        guard (200..<300).contains(response.status) else {
            throw ClientError("GET \(path): \(response.status) \(response.text.prefix(300))")
        }
        return try response.json()
    }

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

    public func close() {
        self.connection?.close()
        self.connection = nil
    }
}

extension ClientResponse {
    /// The body parsed as JSON.
    public func json() throws(ClientError) -> JSONValue {
        do {
            return try JSONParser.parse(self.body, maxDepth: 256)
        } catch {
            throw ClientError("response is not JSON: \(error)")
        }
    }
}
