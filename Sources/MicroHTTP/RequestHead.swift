/// The checks on a request head that libmicrohttpd 0.9.75 does not make, made before routing.
///
/// libmicrohttpd takes the first of several `Content-Length` fields and reads the body with it, so
/// `Content-Length: 0` followed by `Content-Length: 40` made the 40 body bytes a second request on the
/// same connection (a hidden `DELETE` ran). RFC 9112 §6.3 makes differing lengths an unrecoverable
/// error: the answer is 400 and the connection is closed, so that nothing after the head is read as
/// a request. A missing or repeated `Host` (RFC 9112 §3.2) and a field name that is not a token
/// (whitespace before the colon, RFC 9112 §5.1) are refused the same way.
public enum RequestHead {
    /// The answer to a head that must not be served, with `Connection: close`; nil for a sound head.
    /// - Parameters:
    ///   - version: The request line's protocol version, e.g. `HTTP/1.1`.
    ///   - fields: Every header field in the order received, repeated names included.
    public static func problem(version: String, fields: [(name: String, value: String)]) -> HTTPResponse? {
        var lengths: [String] = []
        var hosts = 0
        for field in fields {
            guard Self.isToken(field.name) else {
                return Self.refuse("malformed-header", "Malformed header field", "a field name is not a token (whitespace before the colon?)")
            }
            // A control character in a value (a folded line kept raw, a bare CR) is never sent by a
            // sound client and may mean something else to a proxy in front.
            if field.value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                return Self.refuse("malformed-header", "Malformed header field", "a field value holds a control character (obsolete line folding?)")
            }
            if HTTPHeaders.same(field.name, "Content-Length") {
                lengths.append(field.value)
            } else if HTTPHeaders.same(field.name, "Host") {
                hosts += 1
            }
        }
        if lengths.count > 1, Set(lengths).count > 1 {
            return Self.refuse("conflicting-content-length", "Conflicting Content-Length", "the request carries differing Content-Length fields")
        }
        if hosts > 1 {
            return Self.refuse("duplicate-host", "Duplicate Host", "the request carries more than one Host field")
        }
        if hosts == 0, version == "HTTP/1.1" {
            return Self.refuse("missing-host", "Missing Host", "an HTTP/1.1 request must carry a Host field")
        }
        if version != "HTTP/1.1", version != "HTTP/1.0" {
            return Self.refuse("unsupported-version", "Unsupported HTTP version", "HTTP/1.1 or HTTP/1.0 only")
        }
        return nil
    }

    /// RFC 9110 §5.6.2 `token`: visible ASCII except separators.
    static func isToken(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    private static func refuse(_ type: String, _ title: String, _ detail: String) -> HTTPResponse {
        .problem(400, type: type, title: title, detail: detail, headers: ["Connection": "close"])
    }
}
