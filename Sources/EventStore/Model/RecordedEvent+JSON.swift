import Foundation

extension RecordedEvent {
    /// The envelope as one line of JSON (no trailing newline), keys in a fixed order:
    /// `position, stream, version, id, type, recordedAt, metadata, payload, previousHash, hash`.
    ///
    /// A payload that is JSON is embedded as JSON; any other payload is given as
    /// `"payloadBase64"`. `recordedAt` is RFC 3339 UTC with milliseconds.
    public func jsonLine() -> String {
        var out = "{\"position\":\(position),\"stream\":"
        JSONText.appendString(stream, to: &out)
        out += ",\"version\":\(streamVersion),\"id\":\"\(id.uuidString.lowercased())\",\"type\":"
        JSONText.appendString(type, to: &out)
        out += ",\"recordedAt\":\"\(JSONText.timestamp(milliseconds: recordedAt))\",\"metadata\":{"
        var first = true
        for (key, value) in [("actor", metadata.actor), ("correlationId", metadata.correlationId),
                             ("causationId", metadata.causationId)] {
            guard let value else { continue }
            if !first { out += "," }
            first = false
            out += "\"\(key)\":"
            JSONText.appendString(value, to: &out)
        }
        out += "},"
        if let json = JSONText.compactJSON(payload) {
            out += "\"payload\":" + json
        } else {
            out += "\"payloadBase64\":\"\(Data(payload).base64EncodedString())\""
        }
        out += ",\"previousHash\":\"\(previousHash.hex)\",\"hash\":\"\(hash.hex)\"}"
        return out
    }
}

/// Small JSON text helpers with no Foundation encoder in the loop.
public enum JSONText {
    /// Appends `value` as a JSON string literal.
    public static func appendString(_ value: String, to out: inout String) {
        out.append("\"")
        // Most strings need no escape: copy them whole.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(value)
            out.append("\"")
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case let s where s.value < 0x20:
                let hex = String(s.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    /// `payload` as compact single-line JSON text, or nil when it is not JSON.
    public static func compactJSON(_ payload: [UInt8]) -> String? {
        guard !payload.isEmpty else { return nil }
        let hasLineBreak = payload.contains(UInt8(ascii: "\n")) || payload.contains(UInt8(ascii: "\r"))
        let data = Data(payload)
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return nil
        }
        if !hasLineBreak { return String(decoding: payload, as: UTF8.self) }
        guard let compact = try? JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]) else {
            return nil
        }
        return String(decoding: compact, as: UTF8.self)
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T23:05:01.042Z`.
    public static func timestamp(milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let ms = milliseconds - seconds * 1000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }
}
