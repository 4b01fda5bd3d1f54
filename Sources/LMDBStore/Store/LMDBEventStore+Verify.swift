public import EventLog

extension LMDBEventStore {
    /// Recomputes the hash chain from position 1: each position must be present and in order,
    /// its envelope must decode and name its own position, its previous hash must be the hash
    /// before it, and its hash must be `SHA-256(previous hash ‖ canonical bytes)`. The stored head
    /// must match the last event. `progress` is called every 65,536 events with the position reached.
    public func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport {
        var expected: UInt64 = 1
        var previous = EventHash.zero
        var failure: (UInt64, String)?
        // Walk the raw keys too: a missing or extra key is a break in the chain.
        while failure == nil {
            let chunkStart = expected
            try read("verify the log") { txn in
                let cursor = try txn.cursor(dbs.events)
                var entry = try Keys.withUInt64(expected) { try cursor.seek(atLeast: $0) }
                var inChunk = 0
                while let (key, value) = entry, inChunk < Self.scanChunk {
                    let computed: EventHash
                    switch Self.checkEntry(key: key, value: value, expected: expected, previous: previous) {
                    case .failure(let broken):
                        failure = (broken.position, broken.reason)
                        return
                    case .success(let hash):
                        computed = hash
                    }
                    previous = computed
                    expected += 1
                    inChunk += 1
                    if expected & 0xFFFF == 0 { progress?(expected - 1) }
                    entry = try cursor.next()
                }
            }
            if expected == chunkStart { break }
        }
        if let (position, reason) = failure { return .broken(position: position, reason: reason) }
        let count = expected - 1
        let head = try head()
        guard head.position == count, head.hash == previous else {
            return .broken(
                position: count + 1,
                reason: "the stored head (position \(head.position), hash \(head.hash)) does not match the "
                    + "chain (position \(count), hash \(previous))"
            )
        }
        return .intact(count: count, head: previous)
    }
}

extension LMDBEventStore {
    /// Checks one stored event of the chain: its key is `expected`, its envelope decodes and names
    /// that position, its previous hash is `previous` (any, when nil) and its hash recomputes.
    /// Returns its hash.
    static func checkEntry(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, expected: UInt64, previous: EventHash?
    ) -> Result<EventHash, ChainFailure> {
        guard let position = Keys.uint64(key) else {
            return .failure(ChainFailure(position: expected, reason: "a key in the events database is not a position"))
        }
        guard position == expected else {
            return .failure(ChainFailure(position: expected,
                                         reason: "position \(expected) is missing (next stored is \(position))"))
        }
        return Envelope.check(value, at: position, previous: previous)
    }
}
