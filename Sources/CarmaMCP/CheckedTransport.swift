import CarmaJSON
import Foundation
import Logging
import MCP

/// A transport that answers a message which is not JSON itself, as JSON-RPC 2.0 §5 requires:
/// a parse error with `"id": null` (nobody can know the id of a message that did not parse). The
/// SDK (0.12.1) answers such a line with an id of its own invention, which a client cannot match
/// to anything. Everything else passes through to the wrapped transport unchanged.
public actor CheckedTransport: Transport {
    private let inner: any Transport
    public nonisolated let logger: Logger

    public init(_ inner: any Transport, logger: Logger) {
        self.inner = inner
        self.logger = logger
    }

    public func connect() async throws {
        try await self.inner.connect()
    }

    public func disconnect() async {
        await self.inner.disconnect()
    }

    public func send(_ data: Data) async throws {
        try await self.inner.send(data)
    }

    public func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, Swift.Error>.makeStream()
        let task = Task {
            do {
                for try await message in await self.inner.receive() {
                    if let refusal = Self.refusal(of: message) {
                        try? await self.inner.send(Data(refusal.bytes))
                        continue
                    }
                    continuation.yield(message)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The error response to a message that is not a JSON object or array, or nil to pass it on.
    static func refusal(of message: Data) -> JSONValue? {
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(message))
        } catch {
            return Self.error(-32700, "Parse error: \(error)")
        }
        switch value {
        case .object, .array: return nil
        default: return Self.error(-32600, "Invalid Request: a message is a JSON object or an array of them")
        }
    }

    private static func error(_ code: Int, _ message: String) -> JSONValue {
        ["jsonrpc": "2.0", "id": .null, "error": ["code": .exact(Int64(code)), "message": .string(message)]]
    }
}
