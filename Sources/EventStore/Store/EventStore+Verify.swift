/// The outcome of recomputing the hash chain.
public enum VerifyReport: Sendable, Hashable {
    /// Every event is present, in order, and hashes to its successor's previous hash.
    case intact(count: UInt64, head: EventHash)
    /// The first position that does not verify, and why.
    case broken(position: UInt64, reason: String)
}

extension EventStore {
    /// Recomputes the hash chain from position 1: each position must be present and in order,
    /// its envelope must decode and name its own position, its previous hash must be the hash
    /// before it, and its hash must be `SHA-256(previous hash ‖ canonical bytes)`. The stored head
    /// must match the last event. `progress` is called every 65,536 events with the position reached.
    public func verify(progress: ((UInt64) -> Void)? = nil) throws(EventStoreError) -> VerifyReport {
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
                    guard let position = Keys.uint64(key) else {
                        failure = (expected, "a key in the events database is not a position")
                        return
                    }
                    guard position == expected else {
                        failure = (expected, "position \(expected) is missing (next stored is \(position))")
                        return
                    }
                    let view: Envelope.View
                    do {
                        view = try Envelope.View(value)
                    } catch {
                        failure = (position, "the envelope does not decode: \((error as? EventStoreError)?.message ?? "\(error)")")
                        return
                    }
                    guard view.position == position else {
                        failure = (position, "the envelope names position \(view.position)")
                        return
                    }
                    guard view.previousHash == previous else {
                        failure = (position, "previous hash \(view.previousHash) is not the hash of position "
                                   + "\(position - 1) (\(previous))")
                        return
                    }
                    let computed = Envelope.chainHash(previous: previous, canonical: view.canonical)
                    guard computed == view.hash else {
                        failure = (position, "stored hash \(view.hash) does not match the recomputed \(computed)")
                        return
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
