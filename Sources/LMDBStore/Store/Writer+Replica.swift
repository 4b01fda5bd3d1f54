import EventLog
import Foundation

/// Copies written as they are: the envelopes of another log (`LMDBEventStore.replicate`).
extension Writer {
    /// The meta key under which the source's number of the last side change copied is kept.
    static let changesReachedKey = Array("replica.changes".utf8)

    /// Checks every envelope of `copy` (the next position, linked to the head, its own hash right,
    /// its stream's next version, an id not stored), then writes them, the side changes and the
    /// number reached. A copy that does not continue the log fails alone, with nothing written.
    func replicate(
        _ copy: ReplicaBatch,
        _ txn: borrowing LMDBTransaction,
        _ state: inout BatchState
    ) throws -> Result<AppendResult?, EventStoreError> {
        var head = state.head
        var versions: [String: UInt64] = [:]
        var ids = Set<UUID>()
        var checked: [(stream: String, version: UInt64, id: UUID, head: LogHead)] = []
        checked.reserveCapacity(copy.envelopes.count)
        for envelope in copy.envelopes {
            let position = head.position + 1
            let outcome: Result<(String, UInt64, UUID, LogHead), EventStoreError> = try envelope.withUnsafeBytes { bytes in
                switch Envelope.check(bytes, at: position, previous: head.hash) {
                case .failure(let failure):
                    return .failure(Self.notContinuing(failure.position, failure.reason))
                case .success(let hash):
                    let view = try Envelope.View(bytes)
                    return .success((String(decoding: view.streamBytes, as: UTF8.self), view.streamVersion, view.id,
                                     LogHead(position: position, hash: hash, recordedAt: view.recordedAt)))
                }
            }
            guard case .success(let (stream, version, id, next)) = outcome else {
                if case .failure(let error) = outcome { return .failure(error) }
                return .success(nil)
            }
            let current = try versions[stream] ?? self.version(of: stream, txn, state)
            guard version == current + 1 else {
                return .failure(Self.notContinuing(position, "stream \(stream) is at version \(current), "
                                                   + "the envelope has version \(version)"))
            }
            let known = try withUnsafeBytes(of: id.uuid) { try txn.get(dbs.eventIds, $0) } != nil
            guard !known, ids.insert(id).inserted else {
                return .failure(Self.notContinuing(position, "event id \(id) is already stored"))
            }
            versions[stream] = version
            checked.append((stream, version, id, next))
            head = next
        }
        for (envelope, event) in zip(copy.envelopes, checked) {
            try Keys.withUInt64(event.head.position) { key in
                try envelope.withUnsafeBytes { bytes in
                    try txn.putReserved(dbs.events, key, count: bytes.count, append: true) { out in
                        out.copyMemory(from: bytes)
                    }
                    if !projections.isEmpty {
                        let view = try Envelope.View(bytes)
                        let decoded = copy.decoded.isEmpty ? nil : copy.decoded[event.id]
                        for projection in projections { try projection.apply(view, txn, decoded: decoded) }
                    }
                }
                try Keys.stream(event.stream, version: event.version).withUnsafeBytes { k in try txn.put(dbs.streams, k, key) }
                try withUnsafeBytes(of: event.id.uuid) { id in try txn.put(dbs.eventIds, id, key) }
            }
            state.streamVersions[event.stream] = event.version
        }
        state.head = head
        for change in copy.changes {
            let db: LMDBDatabase? = switch change.table {
            case .vault: dbs.vault
            case .requests: dbs.requests
            case .checkpoints: dbs.checkpoints
            }
            guard let db else { continue }
            try Array(change.name.utf8).withUnsafeBytes { k in
                if let value = change.value {
                    try value.withUnsafeBytes { v in try txn.put(db, k, v) }
                } else {
                    try txn.delete(db, k)
                }
            }
        }
        if let reached = copy.changesReached {
            try Self.changesReachedKey.withUnsafeBytes { k in
                try Keys.withUInt64(reached) { v in try txn.put(dbs.meta, k, v) }
            }
        }
        return .success(nil)
    }

    private static func notContinuing(_ position: UInt64, _ reason: String) -> EventStoreError {
        EventStoreError(.invalidArgument, "the copied event at position \(position) does not continue the log: \(reason)")
    }
}
