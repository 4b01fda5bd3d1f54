import Foundation

/// The rules every store applies to an append before anything is written, whatever its backend.
public enum EventLimits {
    /// The largest payload accepted: 1 MiB.
    public static let maxPayloadBytes = 1 << 20
    /// The longest stream name, in UTF-8 bytes.
    public static let maxStreamNameBytes = 256
    /// The longest event type, in UTF-8 bytes.
    public static let maxTypeBytes = 256
    /// The longest metadata value, in UTF-8 bytes.
    public static let maxMetadataBytes = 1024

    /// Checks every rule that needs no stored state, before anything is queued.
    /// Returns the number of events and of payload bytes.
    public static func validate(_ writes: [StreamWrite]) throws(EventStoreError) -> (events: Int, bytes: Int) {
        guard !writes.isEmpty else { throw .invalid("streams", "[]", "an append needs at least one stream") }
        // The sets of names and ids are needed only when there is more than one of them (the
        // common one-stream, one-event append allocates none).
        var streams = Set<String>()
        var ids = Set<UUID>()
        let single = writes.count == 1 && writes[0].events.count == 1
        var events = 0
        var bytes = 0
        for write in writes {
            try validateStreamName(write.stream)
            guard writes.count == 1 || streams.insert(write.stream).inserted else {
                throw .invalid("stream", write.stream, "a stream may appear only once in an append")
            }
            guard !write.events.isEmpty else {
                throw .invalid("events", write.stream, "each stream of an append needs at least one event")
            }
            for event in write.events {
                try validateName("type", event.type, maxBytes: maxTypeBytes)
                try validateMetadata("actor", event.metadata.actor)
                try validateMetadata("correlationId", event.metadata.correlationId)
                try validateMetadata("causationId", event.metadata.causationId)
                guard event.payload.count <= maxPayloadBytes else {
                    throw EventStoreError(
                        .payloadTooLarge,
                        "payload of event \(event.id.uuidString.lowercased()) is \(event.payload.count) bytes; "
                            + "the limit is \(maxPayloadBytes) bytes (1 MiB)",
                        field: "payload", value: "\(event.payload.count) bytes"
                    )
                }
                guard single || ids.insert(event.id).inserted else {
                    throw .invalid("id", event.id.uuidString.lowercased(), "event ids must be unique within an append")
                }
                events += 1
                bytes += event.payload.count
            }
        }
        return (events, bytes)
    }

    public static func validateMetadata(_ field: String, _ value: String?) throws(EventStoreError) {
        if let value, value.utf8.count > maxMetadataBytes {
            throw .invalid(field, value, "at most \(maxMetadataBytes) bytes of UTF-8")
        }
    }

    /// A stream name is 1 to 256 bytes of UTF-8 without NUL.
    public static func validateStreamName(_ name: String) throws(EventStoreError) {
        try validateName("stream", name, maxBytes: maxStreamNameBytes)
    }

    public static func validateName(_ field: String, _ value: String, maxBytes: Int) throws(EventStoreError) {
        let count = value.utf8.count
        guard count > 0 else { throw .invalid(field, value, "must not be empty") }
        guard count <= maxBytes else { throw .invalid(field, value, "at most \(maxBytes) bytes of UTF-8, got \(count)") }
        guard !value.utf8.contains(0) else { throw .invalid(field, value, "must not contain a NUL character") }
    }
}
