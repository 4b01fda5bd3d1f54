import Foundation
import Testing
import Workflows

@Suite("JSON text")
struct JSONTextTests {
    @Test("jsonText writes what JSONEncoder (sorted keys, unescaped slashes) writes")
    func matchesJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let values: [JSONValue] = [
            .null, true, false, 0, -42, .integer(.max), .integer(.min),
            100.0, 1.5, 0.1, -0.0, 1e21, 1e-7, 123456789.123, 0.30000000000000004,
            .number(.leastNonzeroMagnitude), .number(.greatestFiniteMagnitude),
            "", "plain",
            "quote \" backslash \\ slash / newline \n tab \t cr \r nul \u{0} unit \u{1f} é 漢 🎉 \u{2028}",
            [], [1, "a", nil, [true]],
            ["b": 1, "a": ["z": [], "y": ["nested": "x"]], "A": 2, "_": 3, "é": 4, "aa": 5],
        ]
        for value in values {
            let expected = String(decoding: try encoder.encode(value), as: UTF8.self)
            #expect(value.jsonText == expected)
            #expect(try JSONValue(parsing: value.jsonText) == value)
        }
        #expect(JSONValue.number(.nan).jsonText == "null")
        #expect(JSONValue.number(.infinity).jsonText == "null")
    }
}
