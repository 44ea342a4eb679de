import CarmaJSON

/// Calls to a CARMA server over one keep-alive connection, reconnecting once if the server closed it.
///
/// Not thread-safe: use one per thread.
public final class CarmaAPI {
    public let host: String
    public let port: Int
    public let token: String?
    private var connection: HTTPConnection?
    private let timeoutSeconds: Int

    public init(host: String = "127.0.0.1", port: Int, token: String? = nil, timeoutSeconds: Int = 60) {
        self.host = host
        self.port = port
        self.token = token
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
        for attempt in 0..<2 {
            do {
                if self.connection?.isOpen != true {
                    self.connection = try HTTPConnection(host: self.host, port: self.port, timeoutSeconds: self.timeoutSeconds)
                }
                return try self.connection!.request(method, path, headers: allHeaders, body: body)
            } catch {
                self.connection?.close()
                self.connection = nil
                if attempt == 1 { throw error }
            }
        }
        throw ClientError("unreachable")
    }

    public func put(_ id: String, _ fragment: JSONValue, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("PUT", "/fragments/\(id)", json: fragment, headers: headers)
    }

    public func get(_ id: String, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("GET", "/fragments/\(id)", headers: headers)
    }

    public func delete(_ id: String, headers: [(String, String)] = []) throws(ClientError) -> ClientResponse {
        try self.request("DELETE", "/fragments/\(id)", headers: headers)
    }

    /// GETs a path and parses the JSON body.
    public func json(_ path: String) throws(ClientError) -> JSONValue {
        let response = try self.request("GET", path)
        guard (200..<300).contains(response.status) else {
            throw ClientError("GET \(path): \(response.status) \(response.text.prefix(300))")
        }
        return try response.json()
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
