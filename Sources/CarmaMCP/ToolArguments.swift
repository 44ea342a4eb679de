import CarmaJSON

/// A tool call's arguments that do not fit the tool's input schema: answered as an error result
/// naming the argument, before anything is sent to carmad.
public struct ToolInputError: Error, Sendable, Equatable {
    /// The argument at fault.
    public let field: String
    public let message: String

    init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// Typed reads of a tool call's arguments. Hosts do not always validate against the schema, so
/// every read checks the type and range again; unknown arguments are refused, as the schemas say
/// (`additionalProperties: false`), so a misspelt option is not silently ignored.
struct ToolArguments {
    private let object: JSONObject

    init(_ object: JSONObject, allowed: Set<String>) throws(ToolInputError) {
        for key in object.keys where !allowed.contains(key) {
            throw ToolInputError(key, "unknown argument '\(key)'; this tool takes \(allowed.sorted().joined(separator: ", "))")
        }
        self.object = object
    }

    func string(_ name: String) throws(ToolInputError) -> String? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw ToolInputError(name, "\(name) must be a string")
        }
    }

    func requiredString(_ name: String) throws(ToolInputError) -> String {
        guard let value = try self.string(name) else { throw ToolInputError(name, "\(name) is required") }
        return value
    }

    func strings(_ name: String) throws(ToolInputError) -> [String]? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var strings: [String] = []
            for item in items {
                guard let string = item.stringValue else { throw ToolInputError(name, "\(name) must be an array of strings") }
                strings.append(string)
            }
            return strings
        default: throw ToolInputError(name, "\(name) must be an array of strings")
        }
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ToolInputError) -> Int? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .number(let number)?:
            guard number.rounded() == number, number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
                throw ToolInputError(name, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(number)
        default: throw ToolInputError(name, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    func number(_ name: String, in range: ClosedRange<Double>) throws(ToolInputError) -> Double? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .number(let number)? where range.contains(number): return number
        default: throw ToolInputError(name, "\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    func bool(_ name: String) throws(ToolInputError) -> Bool? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw ToolInputError(name, "\(name) must be true or false")
        }
    }

    func object(_ name: String) throws(ToolInputError) -> JSONObject? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .object(let value)?: return value
        default: throw ToolInputError(name, "\(name) must be a JSON object")
        }
    }

    func numbers(_ name: String) throws(ToolInputError) -> [Double]? {
        switch self.object[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var numbers: [Double] = []
            for item in items {
                guard let number = item.doubleValue else { throw ToolInputError(name, "\(name) must be an array of numbers") }
                numbers.append(number)
            }
            return numbers
        default: throw ToolInputError(name, "\(name) must be an array of numbers")
        }
    }
}
