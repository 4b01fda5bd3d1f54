public import Foundation

/// A JSON document: what run contexts, payloads, parameters and conditions are made of.
///
/// Integers and floating-point numbers are kept apart (a parameter schema tells `integer` from
/// `number`) but compare as numbers, exactly: `1 == 1.0`, while `9007199254740993` (2^53 + 1)
/// is not equal to the float `9007199254740992.0` it would round to. Objects compare regardless
/// of key order.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The numeric value of an integer or a number, as a `Double`: integers beyond 2^53 round to
    /// the nearest `Double`, so compare with `==` (exact), not through this.
    public var numericValue: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }

    /// The value as an `Int` when it is an integer, or a number with no fraction that fits; nil
    /// otherwise (never trapping on a huge or fractional number).
    public var intValue: Int? {
        switch self {
        case .integer(let i): Int(exactly: i)
        case .number(let d): Int(exactly: d)
        default: nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// This value, or nil when it is `null`.
    public var nonNull: JSONValue? {
        // Not `self == .null ? nil : self`: there `nil` is JSONValue's nil literal, `.null`, and
        // the answer would be `.some(.null)`.
        if case .null = self { return Optional.none }
        return self
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The JSON type name used in messages: null, boolean, integer, number, string, array, object.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        // Bound one case at a time: a combined pattern here crashes the Swift 6.3.1 optimizer
        // (CopyPropagation) in release builds.
        case (.integer(let a), .number(let b)): Self.order(a, b) == 0
        case (.number(let a), .integer(let b)): Self.order(b, a) == 0
        case (.number(let a), .number(let b)): a == b
        default: false
        }
    }

    /// How an integer compares with a float, exactly (the integer is not rounded to a `Double`):
    /// -1 when it is smaller, 0 when equal, 1 when greater, nil when the float is NaN.
    package static func order(_ integer: Int64, _ float: Double) -> Int? {
        guard !float.isNaN else { return nil }
        // 2^63 is exact as a Double; every Int64 is in -2^63..<2^63.
        if float >= 9_223_372_036_854_775_808.0 { return -1 }
        if float < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = float.rounded(.towardZero)
        let wholeInteger = Int64(whole) // exact: whole is an integer in -2^63..<2^63
        if integer != wholeInteger { return integer < wholeInteger ? -1 : 1 }
        return float > whole ? -1 : float < whole ? 1 : 0
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        // Integers and numbers that are equal must hash alike (an integer equal to a float
        // converts to exactly that float; integers that round alike merely share a hash).
        case .integer(let i): hasher.combine(Double(i))
        case .number(let d): hasher.combine(d)
        case .string(let s): hasher.combine(s)
        case .array(let a): hasher.combine(a)
        case .object(let o): hasher.combine(o)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

// MARK: Parsing and printing (Foundation's JSON coders)

/// A JSON text that does not parse, or holds a number Runlog cannot keep exactly.
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong and where: a byte offset, and for a number out of range its path too.
    public var message: String
    /// The path of the value at fault (`items[2].id`; "" for the whole document) when known: for
    /// a number out of range read by `JSONValue(parsing:)`.
    public var path: String?
    /// Set for a number out of range until its path is known.
    package var numberFault: NumberFault?

    /// A number that is valid JSON but out of range: where it starts, what it is, what it breaks.
    package struct NumberFault: Hashable, Sendable {
        var offset: Int
        var subject: String
        var rule: String
    }

    package init(message: String) {
        self.message = message
    }

    /// The error for a number out of range, at `path` when known.
    package init(_ fault: NumberFault, path: String?) {
        let place = path.map { $0.isEmpty ? " (the whole document)" : " at \"\($0)\"" } ?? ""
        message = "\(fault.subject)\(place) \(fault.rule) (byte \(fault.offset))"
        self.path = path
        numberFault = path == nil ? fault : nil
    }

    public var description: String {
        path == nil && numberFault == nil ? "invalid JSON: \(message)" : "JSON number out of range: \(message)"
    }
}

extension JSONValue: Codable {
    /// Decodes with Foundation's coders, which Runlog uses only for JSON it wrote itself (stored
    /// event payloads). `JSONDecoder` does not show a number's text, so an integer beyond 64 bits
    /// read here would become a `Double`: input from users goes through `init(parsing:)`, which
    /// refuses such integers.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .integer(let i): try container.encode(i)
        case .number(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

extension JSONValue {
    /// Parses a JSON document (any value at the top, not only objects and arrays).
    public init(parsing text: String) throws(JSONParseError) {
        var text = text
        self = try text.withUTF8 { Self.parse(UnsafeRawBufferPointer($0)) }.get()
    }

    /// Parses UTF-8 JSON bytes.
    public init(parsing data: Data) throws(JSONParseError) {
        self = try data.withUnsafeBytes { Self.parse($0) }.get()
    }

    /// Parses UTF-8 JSON bytes.
    public init(parsing bytes: [UInt8]) throws(JSONParseError) {
        self = try bytes.withUnsafeBytes { Self.parse($0) }.get()
    }

    /// Parses JSON written by another system (an `http_request` step's answer), where integers
    /// beyond 64 bits (such as 20-digit ids) are common: they become strings of their exact digits
    /// instead of refusing the whole document. Never rounded either way.
    public init(parsingForeign bytes: [UInt8]) throws(JSONParseError) {
        self = try bytes.withUnsafeBytes { Self.parse($0, bigIntegersAsText: true) }.get()
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer,
                              bigIntegersAsText: Bool = false) -> Result<JSONValue, JSONParseError> {
        do {
            return .success(try JSONParser.parse(bytes, bigIntegersAsText: bigIntegersAsText))
        } catch {
            return .failure(error)
        }
    }

    /// Compact JSON text with object keys sorted, so equal values print alike. Written by hand
    /// (it is on the HTTP answer path); the text is what `JSONEncoder` with `.sortedKeys` and
    /// `.withoutEscapingSlashes` writes, except that control characters other than `\n`, `\r`
    /// and `\t` are always `\u00XX` escapes. Numbers that are not finite become `null`.
    public var jsonText: String {
        String(decoding: jsonBytes, as: UTF8.self)
    }

    /// The compact JSON text of this value, as UTF-8.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    /// What parsing this value's JSON text (`write(to:)`) gives: the same value, except that a
    /// number written without a fraction or exponent reads back as an integer, and a number
    /// that is not finite as null.
    public var reparsed: JSONValue {
        switch self {
        case .number(let d):
            guard d.isFinite else { return .null }
            var text: [UInt8] = []
            write(to: &text)
            guard !text.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
                  let integer = Int64(String(decoding: text, as: UTF8.self)) else { return self }
            return .integer(integer)
        case .array(let items):
            guard items.contains(where: \.needsReparsing) else { return self }
            return .array(items.map(\.reparsed))
        case .object(let fields):
            guard fields.values.contains(where: \.needsReparsing) else { return self }
            return .object(fields.mapValues(\.reparsed))
        case .null, .bool, .integer, .string:
            return self
        }
    }

    /// True when `reparsed` may differ from this value (it holds a number).
    private var needsReparsing: Bool {
        switch self {
        case .number: true
        case .array(let items): items.contains(where: \.needsReparsing)
        case .object(let fields): fields.values.contains(where: \.needsReparsing)
        case .null, .bool, .integer, .string: false
        }
    }

    /// Appends the compact JSON text of this value to `out`, as UTF-8 (bytes, not a `String`:
    /// appending many short strings to a `String` took half the time of writing a payload).
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): out.append(contentsOf: String(i).utf8)
        case .number(let d):
            guard d.isFinite else {
                out.append(contentsOf: "null".utf8)
                return
            }
            let text = d.description
            out.append(contentsOf: text.hasSuffix(".0") ? text.utf8.dropLast(2) : text.utf8[...])
        case .string(let s): JSONText.appendString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            // Sorted pairs, not sorted keys: no second hash lookup per field.
            for (i, field) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONText.appendString(field.key, to: &out)
                out.append(UInt8(ascii: ":"))
                field.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}
