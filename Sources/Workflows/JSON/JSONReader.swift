import Foundation

/// A pull reader over one JSON object: members are read one by one, keys compared as bytes and
/// values read straight into the caller's fields, so decoding an event builds no dictionary.
/// A member that is itself an object can be read the same way (`beginObject` on its value).
struct JSONReader {
    var state: JSONParser.State
    /// Objects entered and not yet left.
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        state = JSONParser.State(bytes: bytes)
    }

    private var bytes: UnsafeRawBufferPointer { state.bytes }

    /// Enters the top-level object, or the object that is the value of the member just read.
    mutating func beginObject() throws(JSONParseError) {
        state.skipWhitespace()
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "{") else {
            throw state.error("expected a JSON object")
        }
        state.index += 1
        depth += 1
    }

    /// The next member's key (valid until the next call), or nil after the last member of the
    /// innermost object entered, which is then left.
    mutating func nextKey() throws(JSONParseError) -> UnsafeRawBufferPointer? {
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

    mutating func string() throws(JSONParseError) -> String {
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "\"") else { throw state.error("expected a string") }
        return try state.string()
    }

    mutating func optionalString() throws(JSONParseError) -> String? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try string()
    }

    /// A string, as `recent` itself when it is the same one (see `JSONParser.State.string(reusing:)`).
    mutating func string(reusing recent: inout String) throws(JSONParseError) -> String {
        guard state.index < bytes.count, bytes[state.index] == UInt8(ascii: "\"") else { throw state.error("expected a string") }
        return try state.string(reusing: &recent)
    }

    mutating func optionalString(reusing recent: inout String) throws(JSONParseError) -> String? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try string(reusing: &recent)
    }

    mutating func integer() throws(JSONParseError) -> Int64 {
        guard state.index < bytes.count else { throw state.error("expected an integer") }
        guard case .integer(let i) = try state.number() else { throw state.error("expected an integer") }
        return i
    }

    mutating func optionalInteger() throws(JSONParseError) -> Int64? {
        if state.index < bytes.count, bytes[state.index] == UInt8(ascii: "n") {
            _ = try state.literal("null", .null)
            return nil
        }
        return try integer()
    }

    mutating func bool() throws(JSONParseError) -> Bool {
        guard case .bool(let b) = try state.value(depth: 0) else { throw state.error("expected true or false") }
        return b
    }

    mutating func value() throws(JSONParseError) -> JSONValue {
        try state.value(depth: 1)
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are the UTF-8 of `name`.
    @inline(__always)
    func `is`(_ name: StaticString) -> Bool {
        count == name.utf8CodeUnitCount && count > 0 && memcmp(baseAddress!, name.utf8Start, count) == 0
    }
}
