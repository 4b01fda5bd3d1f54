import RunlogJSON
import WorkflowModel
import Workflows

/// Request bodies of the launch API (`/v3/`): seed 001's examples carry `//` comments, trailing
/// commas, a missing comma between members, `...` placeholders and an unclosed object, and
/// clients copy them. A body is parsed strictly first; when that fails, once more after
/// `LenientJSON.normalize`. Text inside strings is never changed.
enum LenientJSON {
    /// Parses `bytes` strictly, else after normalising; throws the strict parser's error when both fail.
    static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        do {
            return try JSONValue(parsing: bytes)
        } catch let strict {
            if let value = try? JSONValue(parsing: normalize(bytes)) { return value }
            throw strict
        }
    }

    /// Outside strings: drops `//` and `/* */` comments and `...` / `…` placeholders, drops a comma
    /// before `]` or `}`, inserts a comma where a value ends and the next member or element starts
    /// on a new line, and closes the objects and arrays still open at the end.
    static func normalize(_ bytes: [UInt8]) -> [UInt8] {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), slash = UInt8(ascii: "/")
        let star = UInt8(ascii: "*"), newline = UInt8(ascii: "\n"), comma = UInt8(ascii: ","), dot = UInt8(ascii: ".")
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var open: [UInt8] = []
        var inString = false
        var last: UInt8?          // the last significant byte outside strings (`"` for a string's end)
        var lastComma: Int?       // where in `out` the last comma outside strings is
        var newlineSinceLast = false
        var i = 0
        let n = bytes.count

        func endsValue(_ c: UInt8?) -> Bool {
            guard let c else { return false }
            return c == quote || c == UInt8(ascii: "}") || c == UInt8(ascii: "]")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "e") || c == UInt8(ascii: "l")
        }
        func startsValue(_ c: UInt8) -> Bool {
            c == quote || c == UInt8(ascii: "{") || c == UInt8(ascii: "[") || c == UInt8(ascii: "-")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: "t") || c == UInt8(ascii: "f") || c == UInt8(ascii: "n")
        }

        while i < n {
            let c = bytes[i]
            if inString {
                out.append(c)
                if c == backslash, i + 1 < n {
                    out.append(bytes[i + 1])
                    i += 2
                    continue
                }
                if c == quote {
                    inString = false
                    last = quote
                    newlineSinceLast = false
                }
                i += 1
                continue
            }
            if c == slash, i + 1 < n, bytes[i + 1] == slash {
                while i < n, bytes[i] != newline { i += 1 }
                continue
            }
            if c == slash, i + 1 < n, bytes[i + 1] == star {
                i += 2
                while i < n, !(bytes[i] == star && i + 1 < n && bytes[i + 1] == slash) { i += 1 }
                i = min(n, i + 2)
                continue
            }
            if c == dot, i + 2 < n, bytes[i + 1] == dot, bytes[i + 2] == dot {
                while i < n, bytes[i] == dot { i += 1 }
                continue
            }
            if c == 0xE2, i + 2 < n, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA6 { // …
                i += 3
                continue
            }
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") || c == newline {
                if c == newline { newlineSinceLast = true }
                out.append(c)
                i += 1
                continue
            }
            if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                if last == comma, let at = lastComma { out[at] = UInt8(ascii: " ") }
                if !open.isEmpty { open.removeLast() }
            } else if startsValue(c), newlineSinceLast, endsValue(last) {
                out.append(comma)
            }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { open.append(c) }
            if c == comma { lastComma = out.count }
            if c == quote { inString = true }
            out.append(c)
            last = c
            newlineSinceLast = false
            i += 1
        }
        if !inString {
            if last == comma, let at = lastComma { out[at] = UInt8(ascii: " ") }
            for opener in open.reversed() { out.append(opener == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")) }
        }
        return out
    }
}
