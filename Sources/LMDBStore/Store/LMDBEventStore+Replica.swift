public import EventLog

extension LMDBEventStore {
    /// Writes `copy` as it is: the envelopes of another log, each continuing this one (the next
    /// position, linked to the head's hash, its stream's next version, an id not stored yet), the
    /// side changes made there, and how far they go. Positions, ids and hashes stay those of the
    /// source, so the copy verifies with its head hash. A copy that does not continue this log
    /// throws `invalidArgument` and writes nothing. Inline projections fold the copied events in
    /// the same commit, and subscriptions see them as appended events. Durable when it returns;
    /// answers the head after the commit.
    @discardableResult
    public func replicate(_ copy: ReplicaBatch) async throws(EventStoreError) -> LogHead {
        guard let writer else {
            throw EventStoreError(.readOnly, "the event store in \(directory) is open read-only")
        }
        for change in copy.changes {
            try EventLimits.validateName("\(change.table) entry", change.name, maxBytes: 511)
        }
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                writer.submit(.replica(copy, continuation))
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "copy failed: \(error)")
        }
    }

    /// The number of the last side change `replicate` wrote (`ReplicaBatch.changesReached`), 0
    /// when none.
    public func replicaChangesReached() throws(EventStoreError) -> UInt64 {
        try read("read the copied side changes") { txn in
            try Writer.changesReachedKey.withUnsafeBytes { try txn.get(dbs.meta, $0) }.flatMap(Keys.uint64) ?? 0
        }
    }
}
