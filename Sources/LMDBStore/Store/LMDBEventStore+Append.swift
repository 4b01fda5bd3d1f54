public import EventLog
import Foundation
import Synchronization

struct AppendRequest: Sendable {
    let writes: [StreamWrite]
    let eventCount: Int
    let byteCount: Int
    /// Written to the request table in the append's transaction when the append writes events
    /// and the table has no entry of that name yet (`RequestMark.current`).
    var requestMark: RequestMark? = nil
}

extension LMDBEventStore {
    /// Appends to one or more streams atomically: every event is written, or none.
    ///
    /// Events take consecutive positions in the order given. If every event id is already
    /// stored, nothing is written and the original positions are returned; if only some are,
    /// the append fails with `idempotencyConflict`. A stream not at its expected version fails
    /// this append alone with `wrongExpectedVersion`, even when other appends share its commit.
    ///
    /// A `background` append commits after the normal ones waiting with it (see `AppendPriority`).
    @discardableResult
    public func append(_ writes: [StreamWrite], priority: AppendPriority) async throws(EventStoreError) -> AppendResult {
        let (writer, request) = try prepare(writes)
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                writer.submit(.append(request, .continuation(continuation)), background: priority == .background)
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "append failed: \(error)")
        }
    }

    /// Queues an append at once and returns a handle to its outcome, without waiting for it.
    ///
    /// Appends of one priority queued one after another (by one task, or under one lock) reach
    /// the writer in that order, so they commit in that order: a later one never commits before
    /// an earlier one. A background append may commit after a normal one queued later (see
    /// `AppendPriority`). Each still succeeds or fails on its own, as with `append(_:)`; to make a
    /// later append depend on an earlier one, give it an expected version the earlier one
    /// creates. Bad input throws here, and nothing is queued.
    public func submit(_ writes: [StreamWrite], priority: AppendPriority) throws(EventStoreError) -> PendingAppend {
        let (writer, request) = try prepare(writes)
        let pending = PendingAppend()
        writer.submit(.append(request, .handle(pending)), background: priority == .background)
        return pending
    }

    /// While `on`, background appends wait for the writer (real-time work is in flight), except
    /// for the share of its time `Options.backgroundShare` leaves them. The workflow engine turns
    /// it on while real-time runs are being created or executed.
    public func deferBackground(_ on: Bool) {
        writer?.deferBackground(on)
    }

    /// Whether background appends are deferred now (`deferBackground`).
    public var backgroundDeferred: Bool { writer?.deferringBackground ?? false }

    private func prepare(_ writes: [StreamWrite]) throws(EventStoreError) -> (Writer, AppendRequest) {
        guard let writer else {
            throw EventStoreError(.readOnly, "the event store in \(directory) is open read-only")
        }
        let (events, bytes) = try EventLimits.validate(writes)
        var request = AppendRequest(writes: writes, eventCount: events, byteCount: bytes)
        if let mark = RequestMark.current {
            try EventLimits.validateName("requests entry", mark.name, maxBytes: 511)
            request.requestMark = mark
        }
        return (writer, request)
    }


    // MARK: Vault

    /// Stores `value` under `name` in the vault: a small key-value store in the same environment
    /// but outside the hash chain, for what the log must be able to forget (per-subject
    /// encryption keys). Durable when it returns.
    public func putVaultEntry(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await sideWrite(.vault, name, value)
    }

    /// Deletes the vault entry `name` (durable when it returns). LMDB does not zero freed pages:
    /// the bytes can stay in unused pages of `data.mdb` until they are reused; a compacting copy
    /// (`mdb_copy -c`) never holds them.
    public func deleteVaultEntry(_ name: String) async throws(EventStoreError) {
        try await sideWrite(.vault, name, nil)
    }

    /// The vault entry `name`, or nil.
    public func vaultEntry(_ name: String) throws(EventStoreError) -> [UInt8]? {
        try sideEntry(.vault, name)
    }

    // MARK: Request records

    /// Stores `value` under `name` in the request table: answers kept so that a retried request
    /// (an HTTP `Idempotency-Key`) gets the first answer again, also after a restart. Outside the
    /// hash chain, like the vault. Durable when it returns.
    public func putRequestRecord(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await sideWrite(.requests, name, value)
    }

    /// Queues `value` under `name` in the request table without waiting: it commits with the
    /// writer's next commit, and `whenDurable` is called then (nil) or when that commit failed.
    public func queueRequestRecord(_ name: String, _ value: [UInt8],
                                   whenDurable: @escaping @Sendable (EventStoreError?) -> Void) throws(EventStoreError) {
        let writer = try sideWriter(.requests, name)
        writer.submit(.side(.requests, name, value, .callback(whenDurable)))
    }

    /// The request record `name`, or nil.
    public func requestRecord(_ name: String) throws(EventStoreError) -> [UInt8]? {
        try sideEntry(.requests, name)
    }

    /// The names of the request records, in name order, from after `after`, at most `limit`,
    /// each with what `select` makes of its value (records it returns nil for are skipped).
    /// One read transaction per call: page with the last name returned.
    public func requestRecords<T>(
        after: String?,
        limit: Int,
        _ select: (UnsafeRawBufferPointer) -> T?
    ) throws(EventStoreError) -> (records: [(name: String, value: T)], last: String?) {
        guard let db = dbs.table(.requests) else { return ([], nil) }
        return try read("list request records") { txn in
            let cursor = try txn.cursor(db)
            var entry: LMDBCursor.Entry?
            if let after {
                entry = try Array(after.utf8).withUnsafeBytes { try cursor.seek(atLeast: $0) }
                if let (key, _) = entry, key.elementsEqual(after.utf8) { entry = try cursor.next() }
            } else {
                entry = try cursor.first()
            }
            var records: [(name: String, value: T)] = []
            var last: String?
            var examined = 0
            while let (key, value) = entry, examined < limit {
                examined += 1
                let name = String(decoding: key, as: UTF8.self)
                last = name
                if let selected = select(value) { records.append((name, selected)) }
                entry = try cursor.next()
            }
            return (records, entry == nil ? nil : last)
        }
    }

    /// Deletes the request records `names` (durable when it returns; absent ones are ignored).
    /// The deletes are queued together, so the writer commits them in a few transactions.
    public func deleteRequestRecords(_ names: [String]) async throws(EventStoreError) {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in names {
                    group.addTask { try await self.sideWrite(.requests, name, nil) }
                }
                try await group.waitForAll()
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "cannot delete request records: \(error)")
        }
    }

    private func sideEntry(_ table: SideTable, _ name: String) throws(EventStoreError) -> [UInt8]? {
        guard let db = dbs.table(table) else { return nil }
        return try read("read \(table) entry") { txn in
            try Array(name.utf8).withUnsafeBytes { try txn.get(db, $0) }.map { [UInt8]($0) }
        }
    }

    /// The writer, once `name` is checked as an entry of `table`.
    private func sideWriter(_ table: SideTable, _ name: String) throws(EventStoreError) -> Writer {
        guard let writer else {
            throw EventStoreError(.readOnly, "the event store in \(directory) is open read-only")
        }
        try EventLimits.validateName("\(table) entry", name, maxBytes: 511)
        return writer
    }

    private func sideWrite(_ table: SideTable, _ name: String, _ value: [UInt8]?) async throws(EventStoreError) {
        let writer = try sideWriter(table, name)
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                writer.submit(.side(table, name, value, .continuation(continuation)))
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "\(table) write failed: \(error)")
        }
    }

    // MARK: Checkpoints

    /// Stores `position` under `name` (durably); projections resume from it.
    public func setCheckpoint(_ name: String, to position: UInt64) async throws(EventStoreError) {
        guard let writer else {
            throw EventStoreError(.readOnly, "the event store in \(directory) is open read-only")
        }
        try EventLimits.validateName("checkpoint", name, maxBytes: 256)
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                writer.submit(.checkpoint(name, position, continuation))
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "checkpoint failed: \(error)")
        }
    }

    /// The position stored under `name`, or nil.
    public func checkpoint(_ name: String) throws(EventStoreError) -> UInt64? {
        try read("read checkpoint \(name)") { txn in
            try Array(name.utf8).withUnsafeBytes { try txn.get(dbs.checkpoints, $0) }.flatMap(Keys.uint64)
        }
    }

    /// Every stored checkpoint.
    public func checkpoints() throws(EventStoreError) -> [String: UInt64] {
        try read("read checkpoints") { txn in
            var result: [String: UInt64] = [:]
            let cursor = try txn.cursor(dbs.checkpoints)
            var entry = try cursor.first()
            while let (key, value) = entry {
                result[String(decoding: key, as: UTF8.self)] = Keys.uint64(value)
                entry = try cursor.next()
            }
            return result
        }
    }
}

