@testable import RunlogJSON
import Foundation
import Testing
@testable import WorkflowModel
@testable import Workflows

/// Integers at and around the limits through the JSON parser, the member reader and the condition
/// language: every result is exact or a clear error, and nothing traps.
@Suite("Numbers at the limits")
struct NumberLimitsTests {
    /// Parses `text`, expecting a refusal of a number out of range at `path`.
    func expectOutOfRange(_ text: String, path: String, number: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let value = try JSONValue(parsing: text)
            Issue.record("\(text) parsed as \(value)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(number), "\(error)", sourceLocation: sourceLocation)
            if !path.isEmpty {
                #expect(error.message.contains("\"\(path)\""), "\(error)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("an integer beyond 64 bits is refused naming its path and the rule, never rounded to a float")
    func bigIntegersRefused() throws {
        expectOutOfRange(#"{"ids": [1, 12345678901234567890]}"#, path: "ids[1]", number: "12345678901234567890")
        expectOutOfRange(#"{"a": {"b c": [[], {"d": -9223372036854775809}]}}"#, path: "a.b c[1].d",
                         number: "-9223372036854775809")
        expectOutOfRange("18446744073709551616", path: "", number: "18446744073709551616")
        expectOutOfRange(#"[0, 1e400]"#, path: "[1]", number: "1e400")
        do {
            _ = try JSONValue(parsing: #"{"id": 12345678901234567891}"#)
            Issue.record("parsed")
        } catch {
            #expect(error.message.contains("send it as a string"), "\(error)")
            #expect(error.message.contains("64-bit integer range"), "\(error)")
        }
        // The limits themselves are exact integers.
        #expect(try JSONValue(parsing: "9223372036854775807") == .integer(.max))
        #expect(try JSONValue(parsing: "-9223372036854775808") == .integer(.min))
        // Two different 20-digit ids can no longer become the same float in a condition.
        do {
            _ = try Condition(parsing: #"{"id": 12345678901234567890}"#)
            Issue.record("compiled")
        } catch {
            #expect(error.path == "id", "\(error)")
            #expect(error.description.contains("12345678901234567890"), "\(error)")
        }
        // A huge number of digits is refused too, with a short message.
        let long = String(repeating: "7", count: 5_000)
        do {
            _ = try JSONValue(parsing: "[\(long)]")
            Issue.record("parsed")
        } catch {
            #expect(error.path == "[0]")
            #expect(error.message.count < 400, "\(error.message.count)")
        }
    }

    @Test("another system's JSON keeps integers beyond 64 bits as their exact digits, in strings")
    func foreignBigIntegers() throws {
        let text = #"{"id": 12345678901234567890, "other": 12345678901234567891, "n": 7, "x": -99999999999999999999}"#
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        let value = try JSONValue(parsingForeign: Array(text.utf8))
        #expect(value["id"] == "12345678901234567890")
        #expect(value["other"] == "12345678901234567891")
        #expect(value["n"] == 7)
        #expect(value["x"] == "-99999999999999999999")
    }

    @Test("integers and floats compare by exact value in equality and in conditions")
    func exactComparison() throws {
        let twoTo53 = 9_007_199_254_740_992.0
        #expect(JSONValue.integer(9_007_199_254_740_993) != .number(twoTo53))
        #expect(JSONValue.integer(9_007_199_254_740_992) == .number(twoTo53))
        #expect(JSONValue.integer(.max) != .number(9_223_372_036_854_775_808.0))
        #expect(JSONValue.integer(.min) == .number(-9_223_372_036_854_775_808.0))
        #expect(JSONValue.integer(-3) != .number(-2.5) && JSONValue.integer(2) == .number(2.0))
        let big: JSONValue = ["n": .integer(9_007_199_254_740_993), "m": .integer(.max)]
        #expect(try Condition(parsing: #"{"n": {"$gt": 9007199254740992.0}}"#).matches(big))
        #expect(try !Condition(parsing: #"{"n": 9007199254740992.0}"#).matches(big))
        #expect(try !Condition(parsing: #"{"n": {"$in": [9007199254740992.0]}}"#).matches(big))
        #expect(try Condition(parsing: #"{"m": {"$lt": 9223372036854775808.0}}"#).matches(big))
        #expect(try Condition(parsing: #"{"m": {"$lt": 9.3e18, "$gt": 9.2e18}}"#).matches(big))
    }

    // MARK: Property: exact or a clear error, at and around the limits

    /// Number texts at and around the limits, then random ones from a fixed seed.
    static func numberTexts() -> [String] {
        var texts = [
            "0", "-0", "0.0", "-0.0", "1", "-1", "0e0", "-0e-0", "1E2", "2.0",
            "9223372036854775807", "9223372036854775806", "9223372036854775808", "9223372036854775809",
            "-9223372036854775808", "-9223372036854775807", "-9223372036854775809",
            "18446744073709551615", "18446744073709551616", "-18446744073709551615", "18446744073709551614",
            "9007199254740991", "9007199254740992", "9007199254740993", "-9007199254740993",
            "9007199254740992.0", "9007199254740993.0", "9223372036854775807.0", "9223372036854775808.0",
            "-9223372036854775808.0", "-9223372036854775809.0", "9.2233720368547758e18", "1e19", "-1e19",
            "12345678901234567890", "-12345678901234567890", "99999999999999999999", "100000000000000000000",
            "1e400", "-1e400", "1e-400", "-1e-400", "1e308", "1.7976931348623157e308", "1.7976931348623159e308",
            "4.9e-324", "2e-324", "123456789012345678901234567890", "1e00000000000000000000000000002",
            "0.5", "-0.5", "2.5", "-2.5", "1.5e1", "3e0", "4294967296", "2147483647", "-2147483648", "127",
            String(repeating: "9", count: 400), "-" + String(repeating: "1", count: 60) + ".5",
        ]
        var rng = SeededGenerator(state: 22_016_017)
        for _ in 0..<300 {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                // Near Int64.max / Int64.min.
                let k = Int64.random(in: 0...1_000, using: &rng)
                texts.append(String(Bool.random(using: &rng) ? Int64.max - k : Int64.min + k))
            case 1:
                // Near ±2^53.
                let k = Int64.random(in: -3...3, using: &rng)
                texts.append(String((Bool.random(using: &rng) ? 1 : -1) * (9_007_199_254_740_992 + k)))
            case 2:
                // Just beyond the 64-bit range, up to UInt64.max and past it.
                let k = UInt64.random(in: 0...UInt64(Int64.max), using: &rng)
                texts.append((Bool.random(using: &rng) ? "-" : "") + String(UInt64(Int64.max) + 1 + k))
            default:
                // Random digits, fraction and exponent, some huge.
                var text = Bool.random(using: &rng) ? "-" : ""
                let digits = Int.random(in: 1...25, using: &rng)
                text += String(Int.random(in: 1...9, using: &rng))
                for _ in 1..<digits { text += String(Int.random(in: 0...9, using: &rng)) }
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    text += "." + String(Int.random(in: 0...999, using: &rng))
                }
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    text += ["e", "E", "e+", "e-"].randomElement(using: &rng)!
                    text += String([Int.random(in: 0...30, using: &rng), Int.random(in: 280...420, using: &rng)]
                        .randomElement(using: &rng)!)
                }
                texts.append(text)
            }
        }
        return texts
    }

    /// What the parser must give for a number text: the exact integer or float, or nil for a
    /// refusal. Computed independently of the parser (128-bit integers, Foundation's `Double`).
    static func expected(_ text: String) -> JSONValue? {
        let isInteger = !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
        if isInteger {
            guard let wide = Int128(text), let exact = Int64(exactly: wide) else { return nil }
            return .integer(exact)
        }
        guard let d = Double(text), d.isFinite else { return nil }
        return .number(d)
    }

    /// The exact order of two numbers, computed with 128-bit integers rather than through `JSONValue`.
    static func order(_ a: JSONValue, _ b: JSONValue) -> Int {
        func wide(_ d: Double) -> (Int128, fraction: Bool)? {
            // Doubles beyond ±2^100 lie beyond every Int64 and are integral.
            guard abs(d) < 0x1p100 else { return nil }
            let floor = d.rounded(.down)
            return (Int128(floor), d != floor)
        }
        func compare(_ i: Int64, _ d: Double) -> Int {
            guard let (floor, fraction) = wide(d) else { return d > 0 ? -1 : 1 }
            let i = Int128(i)
            if i <= floor { return i < floor || fraction ? -1 : 0 }
            return 1
        }
        switch (a, b) {
        case (.integer(let x), .integer(let y)): return x < y ? -1 : x == y ? 0 : 1
        case (.number(let x), .number(let y)): return x < y ? -1 : x == y ? 0 : 1
        case (.integer(let x), .number(let y)): return compare(x, y)
        case (.number(let x), .integer(let y)): return -compare(y, x)
        default: fatalError("not numbers")
        }
    }

    @Test("parser, member reader and conditions at and around the limits: exact values or clear errors")
    func limitsProperty() throws {
        let texts = Self.numberTexts()
        var values: [JSONValue] = []
        for text in texts {
            let expected = Self.expected(text)
            // The parser, at the top and nested.
            for (document, path) in [(text, ""), (#"{"a": [true, {"b": \#(text)}]}"#, "a[1].b")] {
                do {
                    var value = try JSONValue(parsing: document)
                    if !path.isEmpty { value = value["a"]!.arrayValue![1]["b"]! }
                    switch (value, expected) {
                    case (.integer(let got), .integer(let want)?):
                        #expect(got == want, "\(text)")
                    case (.number(let got), .number(let want)?):
                        #expect(got.bitPattern == want.bitPattern, "\(text)")
                    default:
                        Issue.record("\(text) parsed as \(value), expected \(String(describing: expected))")
                    }
                } catch {
                    #expect(expected == nil, "\(text): \(error)")
                    #expect(error.path == path, "\(text): \(error)")
                    #expect(error.message.contains("range"), "\(text): \(error)")
                }
            }
            // The member reader (event payloads): an integer field reads exactly or throws.
            let member = Array(#"{"n": \#(text)}"#.utf8)
            let read: Int64? = member.withUnsafeBytes { bytes in
                var reader = JSONReader(bytes)
                return try? {
                    try reader.beginObject()
                    _ = try reader.nextKey()
                    return try reader.integer()
                }()
            }
            if case .integer(let want)? = expected {
                #expect(read == want, "\(text)")
            } else {
                #expect(read == nil, "\(text)")
            }
            if let expected {
                values.append(expected)
                // Writing and reading back keeps the value.
                #expect(try JSONValue(parsing: expected.jsonText) == expected, "\(text)")
                _ = ParameterSchema.Scalar.integer.violation(expected)
                _ = ParameterSchema.Scalar.number.violation(expected)
            }
        }
        #expect(values.count > 200)

        // Conditions: every comparison operator against every other value, exactly. Mismatches
        // are collected (a few hundred thousand evaluations; one expectation each would be slow).
        let operators: [(String, (Int) -> Bool)] = [
            ("$eq", { $0 == 0 }), ("$ne", { $0 != 0 }), ("$gt", { $0 > 0 }), ("$gte", { $0 >= 0 }),
            ("$lt", { $0 < 0 }), ("$lte", { $0 <= 0 }),
        ]
        let pool = Array(values.prefix(160))
        var mismatches: [String] = []
        for target in pool {
            for (op, holds) in operators {
                let condition = try Condition(.object(["x": .object([op: target])]))
                for value in pool {
                    let order = Self.order(value, target)
                    let alone = condition.matches(["x": value]), inArray = condition.matches(["x": [value]])
                    if alone != holds(order) || inArray != holds(order) {
                        mismatches.append("\(value) \(op) \(target)")
                    }
                }
            }
            let inList = try Condition(.object(["x": .object(["$in": .array([target])])]))
            for value in pool {
                let equal = Self.order(value, target) == 0
                if inList.matches(["x": value]) != equal || (value == target) != equal {
                    mismatches.append("\(value) == \(target) or $in")
                }
                if value == target && value.hashValue != target.hashValue {
                    mismatches.append("hash of \(value) and \(target)")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count): \(mismatches.prefix(10))")

        // Operators that take a count, a code or a flag: a condition or a clear error, never a trap.
        for target in values {
            var count: Int?
            switch target {
            case .integer(let n) where n >= 0: count = Int(n)
            case .number(let d) where d >= 0 && d == d.rounded() && d < 0x1p63: count = Int(d)
            default: count = nil
            }
            for op in ["$size", "$type", "$exists"] {
                do {
                    let condition = try Condition(.object(["x": .object([op: target])]))
                    _ = condition.matches(["x": [1, 2]])
                    if op == "$size" {
                        #expect(count != nil, "$size \(target)")
                        #expect(condition.matches(["x": []]) == (count == 0), "$size \(target)")
                        #expect(condition.matches(["x": [1, 2]]) == (count == 2), "$size \(target)")
                    }
                } catch {
                    #expect(error.operator == op && error.path == "x", "\(error)")
                    #expect(op != "$exists", "\(error)")
                    #expect(op != "$size" || count == nil, "\(error)")
                }
            }
        }
    }
}
