import FragmentStore
import CarmaJSON
import MicroHTTP

// Stand-ins for the service's helpers ImportJSON uses (FragmentJSON.swift and Problems.swift hold the
// real ones, with the rest of the service).

struct HTTPError: Error {
    let response: HTTPResponse

    init(_ response: HTTPResponse) {
        self.response = response
    }
}

extension HTTPResponse {
    static func badRequest(_ type: String, _ title: String, detail: String, extra: JSONObject = [:]) -> HTTPResponse {
        .problem(400, type: type, title: title, detail: detail, extra: extra)
    }
}

extension HTTPRequest {
    static let maxJSONValues = 50_000  // as in Problems.swift
}

extension HTTPResponse {
    /// The 409 of Problems.swift for an import conflict (the only store error ImportJSON raises).
    static func problem(for error: StoreError, line: Int) -> HTTPResponse {
        .problem(409, type: "import-conflict", title: "Import conflict", detail: "line \(line): \(error.message)", extra: ["line": .exact(Int64(line))])
    }
}
