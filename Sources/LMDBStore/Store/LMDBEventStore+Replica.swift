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

extension LMDBEventStore {
    /// Every entry of the side tables (vault, request records, checkpoints), as changes that put
    /// them: what a copy of this log to another store carries besides the events.
    public func sideEntries() throws(EventStoreError) -> [SideChange] {
        try read("read the side tables") { txn in
            var changes: [SideChange] = []
            let tables: [(SideChange.Table, LMDBDatabase?)] = [
                (.vault, dbs.vault), (.requests, dbs.requests), (.checkpoints, dbs.checkpoints),
            ]
            for case let (table, db?) in tables {
                let cursor = try txn.cursor(db)
                var entry = try cursor.first()
                while let (key, value) = entry {
                    changes.append(SideChange(table, String(decoding: key, as: UTF8.self), [UInt8](value)))
                    entry = try cursor.next()
                }
            }
            return changes
        }
    }
}
