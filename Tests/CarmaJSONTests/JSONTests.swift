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
        #expect(try JSONParser.parse("9007199254740993").intValue == 9_007_199_254_740_993)  // exact since issue 28 (was rounded to 2^53)
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

    /// `{"k0":0,"k1":1,…}` with `count` distinct keys, then `tail` as written.
    static func wideObject(_ count: Int, tail: String = "") -> String {
        var text = "{"
        for index in 0..<count {
            if index > 0 { text += "," }
            text += "\"k\(index)\":\(index)"
        }
        return text + tail + "}"
    }

    @Test("an object of 80,000 distinct keys (a 1 MB body) parses whole, in order, and every key is found")
    func wideObjectParses() throws {
        let text = Self.wideObject(80_000)
        #expect(text.utf8.count > 1_000_000)
        let object = try #require(try JSONParser.parse(text).objectValue)
        #expect(object.count == 80_000)
        #expect(object.keys.first == "k0" && object.keys.last == "k79999")
        #expect(object["k0"] == 0 && object["k40000"] == 40_000 && object["k79999"] == 79_999)
        #expect(object["k80000"] == nil)
    }

    @Test("duplicate keys are still rejected in wide objects, wherever the repeat is")
    func wideObjectDuplicates() throws {
        for repeated in ["k0", "k7", "k8", "k9", "k40000", "k79999"] {
            #expect(throws: JSONParseError.self, "\(repeated) repeated") {
                try JSONParser.parse(Self.wideObject(80_000, tail: ",\"\(repeated)\":true"))
            }
        }
        // Around the size where lookups switch from a scan to the index.
        for size in 1...12 {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Self.wideObject(size, tail: ",\"k\(size - 1)\":0")) }
            #expect(try JSONParser.parse(Self.wideObject(size, tail: ",\"k\(size)\":0")).objectValue?.count == size + 1)
        }
    }

    @Test("a document with more values than maxValues is rejected as a limit, not as malformed")
    func valueLimit() throws {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(Self.wideObject(80_000), maxValues: 50_000) }
        #expect(error?.limit == .values)
        let array = "[" + Array(repeating: "0", count: 1000).joined(separator: ",") + "]"
        #expect(try JSONParser.parse(array, maxValues: 1001).arrayValue?.count == 1000)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse(array, maxValues: 1000) })?.limit == .values)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse("[[[1]]]", maxDepth: 2) })?.limit == .depth)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse("[1,]") })?.limit == nil)
    }

    @Test("a wide object keeps working after members are replaced and removed")
    func wideObjectEditing() {
        var object = JSONObject()
        for index in 0..<100 { object["k\(index)"] = .number(Double(index)) }
        object["k50"] = nil
        object["k3"] = nil
        object["k99"] = "last"
        #expect(object.count == 98)
        #expect(object["k50"] == nil && object["k51"] == 51 && object["k99"] == "last" && object["k4"] == 4)
        let insertedAbsent = object.insertNew("k50", true)
        let insertedPresent = object.insertNew("k51", true)
        #expect(insertedAbsent && !insertedPresent)
        #expect(object.keys.last == "k50")
        for index in 0..<100 where index != 50 { object["k\(index)"] = nil }
        #expect(object.keys == ["k50"])
        #expect(object == ["k50": true])
    }
}

@Suite("Exact integers (issue 28)")
struct ExactIntegerTests {
    @Test("an integer literal from 2^53 on is read and written exactly; smaller ones stay .number")
    func bigIntegersRoundTrip() throws {
        #expect(try JSONParser.parse("9007199254740993") == .integer(9_007_199_254_740_993))
        #expect(try JSONParser.parse("-9007199254740993") == .integer(-9_007_199_254_740_993))
        #expect(try JSONParser.parse("9007199254740991") == .number(9_007_199_254_740_991))
        #expect(try JSONParser.parse("7") == .number(7))
        #expect(try JSONParser.parse("1152921504606846976").serialized == "1152921504606846976")
        #expect(try JSONParser.parse(#"{"version":9007199254740993}"#).serialized == #"{"version":9007199254740993}"#)
        // Beyond Int64 an integer literal is a double, as before.
        #expect(try JSONParser.parse("18446744073709551616") == .number(18_446_744_073_709_551_616))
    }

    @Test("exactInteger answers only what is known exactly")
    func exactIntegerAccessor() throws {
        #expect(try JSONParser.parse("9007199254740993").exactInteger == 9_007_199_254_740_993)
        #expect(try JSONParser.parse("42").exactInteger == 42)
        #expect(try JSONParser.parse("1e17").exactInteger == nil)
        #expect(try JSONParser.parse("9007199254740993.0").exactInteger == nil)
        #expect(try JSONParser.parse("1.5").exactInteger == nil)
        #expect(try JSONParser.parse("\"7\"").exactInteger == nil)
        #expect(try JSONParser.parse("9007199254740993").doubleValue == 9_007_199_254_740_992)
    }

    @Test("versions are printed as integers: 7, 2^53 - 1, 2^53 + 1, 2^60, never 7.0 or an exponent")
    func versionsPrintAsIntegers() {
        for version: UInt64 in [7, 1_000_000_000_000_000, 9_007_199_254_740_991, 9_007_199_254_740_993, 1 << 60] {
            #expect(JSONValue.exact(version).serialized == String(version))
            #expect(JSONValue.object(["version": .exact(version)]).serialized == #"{"version":\#(version)}"#)
        }
        #expect(JSONValue.number(7).serialized == "7")
    }
}
