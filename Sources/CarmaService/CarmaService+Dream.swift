import CarmaJSON
import DreamEngine
import MicroHTTP

// POST /dream, GET /dream/{cycle} (GET /dream is the engine's status as is).

extension CarmaService {
    func startDream(_ request: HTTPRequest) -> HTTPResult {
        var budget = self.configuration.dream.defaultBudget
        if !request.body.isEmpty {
            let value: JSONValue
            do {
                value = try request.jsonBody(maxDepth: 8)
            } catch {
                return .response(error.response)
            }
            guard let object = value.objectValue else {
                return .response(.badRequest("invalid-budget", "Invalid budget", detail: "the body must be a JSON object"))
            }
            for key in object.keys where !["max_repairs", "max_seconds", "scrub_fragments"].contains(key) {
                return .response(.badRequest("invalid-budget", "Invalid budget", detail: "unknown field '\(key)'", extra: ["field": .string(key)]))
            }
            if let raw = object["max_repairs"] {
                guard let value = raw.intValue, (1...10_000_000).contains(value) else {
                    return .response(.badRequest("invalid-budget", "Invalid budget", detail: "max_repairs is an integer from 1 to 10000000", extra: ["field": "max_repairs"]))
                }
                budget.maxRepairs = value
            }
            if let raw = object["max_seconds"] {
                guard let value = raw.doubleValue, value > 0, value <= 86_400 else {
                    return .response(.badRequest("invalid-budget", "Invalid budget", detail: "max_seconds is a number above 0, at most 86400", extra: ["field": "max_seconds"]))
                }
                budget.maxSeconds = value
            }
            if let raw = object["scrub_fragments"] {
                guard let value = raw.intValue, (0...100_000_000).contains(value) else {
                    return .response(.badRequest("invalid-budget", "Invalid budget", detail: "scrub_fragments is an integer from 0 to 100000000", extra: ["field": "scrub_fragments"]))
                }
                budget.scrubFragments = value
            }
        }
        let (cycle, _) = self.engine.requestCycle(budget: budget)
        let id = cycle["id"]?.intValue ?? 0
        return .response(.json(202, cycle, headers: ["Location": "/dream/\(id)"]))
    }

    func dreamReport(_ request: HTTPRequest) -> HTTPResult {
        guard let raw = request.pathParameters["cycle"], let value = HTTPResponse.strictInteger(raw), value > 0 else {
            return .response(.badRequest("invalid-cycle", "Invalid cycle id", detail: "a cycle id is a positive integer"))
        }
        let id = Int64(value)
        guard let report = self.engine.report(id) else {
            return .response(.problem(404, type: "cycle-not-found", title: "Cycle not found", detail: "no dream cycle \(id)"))
        }
        return .response(.json(200, report))
    }
}
