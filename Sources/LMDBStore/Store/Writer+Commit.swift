import EventLog
import Foundation

/// One group commit of the writer: the write transaction, the rules each append is checked
/// against, and the inline projections it keeps current. Runs only on the writer thread.
extension Writer {
    struct BatchState {
        var head: LogHead
        let recordedAt: Int64
        /// Stream versions changed by this batch, written to `stream_heads` once at the end.
        var streamVersions: [String: UInt64] = [:]
    }

    /// Commits `batch` and answers each of its requests; returns how long the write transaction
    /// took.
    func process(_ batch: [Work]) -> Duration {
        // Projections attach before the rest of the batch is written, so they see it inline.
        guard !batch.contains(where: { if case .attach = $0 { true } else { false } }) else {
            var rest: [Work] = []
            for work in batch {
                guard case .attach(let projection, let continuation) = work else {
                    rest.append(work)
                    continue
                }
                do {
                    try attach(projection)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            return rest.isEmpty ? .zero : process(rest)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let streams = batch.reduce(0) { count, work in
            if case .append(let request, _) = work { count + request.writes.count } else { count }
        }
        var outcomes = [Result<AppendResult?, EventStoreError>](repeating: .success(nil), count: batch.count)
        var committed = head
        while true {
            do {
                committed = try env.write { txn in
                    let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
                    var state = BatchState(head: head, recordedAt: max(now, head.recordedAt))
                    // Sized once: an import's commit touches a thousand or more streams, and
                    // growing the table step by step showed in the writer's profile.
                    state.streamVersions.reserveCapacity(streams)
                    for (i, work) in batch.enumerated() {
                        outcomes[i] = try apply(work, txn, &state)
                    }
                    for (stream, version) in state.streamVersions {
                        let key = Array(stream.utf8)
                        try key.withUnsafeBytes { k in
                            try Keys.withUInt64(version) { v in try txn.put(dbs.streamHeads, k, v) }
                        }
                    }
                    if state.head != head {
                        try state.head.write(txn, dbs)
                        for projection in projections { try projection.store(position: state.head.position, txn, dbs.meta) }
                    }
                    return state.head
                }
                break
            } catch let error as LMDBError where error == .mapFull {
                for projection in projections { projection.projection.rolledBack() }
                if let failure = growMap() {
                    outcomes = outcomes.map { _ in .failure(failure) }
                    break
                }
                continue
            } catch {
                for projection in projections { projection.projection.rolledBack() }
                let failure: EventStoreError = (error as? LMDBError).map { .storage($0, "cannot commit") }
                    ?? EventStoreError(.storage, "cannot commit: \(error)")
                outcomes = outcomes.map { _ in .failure(failure) }
                break
            }
        }
        let written = committed.position - head.position
        let took = clock.now - started
        head = committed
        condition.lock()
        statistics.record(batch: batch.count, events: written)
        condition.unlock()
        notifier.advance(to: committed.position)
        for (work, outcome) in zip(batch, outcomes) {
            switch (work, outcome) {
            case (.append(_, let c), .success(let result)): c.resume(.success(result!))
            case (.append(_, let c), .failure(let error)): c.resume(.failure(error))
            case (.checkpoint(_, _, let c), .success), (.attach(_, let c), .success):
                c.resume()
            case (.checkpoint(_, _, let c), .failure(let error)), (.attach(_, let c), .failure(let error)):
                c.resume(throwing: error)
            case (.replica(_, let c), .success): c.resume(returning: committed)
            case (.replica(_, let c), .failure(let error)): c.resume(throwing: error)
            case (.side(_, _, _, let c), .success): c.resume(nil)
            case (.side(_, _, _, let c), .failure(let error)): c.resume(error)
            }
        }
        return took
    }

    // MARK: Inline projections

    /// Opens the projection's tables, empties them when they were built by another version,
    /// folds in the events they lack (in transactions of `catchUpChunk` events), and from then
    /// on applies every event written.
    private func attach(_ projection: any InlineProjection) throws {
        guard !projections.contains(where: { $0.projection.name == projection.name }) else { return }
        let attached: AttachedProjection
        do {
            attached = AttachedProjection(
                projection: projection,
                dbs: try projection.tables.map { try env.openDatabase("\(projection.name).\($0)") }
            )
        } catch let error as LMDBError {
            throw EventStoreError.storage(error, "cannot open the tables of projection \(projection.name)")
        }
        var position: UInt64 = 0
        try commitGrowing("reset projection \(projection.name)") {
            try env.write { txn in
                if let stored = try attached.stored(txn, dbs.meta), stored.version == projection.version {
                    position = stored.position
                } else {
                    for db in attached.dbs { try txn.clear(db) }
                    try attached.store(position: 0, txn, dbs.meta)
                    position = 0
                }
            }
        }
        while position < head.position {
            try commitGrowing("build projection \(projection.name)", rollingBack: projection) {
                position = try env.write { txn in
                    let cursor = try txn.cursor(dbs.events)
                    var entry = try Keys.withUInt64(position + 1) { try cursor.seek(atLeast: $0) }
                    var last = position
                    var folded = 0
                    while let (_, value) = entry, folded < Self.catchUpChunk {
                        let view = try Envelope.View(value)
                        try attached.apply(view, txn)
                        last = view.position
                        folded += 1
                        entry = try cursor.next()
                    }
                    try attached.store(position: last, txn, dbs.meta)
                    return last
                }
            }
        }
        projections.append(attached)
        registry.add(attached)
    }

    /// Events a projection folds in per transaction while it catches up.
    static let catchUpChunk = 20_000

    /// Runs `body` (one write transaction), growing the map and trying again when it is full.
    private func commitGrowing(_ what: String, rollingBack projection: (any InlineProjection)? = nil,
                               _ body: () throws -> Void) throws {
        while true {
            do {
                return try body()
            } catch let error as LMDBError where error == .mapFull {
                projection?.rolledBack()
                if let failure = growMap() { throw failure }
            } catch {
                projection?.rolledBack()
                if let error = error as? LMDBError { throw EventStoreError.storage(error, "cannot \(what)") }
                throw error
            }
        }
    }

    /// Doubles the map; returns the error to answer with when it is already at its maximum.
    private func growMap() -> EventStoreError? {
        do {
            let current = try env.info().me_mapsize
            guard current < options.maxMapSize else {
                return EventStoreError(
                    .mapFull,
                    "the data file is full at its maximum size of \(options.maxMapSize) bytes; "
                        + "raise the maximum map size or move to a larger volume"
                )
            }
            try env.setMapSize(min(current * 2, options.maxMapSize))
            return nil
        } catch {
            return EventStoreError(.storage, "cannot grow the data file: \(error)")
        }
    }

    /// Applies one unit of work. Returns a failure for a rule it breaks (nothing of it written);
    /// throws only when LMDB fails, which aborts the whole batch.
    private func apply(
        _ work: Work,
        _ txn: borrowing LMDBTransaction,
        _ state: inout BatchState
    ) throws -> Result<AppendResult?, EventStoreError> {
        switch work {
        case .checkpoint(let name, let position, _):
            try Array(name.utf8).withUnsafeBytes { k in
                try Keys.withUInt64(position) { v in try txn.put(dbs.checkpoints, k, v) }
            }
            return .success(nil)
        case .side(let table, let name, let value, _):
            guard let db = dbs.table(table) else { return .success(nil) }
            try Array(name.utf8).withUnsafeBytes { k in
                if let value {
                    try value.withUnsafeBytes { v in try txn.put(db, k, v) }
                } else {
                    try txn.delete(db, k)
                }
            }
            return .success(nil)
        case .append(let request, _):
            return try append(request, txn, &state).map { $0 }
        case .replica(let copy, _):
            return try replicate(copy, txn, &state)
        case .attach:
            return .success(nil)
        }
    }

    private func append(
        _ request: AppendRequest,
        _ txn: borrowing LMDBTransaction,
        _ state: inout BatchState
    ) throws -> Result<AppendResult, EventStoreError> {
        // Idempotency: every id already stored → the original answer; some → an error.
        var stored: [UInt64] = []
        var firstStoredId: UUID?
        for write in request.writes {
            for event in write.events {
                let position = try withUnsafeBytes(of: event.id.uuid) { try txn.get(dbs.eventIds, $0) }
                if let position, let p = Keys.uint64(position) {
                    stored.append(p)
                    if firstStoredId == nil { firstStoredId = event.id }
                }
            }
        }
        if stored.count == request.eventCount {
            var events: [AppendedEvent] = []
            for position in stored {
                guard let bytes = try Keys.withUInt64(position, { try txn.get(dbs.events, $0) }) else {
                    return .failure(EventStoreError(.corrupted, "event id index points at missing position \(position)"))
                }
                do {
                    events.append(AppendedEvent(try Envelope.View(bytes)))
                } catch {
                    return .failure(error)
                }
            }
            return .success(AppendResult(events: events, deduplicated: true))
        }
        if let firstStoredId {
            return .failure(.partlyStored(firstStoredId, stored: stored.count, of: request.eventCount))
        }

        // Expectations, all checked before anything is written.
        var versions: [UInt64] = []
        versions.reserveCapacity(request.writes.count)
        for write in request.writes {
            let current = try version(of: write.stream, txn, state)
            guard write.expected.accepts(current) else {
                return .failure(.wrongVersion(write.stream, expected: write.expected, actual: current))
            }
            versions.append(current)
        }

        var appended: [AppendedEvent] = []
        appended.reserveCapacity(request.eventCount)
        for (write, start) in zip(request.writes, versions) {
            var version = start
            let streamBytes = write.stream.utf8.count
            var streamKey = Keys.stream(write.stream, version: 0)
            for event in write.events {
                version += 1
                let position = state.head.position + 1
                let size = Envelope.size(stream: streamBytes, event: event)
                var hash = EventHash.zero
                try Keys.withUInt64(position) { key in
                    try txn.putReserved(dbs.events, key, count: size, append: true) { out in
                        hash = Envelope.encode(
                            into: out, position: position, stream: write.stream, streamVersion: version,
                            recordedAt: state.recordedAt, event: event, previousHash: state.head.hash
                        )
                        if !projections.isEmpty {
                            scratch.removeAll(keepingCapacity: true)
                            scratch.append(contentsOf: UnsafeRawBufferPointer(out))
                        }
                    }
                    if !projections.isEmpty {
                        try scratch.withUnsafeBytes { bytes in
                            let view = try Envelope.View(bytes)
                            for projection in projections { try projection.apply(view, txn, decoded: event.decoded) }
                        }
                    }
                    streamKey.withUnsafeMutableBytes { k in
                        k.storeBytes(of: version.bigEndian, toByteOffset: k.count - 8, as: UInt64.self)
                    }
                    try streamKey.withUnsafeBytes { k in try txn.put(dbs.streams, k, key) }
                    try withUnsafeBytes(of: event.id.uuid) { id in try txn.put(dbs.eventIds, id, key) }
                }
                state.head = LogHead(position: position, hash: hash, recordedAt: state.recordedAt)
                appended.append(AppendedEvent(
                    position: position, stream: write.stream, streamVersion: version, id: event.id,
                    recordedAt: state.recordedAt, hash: hash
                ))
            }
            state.streamVersions[write.stream] = version
        }
        if let mark = request.requestMark, let db = dbs.table(.requests) {
            try Array(mark.name.utf8).withUnsafeBytes { k in
                try mark.value.withUnsafeBytes { v in _ = try txn.put(db, k, v, ifAbsent: true) }
            }
        }
        return .success(AppendResult(events: appended, deduplicated: false))
    }

    func version(of stream: String, _ txn: borrowing LMDBTransaction, _ state: BatchState) throws -> UInt64 {
        if let version = state.streamVersions[stream] { return version }
        var name = stream
        return try name.withUTF8 { utf8 in
            try txn.get(dbs.streamHeads, UnsafeRawBufferPointer(utf8)).flatMap(Keys.uint64) ?? 0
        }
    }
}
