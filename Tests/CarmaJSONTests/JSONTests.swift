import CarmaJSON
import Testing

@Suite("JSON")
struct JSONTests {
    @Test("a document survives a parse and print round trip, member order included")
    func roundTrip() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\n\"y\"",-0.5,1e3],"c":{"é":"ü\u0001"}}"#
        let value = try JSONParser.parse(text)
        #expect(value.serialized == #"{"b":1,"a":[true,false,null,"x\n\"y\"",-0.5,1000],"c":{"é":"ü\u0001"}}"#)
        #expect(try JSONParser.parse(value.serialized) == value)
    }

    @Test("escapes decode, surrogate pairs included")
    func escapes() throws {
        #expect(try JSONParser.parse(#""\u00e9\ud83d\ude00\/""#) == .string("é😀/"))
    }

    @Test(
        "invalid documents are rejected",
        arguments: [
            "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "tru", "01", "1.", "-", "\"\\x\"", "\"a", "[1] 2",
            "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00x\"", "1e999", "\"\u{1}\"", "NaN",
        ])
    func rejects(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test("invalid UTF-8 inside a string is rejected")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test("nesting past the limit is rejected without exhausting the stack")
    func depth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        #expect(try JSONParser.parse(ok, maxDepth: 10).depth == 10)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(ok, maxDepth: 9) }
    }

    @Test("integers print without a fraction and large ones keep their value")
    func numbers() throws {
        #expect(JSONValue.number(42).serialized == "42")
        #expect(JSONValue.number(-3).serialized == "-3")
        #expect(JSONValue.number(0.1).serialized == "0.1")
        #expect(try JSONParser.parse("9007199254740993").intValue == 9_007_199_254_740_992)
    }

    @Test("object members keep insertion order and can be replaced or removed")
    func objectEditing() {
        var object: JSONObject = ["z": 1, "a": 2]
        object["m"] = 3
        object["z"] = 4
        object["a"] = nil
        #expect(object.keys == ["z", "m"])
        #expect(JSONValue.object(object).serialized == #"{"z":4,"m":3}"#)
    }
}
