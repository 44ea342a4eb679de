import CarmaJSON

/// A response to send: status, header fields and the whole body (or a stream of it).
///
/// `Content-Length` and `Date` are added by the server.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// When set, the body is read from this stream while it is sent (chunked) and `body` is ignored.
    public var stream: (any HTTPBodyStream)?

    public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is streamed (see `HTTPBodyStream`).
    public static func streaming(_ status: Int, headers: HTTPHeaders, stream: any HTTPBodyStream) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.stream = stream
        return response
    }

    /// A JSON response from bytes that are already serialized.
    public static func json(_ status: Int, bytes: [UInt8], headers: HTTPHeaders = [:]) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers, body: bytes)
        response.headers.set("Content-Type", "application/json")
        return response
    }

    public static func json(_ status: Int, _ value: JSONValue, headers: HTTPHeaders = [:]) -> HTTPResponse {
        .json(status, bytes: value.bytes, headers: headers)
    }

    /// An RFC 9457 problem document.
    ///
    /// - Parameters:
    ///   - status: The HTTP status, repeated in the body.
    ///   - type: A stable slug naming the kind of problem; it becomes `urn:carma:problem:<type>`.
    ///   - title: A short summary that does not change between occurrences.
    ///   - detail: What went wrong this time, for a human.
    ///   - extra: Additional members of the problem object.
    public static func problem(
        _ status: Int,
        type: String,
        title: String,
        detail: String? = nil,
        headers: HTTPHeaders = [:],
        extra: JSONObject = [:]
    ) -> HTTPResponse {
        var object: JSONObject = [
            "type": .string("urn:carma:problem:\(type)"),
            "title": .string(title),
            "status": .number(Double(status)),
        ]
        if let detail {
            object["detail"] = .string(detail)
        }
        for member in extra {
            object[member.key] = member.value
        }
        var response = HTTPResponse(status: status, headers: headers, body: JSONValue.object(object).bytes)
        response.headers.set("Content-Type", "application/problem+json")
        return response
    }
}
