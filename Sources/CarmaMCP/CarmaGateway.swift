import CarmaClient
import CarmaJSON
import Dispatch

/// One HTTP request to carmad, as a tool call needs it.
public struct CarmaRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var body: JSONValue?
    public var headers: [Header]

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public init(_ method: String, _ path: String, body: JSONValue? = nil, headers: [Header] = []) {
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers
    }
}

/// The seam between the tools and carmad: tests can answer requests without a server.
public protocol CarmaGateway: Sendable {
    /// Sends one request; a failure to reach carmad or to read its answer is a `ClientError`.
    func send(_ request: CarmaRequest) async throws(ClientError) -> ClientResponse
}

/// carmad over HTTP through `CarmaAPI` (blocking, one keep-alive connection), on a serial queue so
/// that the MCP server's tasks neither share the connection at once nor block the cooperative pool.
///
/// Every call has a deadline, counted from when the tool asked (time spent queued behind an earlier
/// call included): a carmad that accepts connections but never answers costs each call its timeout,
/// then a `timedOut` error, never a wait without end.
public final class HTTPGateway: CarmaGateway, @unchecked Sendable {
    // @unchecked: `api` is only touched on `queue`, a serial queue.
    private let api: CarmaAPI
    private let queue = DispatchQueue(label: "carma.mcp.http")
    private let timeout: Duration

    /// - Parameters:
    ///   - timeoutSeconds: The longest one call may take in all, waiting for earlier calls included.
    public init(host: String, port: Int, token: String?, timeoutSeconds: Int = 30) {
        self.api = CarmaAPI(host: host, port: port, token: token, timeoutSeconds: timeoutSeconds)
        self.timeout = .seconds(timeoutSeconds)
    }

    public func send(_ request: CarmaRequest) async throws(ClientError) -> ClientResponse {
        let deadline = ContinuousClock.now.advanced(by: self.timeout)
        let result: Result<ClientResponse, ClientError> = await withCheckedContinuation { continuation in
            self.queue.async {
                self.api.deadline = deadline
                do throws(ClientError) {
                    let response = try self.api.request(
                        request.method, request.path, json: request.body, headers: request.headers.map { ($0.name, $0.value) })
                    continuation.resume(returning: .success(response))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
