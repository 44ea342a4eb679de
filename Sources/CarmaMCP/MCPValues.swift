import CarmaJSON
import Foundation
import MCP

// The one place that converts between the store's JSON values and the MCP SDK's.

extension JSONValue {
    /// A value from the SDK. Integers and doubles both become numbers. The SDK decodes a string that
    /// looks like an RFC 2397 data URL as `.data`; it is given back as the data URL the SDK writes.
    init(_ value: MCP.Value) {
        switch value {
        case .null: self = .null
        case .bool(let bool): self = .bool(bool)
        case .int(let int): self = .exact(Int64(int))
        case .double(let double): self = .number(double)
        case .string(let string): self = .string(string)
        case .data(let mimeType, let data): self = .string(data.dataURLEncoded(mimeType: mimeType))
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members): self = .object(JSONObject(members.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) }))
        }
    }
}

extension Value {
    /// The SDK's value for a JSON value; whole numbers within Int range become `.int`.
    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let bool): self = .bool(bool)
        case .number(let number):
            if number.rounded() == number, abs(number) < 9_007_199_254_740_992 {
                self = .int(Int(number))
            } else {
                self = .double(number)
            }
        case .integer(let integer): self = .int(Int(integer))
        case .string(let string): self = .string(string)
        case .array(let items): self = .array(items.map(Value.init))
        case .object(let object): self = .object(Dictionary(object.members.map { ($0.key, Value($0.value)) }, uniquingKeysWith: { _, last in last }))
        }
    }
}
