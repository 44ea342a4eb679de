import MicroHTTP

/// Bearer-token check for protected routes, run on the request head before any body is read.
struct Authorization: Sendable {
    let token: [UInt8]

    init(token: String) {
        self.token = Array(token.utf8)
    }

    /// A preflight answering 401 unless the request carries the token.
    var preflight: HTTPPreflight {
        { request in
            guard let header = request.headers["Authorization"], header.count > 7,
                header.prefix(7).lowercased() == "bearer ",
                Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), self.token)
            else {
                return .problem(
                    401, type: "unauthorized", title: "Unauthorized",
                    detail: "this request needs Authorization: Bearer <token>",
                    headers: ["WWW-Authenticate": "Bearer realm=\"carma\""])
            }
            return nil
        }
    }

    /// Compares in time that depends only on the lengths, not on where the bytes differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let count = max(a.count, b.count)
        for index in 0..<count {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
