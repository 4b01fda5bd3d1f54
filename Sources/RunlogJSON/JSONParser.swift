/// A byte-level JSON parser into `JSONValue` (RFC 8259; integers that fit in 64 bits stay
/// integers, integers beyond them and numbers beyond a `Double`'s range are refused: rounding a
/// 20-digit id to a float would make two different ids equal).
///
/// Hand-written because decoding payloads is the projection rebuild's hot path: with
/// Foundation's `JSONDecoder` a rebuild spent 85% of its time decoding (73k events/s in
/// `tools/bench`, against a target of 500k).
package enum JSONParser {
    package static let maxDepth = 128

    package static func parse(_ bytes: UnsafeRawBufferPointer, bigIntegersAsText: Bool = false) throws(JSONParseError)
        -> JSONValue {
        var parser = State(bytes: bytes)
        parser.bigIntegersAsText = bigIntegersAsText
        do throws(JSONParseError) {
            parser.skipWhitespace()
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.index == bytes.count else { throw parser.error("unexpected text after the document") }
            return value
        } catch {
            // Only on failure: name the path of a number out of range (the common path keeps no path).
            guard let fault = error.numberFault else { throw error }
            throw JSONParseError(fault, path: path(to: fault.offset, in: bytes))
        }
    }

    /// The path (`items[2].id`, "" for the top) of the value that starts at byte `target`, found
    /// by walking the document again up to it; nil when the text before it does not parse.
    package static func path(to target: Int, in bytes: UnsafeRawBufferPointer) -> String? {
        var state = State(bytes: bytes)
        return try? state.find(target, path: "", depth: 0)
    }

    package struct State {
        let bytes: UnsafeRawBufferPointer
        var index = 0
        /// Integers beyond 64 bits become strings of their exact digits instead of an error.
        var bigIntegersAsText = false

        package func error(_ message: String) -> JSONParseError {
            JSONParseError(message: "\(message) at byte \(index)")
        }

        @inline(__always) mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("unexpected end of input") }
            for i in 0..<count where bytes[index + i] != word.utf8Start[i] {
                throw error("unexpected character")
            }
            index += count
            return value
        }

        mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth < JSONParser.maxDepth else { throw error("nested deeper than \(JSONParser.maxDepth) levels") }
            guard index < bytes.count else { throw error("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "{"):
                index += 1
                var members: [String: JSONValue] = [:]
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                        throw error("expected a string key in an object")
                    }
                    let key = try string()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    index += 1
                    skipWhitespace()
                    members[key] = try value(depth: depth + 1)
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unterminated object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    throw error("expected ',' or '}' in an object")
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [JSONValue] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unterminated array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw error("expected ',' or ']' in an array")
                }
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try number()
            default:
                throw error("unexpected character")
            }
        }

        /// The path of the value starting at byte `target`, when it is this value or inside it
        /// (`path` is this value's own path); reads past this value otherwise.
        mutating func find(_ target: Int, path: String, depth: Int) throws(JSONParseError) -> String? {
            skipWhitespace()
            if index == target { return path }
            guard depth < JSONParser.maxDepth, index < bytes.count else { return nil }
            let open = bytes[index]
            guard open == UInt8(ascii: "{") || open == UInt8(ascii: "[") else {
                try skip(depth: depth)
                return nil
            }
            let object = open == UInt8(ascii: "{")
            let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == close {
                index += 1
                return nil
            }
            var position = 0
            while true {
                skipWhitespace()
                let inner: String
                if object {
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
                    let key = try string()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                    index += 1
                    inner = path.isEmpty ? key : path + "." + key
                } else {
                    inner = path + "[\(position)]"
                }
                if let found = try find(target, path: inner, depth: depth + 1) { return found }
                position += 1
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return nil }
                index += 1
            }
        }

        /// Reads past one value, checking it as `value(depth:)` does, without building it.
        mutating func skip(depth: Int) throws(JSONParseError) {
            guard depth < JSONParser.maxDepth else { throw error("nested deeper than \(JSONParser.maxDepth) levels") }
            guard index < bytes.count else { throw error("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                try skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let object = bytes[index] == UInt8(ascii: "{")
                let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == close {
                    index += 1
                    return
                }
                while true {
                    skipWhitespace()
                    if object {
                        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                            throw error("expected a string key in an object")
                        }
                        try skipString()
                        skipWhitespace()
                        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                        index += 1
                        skipWhitespace()
                    }
                    try skip(depth: depth + 1)
                    skipWhitespace()
                    guard index < bytes.count else { throw error(object ? "unterminated object" : "unterminated array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == close { index += 1; return }
                    throw error(object ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
                }
            default:
                _ = try value(depth: depth)
            }
        }

        /// Reads past a string: plain ASCII at once, anything else through `string()`, which
        /// checks escapes and UTF-8.
        mutating func skipString() throws(JSONParseError) {
            var i = index + 1
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    index = i + 1
                    return
                }
                if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
                i += 1
            }
            _ = try string()
        }

        @inline(__always) func isDigit(_ i: Int) -> Bool {
            i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
        }

        mutating func number() throws(JSONParseError) -> JSONValue {
            let start = index
            var negative = false
            if bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            guard isDigit(index) else { throw error("a number needs digits") }
            var integer: UInt64 = 0
            var overflow = false
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while isDigit(index) {
                    let (m, o1) = integer.multipliedReportingOverflow(by: 10)
                    let (a, o2) = m.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                    overflow = overflow || o1 || o2
                    integer = a
                    index += 1
                }
            }
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard isDigit(index) else { throw error("a fraction needs digits") }
                while isDigit(index) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard isDigit(index) else { throw error("an exponent needs digits") }
                while isDigit(index) { index += 1 }
            }
            if isInteger {
                if !overflow {
                    if !negative && integer <= UInt64(Int64.max) { return .integer(Int64(integer)) }
                    if negative && integer <= UInt64(Int64.max) + 1 {
                        return .integer(integer == UInt64(Int64.max) + 1 ? .min : -Int64(integer))
                    }
                }
                if bigIntegersAsText {
                    return .string(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]),
                                          as: UTF8.self))
                }
                throw outOfRange(from: start, integer: true)
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let d = Double(text), d.isFinite else { throw outOfRange(from: start, integer: false) }
            return .number(d)
        }

        /// The error for the number from `start` to `index`: an integer beyond 64 bits (kept
        /// exact by no JSONValue case, and never rounded to a float), or a number beyond a Double.
        func outOfRange(from start: Int, integer: Bool) -> JSONParseError {
            let count = index - start
            var text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<min(index, start + 40)]),
                              as: UTF8.self)
            if count > 40 { text += "… (\(count) characters)" }
            let rule = integer
                ? "is outside the 64-bit integer range (\(Int64.min) to \(Int64.max)); "
                    + "send it as a string to keep every digit"
                : "is outside the range of a 64-bit float (magnitude up to \(Double.greatestFiniteMagnitude))"
            let subject = (integer ? "the integer " : "the number ") + text
            return JSONParseError(JSONParseError.NumberFault(offset: start, subject: subject, rule: rule), path: nil)
        }

        mutating func string() throws(JSONParseError) -> String {
            index += 1 // opening quote
            let start = index
            // Fast path: no escapes; pure ASCII needs no UTF-8 validation.
            var ascii = true
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    if ascii { return String(decoding: slice, as: UTF8.self) }
                    guard let s = String(validating: slice, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
                    return s
                }
                if c == UInt8(ascii: "\\") || c < 0x20 { break }
                ascii = ascii && c < 0x80
                index += 1
            }
            var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            while true {
                guard index < bytes.count else { throw error("unterminated string") }
                let c = bytes[index]
                index += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
                    return s
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw error("unterminated escape") }
                    let e = bytes[index]
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                                  bytes[index + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                            index += 2
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw error("unpaired surrogate")
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                        out.append(contentsOf: String(Character(u)).utf8)
                    default:
                        throw error("invalid escape")
                    }
                case 0..<0x20:
                    throw error("control character in a string")
                default:
                    out.append(c)
                }
            }
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                index += 1
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                v = v << 4 | d
            }
            return v
        }
    }
}
