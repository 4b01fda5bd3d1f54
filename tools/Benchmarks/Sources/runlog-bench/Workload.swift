import EventLog
import LMDBStore

/// The event every benchmark appends: a step result of a workflow run, with a ~60-byte JSON payload.
enum Workload {
    static let type = "StepCompleted"

    /// 60 bytes of JSON for every `i` below 10^8.
    static func json(_ i: Int) -> String {
        let n = String(i % 100_000_000)
        let id = String(repeating: "0", count: 8 - n.count) + n
        return "{\"run\":\"run-\(id)\",\"step\":\"send-email\",\"ok\":true,\"ms\":1234}"
    }

    static func event(_ i: Int) -> NewEvent {
        NewEvent(type: type, json: json(i))
    }

    /// Stream names used by the benchmarks are this long (`appender-00`, `replay-00`, ...).
    static func stream(_ prefix: String, _ i: Int) -> String {
        let n = String(i % 100)
        return prefix + "-" + (n.count == 1 ? "0" + n : n)
    }

    /// The size of one stored envelope of this workload (the layout in `Envelope.swift`: a 55-byte
    /// header, stream, type, payload, and two 32-byte hashes), for a stream name of `streamBytes`.
    static func envelopeBytes(streamBytes: Int) -> Int {
        55 + streamBytes + type.utf8.count + json(0).utf8.count + 64
    }
}
