public import Foundation

/// A pull reader over one JSON object: members are read one by one, keys compared as bytes and
/// values read straight into the caller's fields, so decoding an event builds no dictionary.
/// A member that is itself an object can be read the same way (`beginObject` on its value).
package struct JSONReader {
    package var state: JSONParser.State
    /// Objects entered and not yet left.
    private var depth = 0

    package init(_ bytes: UnsafeRawBufferPointer) {
        state = JSONParser.State(bytes: bytes)
    }

    private var bytes: UnsafeRawBufferPointer { state.bytes }

    /// Enters the top-level object, or the object that is the value of the member just read.
    package mutating func beginObject() throws(JSONParseError) {
        state.skipWhitespace()
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "{") else {
            throw state.error("expected a JSON object")
        }
        state.index += 1
        depth += 1
    }

    /// The next member's key (valid until the next call), or nil after the last member of the
    /// innermost object entered, which is then left.
    package mutating func nextKey() throws(JSONParseError) -> UnsafeRawBufferPointer? {
        state.skipWhitespace()
        guard state.index < bytes.count else { throw state.error("unterminated object") }
        if bytes[state.index] == UInt8(ascii: ",") {
            state.index += 1
            state.skipWhitespace()
        } else if bytes[state.index] == UInt8(ascii: "}") {
            state.index += 1
            depth -= 1
            if depth == 0 {
                state.skipWhitespace()
                guard state.index == bytes.count else { throw state.error("unexpected text after the document") }
            }
            return nil
        }
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "\"") else {
            throw state.error("expected a string key in an object")
        }
        let start = state.index + 1
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
            // Keys of Runlog's payloads never hold escapes: read such a key whole and match nothing.
            if bytes[end] == UInt8(ascii: "\\") {
                _ = try state.string()
                try colon()
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
            end += 1
        }
        guard end < bytes.count else { throw state.error("unterminated string") }
        state.index = end + 1
        try colon()
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    private mutating func colon() throws(JSONParseError) {
        state.skipWhitespace()
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: ":") else { throw state.error("expected ':'") }
        state.index += 1
        state.skipWhitespace()
    }

    package mutating func string() throws(JSONParseError) -> String {
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "\"") else { throw state.error("expected a string") }
        return try state.string()
    }

    package mutating func optionalString() throws(JSONParseError) -> String? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try string()
    }

    /// A string: `recent.value` itself when the text is the same (no new String is made), else a
    /// new string, which becomes `recent`.
    package mutating func string(reusing recent: inout RepeatedString) throws(JSONParseError) -> String {
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "\"") else { throw state.error("expected a string") }
        let start = state.index
        if let end = recent.end(in: bytes, from: start + 1) {
            state.index = end + 1
            return recent.value
        }
        let s = try state.string()
        // Text without escapes holds no quote, backslash or control character.
        recent = RepeatedString(s, plain: state.index - start - 2 == s.utf8.count)
        return s
    }

    package mutating func optionalString(reusing recent: inout RepeatedString) throws(JSONParseError) -> String? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try string(reusing: &recent)
    }

    package mutating func integer() throws(JSONParseError) -> Int64 {
        guard state.index < bytes.count else { throw state.error("expected an integer") }
        guard case .integer(let i) = try state.number() else { throw state.error("expected an integer") }
        return i
    }

    package mutating func optionalInteger() throws(JSONParseError) -> Int64? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try integer()
    }

    package mutating func bool() throws(JSONParseError) -> Bool {
        guard case .bool(let b) = try state.value(depth: 0) else { throw state.error("expected true or false") }
        return b
    }

    package mutating func value() throws(JSONParseError) -> JSONValue {
        try state.value(depth: 1)
    }

    /// Reads past the value of the member just read, checking it without building it.
    package mutating func skipValue() throws(JSONParseError) {
        try state.skip(depth: 1)
    }

    /// Reads the array that is the value of the member just read, calling `body` to read each
    /// element (an object element with `beginObject` and `nextKey`).
    package mutating func forEachElement(_ body: (inout JSONReader) throws(JSONParseError) -> Void) throws(JSONParseError) {
        state.skipWhitespace()
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "[") else {
            throw state.error("expected a JSON array")
        }
        state.index += 1
        state.skipWhitespace()
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "]") {
            state.index += 1
            return
        }
        while true {
            try body(&self)
            state.skipWhitespace()
            guard state.index < bytes.count else { throw state.error("unterminated array") }
            if bytes[state.index] == UInt8(ascii: ",") {
                state.index += 1
                state.skipWhitespace()
            } else if bytes[state.index] == UInt8(ascii: "]") {
                state.index += 1
                return
            } else {
                throw state.error("expected ',' or ']' in an array")
            }
        }
    }
}

/// A string that payloads repeat, such as a run's id in each of the run's events: text with the
/// same bytes is recognised with one comparison and read as this same String.
package struct RepeatedString {
    private(set) var value: String
    /// Whether `value` holds no quote, backslash or control character: then JSON text of the same
    /// bytes followed by a quote is exactly `value`.
    private let plain: Bool

    package init() {
        value = ""
        plain = true
    }

    /// `value` as read from JSON text; `plain` when that text had no escapes.
    fileprivate init(_ value: String, plain: Bool) {
        self.value = value
        self.plain = plain
    }

    /// Where the closing quote is when the string text starting at `start` is `value`, else nil.
    package func end(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let count = value.utf8.count
        guard plain, start + count < bytes.count, bytes[start + count] == UInt8(ascii: "\"") else { return nil }
        let same = value.utf8.withContiguousStorageIfAvailable {
            count == 0 || memcmp(bytes.baseAddress! + start, $0.baseAddress!, count) == 0
        }
        return same == true ? start + count : nil
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are the UTF-8 of `name`.
    @inlinable
    package func `is`(_ name: StaticString) -> Bool {
        count == name.utf8CodeUnitCount && count > 0 && memcmp(baseAddress!, name.utf8Start, count) == 0
    }
}
