import EventLog
import Foundation

/// The single writer of a store: one dedicated OS thread that takes every append waiting in its
/// queue, applies them in one LMDB write transaction, commits (fsync), and only then answers each
/// caller. LMDB requires a write transaction to begin and commit on one thread and never span an
/// `await`; a dedicated thread, not the cooperative pool, guarantees both.
final class Writer: @unchecked Sendable {
    // `@unchecked`: `queue`, `running` and `idle` are guarded by `condition`; `head` is touched only
    // by the writer thread (and by `init` before the thread starts).
    private let condition = NSCondition()
    private var queue: [Work] = []
    /// Background appends (`AppendPriority.background`), oldest first: they commit after the
    /// normal work waiting with them, and while `deferring` only as `backgroundShare` allows.
    private var background: [Work] = []
    /// While true (real-time work is in flight) background appends wait, but one still commits
    /// now and then (`backgroundShare`), so they are never starved.
    private var deferring = false
    /// When the last commit with background appends ended, and how long it took.
    private var lastBackground = ContinuousClock.now
    private var lastBackgroundTook = Duration.zero
    /// When the last commit with normal appends ended.
    private var lastNormal = ContinuousClock.now
    private var running = true
    private var idle = false
    /// While the writer collects a batch, `submit` wakes it once the queue holds this many.
    private var wakeAt = Int.max
    /// While true the writer takes no new batch (tests use it to put appends into one commit).
    private var held = false
    private var statistics = WriterStatistics()
    private let finished = DispatchSemaphore(value: 0)
    /// Where processed batches are freed, off the writer's thread.
    private static let reclaimer = DispatchQueue(label: "runlog-writer-reclaim", qos: .utility)

    private let env: LMDBEnvironment
    private let dbs: LMDBEventStore.Databases
    private let options: LMDBEventStore.Options
    private let notifier: HeadNotifier
    private var head: LogHead
    /// The inline projections attached so far (touched only by the writer thread).
    private var projections: [AttachedProjection] = []
    private let registry: ProjectionRegistry
    /// Where an event's envelope is copied for the projections: the space LMDB reserved for it
    /// may move once other tables change.
    private var scratch: [UInt8] = []

    /// Who waits for an append's outcome: a suspended caller, or a `PendingAppend` handle.
    enum Completion {
        case continuation(UnsafeContinuation<AppendResult, any Error>)
        case handle(PendingAppend)

        func resume(_ result: Result<AppendResult, EventStoreError>) {
            switch (self, result) {
            case (.continuation(let c), .success(let value)): c.resume(returning: value)
            case (.continuation(let c), .failure(let error)): c.resume(throwing: error)
            case (.handle(let h), _): h.complete(result)
            }
        }
    }

    enum Work {
        case append(AppendRequest, Completion)
        case checkpoint(String, UInt64, UnsafeContinuation<Void, any Error>)
        /// Puts (or with nil deletes) an entry of a side table.
        case side(LMDBEventStore.SideTable, String, [UInt8]?, UnsafeContinuation<Void, any Error>)
        /// Attaches an inline projection: folds in what its tables lack, then keeps them current.
        case attach(any InlineProjection, UnsafeContinuation<Void, any Error>)

        var eventCount: Int {
            switch self {
            case .append(let request, _): request.eventCount
            case .checkpoint, .side, .attach: 0
            }
        }

        var byteCount: Int {
            switch self {
            case .append(let request, _): request.byteCount
            case .checkpoint, .attach: 0
            case .side(_, _, let value, _): value?.count ?? 0
            }
        }
    }

    init(env: LMDBEnvironment, dbs: LMDBEventStore.Databases, head: LogHead,
         options: LMDBEventStore.Options, notifier: HeadNotifier, registry: ProjectionRegistry) {
        self.registry = registry
        self.env = env
        self.dbs = dbs
        self.head = head
        self.options = options
        self.notifier = notifier
        let thread = Thread { [self] in self.run() }
        thread.name = "runlog-writer"
        thread.qualityOfService = .userInteractive
        thread.start()
    }

    /// Queues `work`; the writer answers it after its commit. Background work commits after the
    /// normal work waiting with it (in the order submitted among itself).
    func submit(_ work: Work, background isBackground: Bool = false) {
        condition.lock()
        guard running else {
            condition.unlock()
            switch work {
            case .append(_, let c): c.resume(.failure(EventStoreError.closedStore))
            case .checkpoint(_, _, let c), .side(_, _, _, let c), .attach(_, let c):
                c.resume(throwing: EventStoreError.closedStore)
            }
            return
        }
        if isBackground {
            background.append(work)
            if idle { condition.signal() }
        } else {
            queue.append(work)
            if idle || queue.count >= wakeAt { condition.signal() }
        }
        condition.unlock()
    }

    /// Makes background appends wait (true) while real-time work is in flight, or lets them go.
    func deferBackground(_ on: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard deferring != on else { return }
        deferring = on
        if !on { condition.signal() }
    }

    /// Stops taking batches until `release()`; what is queued meanwhile commits together.
    func hold() {
        condition.lock()
        held = true
        condition.unlock()
    }

    func release() {
        condition.lock()
        held = false
        condition.signal()
        condition.unlock()
    }

    var deferringBackground: Bool {
        condition.lock()
        defer { condition.unlock() }
        return deferring
    }

    /// Appends and checkpoints waiting for the writer.
    var queuedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count + background.count
    }

    /// With `condition` locked: when background appends may next commit on their own (nil: none
    /// waits). While deferring, that is after a quiet `backgroundGap` without normal commits, or
    /// else on a paced turn (`backgroundShare`), which takes one append.
    private func backgroundDue() -> (at: ContinuousClock.Instant, paced: Bool)? {
        guard !background.isEmpty else { return nil }
        guard deferring && running else { return (lastBackground, false) }
        let paced = lastBackground + lastBackgroundTook * ((1 - options.backgroundShare) / options.backgroundShare)
        let quiet = lastNormal + options.backgroundGap
        return quiet < paced ? (quiet, false) : (paced, true)
    }

    /// Counters of the commits made so far.
    var stats: WriterStatistics {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    /// Processes what is queued, then ends the thread and waits for it.
    func stop() {
        condition.lock()
        let wasRunning = running
        running = false
        condition.signal()
        condition.unlock()
        if wasRunning { finished.wait() }
    }

    private func run() {
        var batch: [Work] = []
        // What the previous commit answered and how long it took: the callers it resumed
        // usually append again at once, and waiting for them a fraction of a commit fills the
        // next one instead of committing the first to come back nearly alone.
        var answered = 0
        var commitSeconds = 0.0
        let window = options.collectWindow / .seconds(1)
        while true {
            condition.lock()
            var backgroundTaken = 0
            while true {
                while held && running {
                    idle = true
                    condition.wait()
                    idle = false
                }
                if queue.isEmpty {
                    // Only background work (or none): wait for normal work, or for its turn.
                    guard let due = backgroundDue()?.at else {
                        guard running else { break }
                        idle = true
                        condition.wait()
                        idle = false
                        continue
                    }
                    let now = ContinuousClock.now
                    if due > now {
                        idle = true
                        _ = condition.wait(until: Date(timeIntervalSinceNow: (due - now) / .seconds(1)))
                        idle = false
                        continue
                    }
                    break
                }
                guard running else { break }
                collect(expecting: answered, for: min(window, commitSeconds))
                if !held { break }
            }
            var events = 0
            var bytes = 0
            var taken = 0
            for work in queue {
                if taken > 0 && (events + work.eventCount > options.maxBatchEvents
                                 || bytes + work.byteCount > options.maxBatchBytes) {
                    break
                }
                events += work.eventCount
                bytes += work.byteCount
                taken += 1
            }
            if taken == queue.count {
                swap(&batch, &queue)
            } else {
                batch.append(contentsOf: queue[0..<taken])
                queue.removeFirst(taken)
            }
            // Background work fills the rest of the commit. While deferring: what fits in
            // `rideAlongBytes` rides along with normal work; after a quiet gap without normal
            // commits it goes as when not deferring; and one append of it now and then
            // (`backgroundShare`) commits whatever its size. So a real-time append rarely waits
            // behind a commit of it.
            var backgroundTurn = false
            if let due = backgroundDue() {
                let deferred = deferring && running
                // A quiet gap ends when normal work comes: then only what rides along.
                backgroundTurn = due.at <= ContinuousClock.now && (!deferred || due.paced || taken == 0)
                let riding = deferred && !backgroundTurn && taken > 0
                let limit = deferred && backgroundTurn && due.paced ? 1 : background.count
                var backgroundEvents = 0
                var backgroundBytes = 0
                for work in background where backgroundTurn || riding {
                    if backgroundTaken == limit || (taken + backgroundTaken > 0
                        && (events + work.eventCount > options.maxBatchEvents
                            || bytes + work.byteCount > options.maxBatchBytes
                            || backgroundEvents + work.eventCount > options.maxBackgroundEvents
                            || backgroundBytes + work.byteCount > options.maxBackgroundBytes))
                        || (riding && backgroundBytes + work.byteCount > options.rideAlongBytes) {
                        break
                    }
                    backgroundBytes += work.byteCount
                    backgroundEvents += work.eventCount
                    events += work.eventCount
                    bytes += work.byteCount
                    backgroundTaken += 1
                }
                if backgroundTaken > 0 {
                    batch.append(contentsOf: background[0..<backgroundTaken])
                    background.removeFirst(backgroundTaken)
                }
                if backgroundTaken == 0 { backgroundTurn = false }
            }
            if batch.isEmpty {
                condition.unlock()
                if !running { break }
                continue
            }
            condition.unlock()
            commitSeconds = process(batch)
            answered = batch.count - backgroundTaken
            // Only a commit that was the background work's turn counts for its share; riding
            // along cost the writer almost nothing.
            if backgroundTurn || answered > 0 {
                condition.lock()
                if backgroundTurn {
                    lastBackground = ContinuousClock.now
                    lastBackgroundTook = .seconds(commitSeconds)
                }
                if answered > 0 { lastNormal = ContinuousClock.now }
                condition.unlock()
            }
            // The batch's requests (events, payloads, the engine's decoded values) are freed on
            // another thread: in a bulk import their releases showed in the writer thread's profile.
            let done = batch
            batch = []
            batch.reserveCapacity(done.count)
            Self.reclaimer.async { withExtendedLifetime(done) {} }
        }
        finished.signal()
    }

    /// With `condition` locked and the queue not empty: waits up to `seconds` for the queue to
    /// hold `expected` requests, giving up as soon as no new request arrives for a short gap.
    private func collect(expecting expected: Int, for seconds: Double) {
        guard expected > 1, seconds > 0, queue.count < expected else { return }
        // 0.1 ms: callers that come back do so a few microseconds apart; one that does not
        // come back costs the others at most this much.
        let gap = 0.000_1
        let deadline = Date(timeIntervalSinceNow: seconds)
        wakeAt = expected
        defer { wakeAt = .max }
        var seen = queue.count
        while queue.count < expected && running && !held {
            let step = Date(timeIntervalSinceNow: gap)
            if !condition.wait(until: min(step, deadline)) {
                // Timed out: stop when nothing arrived during the gap or the window is over.
                if queue.count == seen || Date() >= deadline { break }
            }
            seen = queue.count
        }
    }

    // MARK: One group commit

    private struct BatchState {
        var head: LogHead
        let recordedAt: Int64
        /// Stream versions changed by this batch, written to `stream_heads` once at the end.
        var streamVersions: [String: UInt64] = [:]
    }

    /// Returns how long the write transaction took, in seconds.
    private func process(_ batch: [Work]) -> Double {
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
            return rest.isEmpty ? 0 : process(rest)
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
        let took = (clock.now - started) / .seconds(1)
        head = committed
        condition.lock()
        statistics.record(batch: batch.count, events: written)
        condition.unlock()
        notifier.advance(to: committed.position)
        for (work, outcome) in zip(batch, outcomes) {
            switch (work, outcome) {
            case (.append(_, let c), .success(let result)): c.resume(.success(result!))
            case (.append(_, let c), .failure(let error)): c.resume(.failure(error))
            case (.checkpoint(_, _, let c), .success), (.side(_, _, _, let c), .success), (.attach(_, let c), .success):
                c.resume()
            case (.checkpoint(_, _, let c), .failure(let error)), (.side(_, _, _, let c), .failure(let error)),
                 (.attach(_, let c), .failure(let error)):
                c.resume(throwing: error)
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
            return .failure(EventStoreError(
                .idempotencyConflict,
                "event id \(firstStoredId.uuidString.lowercased()) is already stored but \(request.eventCount - stored.count) "
                    + "of this append's \(request.eventCount) events are not: retry an append whole, with the same ids",
                field: "id", value: firstStoredId.uuidString.lowercased()
            ))
        }

        // Expectations, all checked before anything is written.
        var versions: [UInt64] = []
        versions.reserveCapacity(request.writes.count)
        for write in request.writes {
            let current = try version(of: write.stream, txn, state)
            guard write.expected.accepts(current) else {
                var error = EventStoreError(
                    .wrongExpectedVersion,
                    "stream \"\(write.stream)\" is at version \(current)"
                        + (current == 0 ? " (no stream)" : "") + ", expected \(write.expected)",
                    field: "expectedVersion", value: "\(write.expected)"
                )
                error.conflict = .init(stream: write.stream, expected: write.expected, actual: current)
                return .failure(error)
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

    private func version(of stream: String, _ txn: borrowing LMDBTransaction, _ state: BatchState) throws -> UInt64 {
        if let version = state.streamVersions[stream] { return version }
        var name = stream
        return try name.withUTF8 { utf8 in
            try txn.get(dbs.streamHeads, UnsafeRawBufferPointer(utf8)).flatMap(Keys.uint64) ?? 0
        }
    }
}

