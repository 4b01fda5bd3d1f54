public import Foundation
import Synchronization

/// Events for one stream inside an append, with what the stream must look like first.
public struct StreamWrite: Sendable {
    public var stream: String
    public var expected: ExpectedVersion
    public var events: [NewEvent]

    public init(stream: String, expected: ExpectedVersion = .any, events: [NewEvent]) {
        self.stream = stream
        self.expected = expected
        self.events = events
    }
}

/// Where one appended event landed.
public struct AppendedEvent: Sendable, Hashable {
    public var position: UInt64
    public var stream: String
    public var streamVersion: UInt64
    public var id: UUID
    public var recordedAt: Int64
    public var hash: EventHash

    init(position: UInt64, stream: String, streamVersion: UInt64, id: UUID, recordedAt: Int64, hash: EventHash) {
        self.position = position
        self.stream = stream
        self.streamVersion = streamVersion
        self.id = id
        self.recordedAt = recordedAt
        self.hash = hash
    }

    init(_ view: Envelope.View) {
        self.init(
            position: view.position, stream: String(decoding: view.streamBytes, as: UTF8.self),
            streamVersion: view.streamVersion, id: view.id, recordedAt: view.recordedAt, hash: view.hash
        )
    }
}

/// The answer to an append: each event's position, in the order given.
public struct AppendResult: Sendable, Hashable {
    public var events: [AppendedEvent]
    /// True when every event id was already stored: nothing was written and these are the
    /// positions of the first append.
    public var deduplicated: Bool

    public var firstPosition: UInt64 { events.first?.position ?? 0 }
    public var lastPosition: UInt64 { events.last?.position ?? 0 }
}

/// A validated append, as queued for the writer.
/// How an append competes for the writer.
public enum AppendPriority: Sendable, Hashable {
    /// Commits with the appends waiting with it, in the order queued.
    case normal
    /// Bulk work (an importer's batches, batch runs' steps): commits after the normal appends
    /// waiting with it, at most `Options.maxBackgroundBytes` of it per commit. While
    /// `EventStore.deferBackground` is on, such appends ride along with commits of normal appends
    /// up to `Options.rideAlongBytes`, commit in the gaps normal appends leave
    /// (`Options.backgroundGap`), and otherwise one at a time, only as often as
    /// `Options.backgroundShare` allows: a real-time append waits behind one of their commits
    /// rarely, and never behind more than one.
    case background
}

struct AppendRequest: Sendable {
    let writes: [StreamWrite]
    let eventCount: Int
    let byteCount: Int
    /// Written to the request table in the append's transaction when the append writes events
    /// and the table has no entry of that name yet (`EventStore.requestMark`).
    var requestMark: EventStore.RequestMark? = nil
}

extension EventStore {
    /// A request record that goes into the same transaction as the events of an append.
    public struct RequestMark: Sendable, Hashable {
        public var name: String
        public var value: [UInt8]

        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    /// While set, every append of this task (and of tasks it starts) that writes events also
    /// writes this request record, in the same transaction, unless one of that name exists.
    /// The HTTP layer marks an `Idempotency-Key` this way: once a command's events are durable,
    /// so is the mark that it ran, with no window in which a crash could lose it. Work that a
    /// command starts and that outlives it (an importer run) clears it
    /// (`$requestMark.withValue(nil)`), so a mark swept after expiry is not written again.
    @TaskLocal public static var requestMark: RequestMark?
}

extension EventStore {
    /// Appends `events` to `stream` if it is at the `expected` version; durable when it returns.
    @discardableResult
    public func append(
        to stream: String,
        expected: ExpectedVersion = .any,
        _ events: [NewEvent]
    ) async throws(EventStoreError) -> AppendResult {
        try await append([StreamWrite(stream: stream, expected: expected, events: events)])
    }

    /// Appends to one or more streams atomically: every event is written, or none.
    ///
    /// Events take consecutive positions in the order given. If every event id is already
    /// stored, nothing is written and the original positions are returned; if only some are,
    /// the append fails with `idempotencyConflict`. A stream not at its expected version fails
    /// this append alone with `wrongExpectedVersion`, even when other appends share its commit.
    ///
    /// A `background` append commits after the normal ones waiting with it (see `AppendPriority`).
    @discardableResult
    public func append(_ writes: [StreamWrite], priority: AppendPriority = .normal) async throws(EventStoreError) -> AppendResult {
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
    public func submit(_ writes: [StreamWrite], priority: AppendPriority = .normal) throws(EventStoreError) -> PendingAppend {
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
        var request = try Self.validate(writes)
        if let mark = Self.requestMark {
            try Self.validateName("requests entry", mark.name, maxBytes: 511)
            request.requestMark = mark
        }
        return (writer, request)
    }

    /// Checks every rule that needs no stored state, before anything is queued.
    static func validate(_ writes: [StreamWrite]) throws(EventStoreError) -> AppendRequest {
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
        return AppendRequest(writes: writes, eventCount: events, byteCount: bytes)
    }

    static func validateMetadata(_ field: String, _ value: String?) throws(EventStoreError) {
        if let value, value.utf8.count > maxMetadataBytes {
            throw .invalid(field, value, "at most \(maxMetadataBytes) bytes of UTF-8")
        }
    }

    /// A stream name is 1 to 256 bytes of UTF-8 without NUL.
    public static func validateStreamName(_ name: String) throws(EventStoreError) {
        try validateName("stream", name, maxBytes: maxStreamNameBytes)
    }

    static func validateName(_ field: String, _ value: String, maxBytes: Int) throws(EventStoreError) {
        let count = value.utf8.count
        guard count > 0 else { throw .invalid(field, value, "must not be empty") }
        guard count <= maxBytes else { throw .invalid(field, value, "at most \(maxBytes) bytes of UTF-8, got \(count)") }
        guard !value.utf8.contains(0) else { throw .invalid(field, value, "must not contain a NUL character") }
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

    /// The request record `name`, or nil.
    public func requestRecord(_ name: String) throws(EventStoreError) -> [UInt8]? {
        try sideEntry(.requests, name)
    }

    /// The names of the request records, in name order, from after `after`, at most `limit`,
    /// each with what `select` makes of its value (records it returns nil for are skipped).
    /// One read transaction per call: page with the last name returned.
    public func requestRecords<T>(
        after: String? = nil,
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

    private func sideWrite(_ table: SideTable, _ name: String, _ value: [UInt8]?) async throws(EventStoreError) {
        guard let writer else {
            throw EventStoreError(.readOnly, "the event store in \(directory) is open read-only")
        }
        try Self.validateName("\(table) entry", name, maxBytes: 511)
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                writer.submit(.side(table, name, value, continuation))
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
        try Self.validateName("checkpoint", name, maxBytes: 256)
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

/// The outcome of an append queued by `EventStore.submit(_:)`: known once its commit is durable
/// (or it failed).
public final class PendingAppend: Sendable {
    private let state = Mutex<(result: Result<AppendResult, EventStoreError>?,
                               waiters: [CheckedContinuation<Result<AppendResult, EventStoreError>, Never>])>((nil, []))

    init() {}

    /// Waits for the commit; returns what `append(_:)` would have returned, or throws its error.
    public func result() async throws(EventStoreError) -> AppendResult {
        let outcome = await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<AppendResult, EventStoreError>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
        return try outcome.get()
    }

    func complete(_ result: Result<AppendResult, EventStoreError>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
