import Foundation

/// Small JSON text helpers with no Foundation encoder in the loop.
public enum JSONText {
    /// Appends `value` as a JSON string literal.
    public static func appendString(_ value: String, to out: inout String) {
        guard needsEscape(value) else {
            out += "\""
            out += value
            out += "\""
            return
        }
        var bytes: [UInt8] = []
        appendString(value, to: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `value` as a JSON string literal, as UTF-8.
    public static func appendString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: copy them whole.
        if !needsEscape(value) {
            out.append(contentsOf: value.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        let hex = Array("0123456789abcdef".utf8)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default:
                // Bytes of multi-byte characters pass through: UTF-8 in, UTF-8 out.
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Whether `value` holds a byte a JSON string literal must escape. Over the string's
    /// contiguous bytes when it has them: `utf8.contains(where:)` iterated the view a byte at a
    /// time and took 1.5% of a command's CPU in answers.
    @inline(__always)
    package static func needsEscape(_ value: String) -> Bool {
        func escaped(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        if let found = value.utf8.withContiguousStorageIfAvailable({ bytes in
            for byte in bytes where escaped(byte) { return true }
            return false
        }) {
            return found
        }
        return value.utf8.contains(where: escaped)
    }

    /// `payload` as compact single-line JSON text, or nil when it is not JSON.
    ///
    /// The stored bytes are given as they are when they are strict JSON on one line. Foundation's
    /// parser, used here, also takes what RFC 8259 does not allow (a byte order mark, UTF-16,
    /// trailing commas); a payload that shows a sign of one (stored before `runlog log append`
    /// checked payloads with the strict parser) is written out again from what was parsed.
    public static func compactJSON(_ payload: [UInt8]) -> String? {
        guard !payload.isEmpty else { return nil }
        let hasLineBreak = payload.contains(UInt8(ascii: "\n")) || payload.contains(UInt8(ascii: "\r"))
        let data = Data(payload)
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return nil
        }
        if !hasLineBreak && !mayBeLenient(payload) { return String(decoding: payload, as: UTF8.self) }
        guard let compact = try? JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]) else {
            return nil
        }
        return String(decoding: compact, as: UTF8.self)
    }

    /// The times a timestamp may hold, in UTC milliseconds: from `0001-01-01T00:00:00.000Z` to
    /// `9999-12-31T23:59:59.999Z`, the years RFC 3339 can write. Inputs outside are refused.
    public static let timestampRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// Whether JSON text Foundation accepted may hold what strict JSON does not: a byte order mark,
    /// a NUL byte (UTF-16 or UTF-32 text) or a comma before a closing bracket. A false alarm (such
    /// a comma inside a string) only costs writing the payload out again.
    package static func mayBeLenient(_ payload: [UInt8]) -> Bool {
        if payload.starts(with: [0xEF, 0xBB, 0xBF]) || payload.contains(0) { return true }
        var afterComma = false
        for byte in payload {
            switch byte {
            case UInt8(ascii: ","): afterComma = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
            case UInt8(ascii: "]"), UInt8(ascii: "}"): if afterComma { return true }
            default: afterComma = false
            }
        }
        return false
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T23:05:01.042Z`. Total: a value outside
    /// `timestampRange` (only a log written before the range was checked can hold one) is written
    /// with its year as a plain number, never trapping.
    public static func timestamp(milliseconds: Int64) -> String {
        // Floor division without overflow: Int64.min is a possible stored value.
        let (quotient, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let seconds = remainder < 0 ? quotient - 1 : quotient
        let ms = remainder < 0 ? remainder + 1000 : remainder
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "out-of-range time (\(milliseconds) ms)" }
        // Written into 24 bytes (it is in every answer that shows a record's times).
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else {
            return String(format: "%d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, parts.tm_mon + 1, parts.tm_mday,
                          parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(ms))
        }
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var v = value
                for i in stride(from: offset + width - 1, through: offset, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                }
            }
            put(year, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(Int(parts.tm_mon) + 1, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(Int(parts.tm_mday), 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(Int(parts.tm_hour), 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put(Int(parts.tm_min), 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(Int(parts.tm_sec), 2, at: 17)
            out[19] = UInt8(ascii: ".")
            put(Int(ms), 3, at: 20)
            out[23] = UInt8(ascii: "Z")
            return 24
        }
    }
}
