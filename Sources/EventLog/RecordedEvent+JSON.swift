import Foundation
import RunlogJSON

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
