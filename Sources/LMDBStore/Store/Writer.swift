import EventLog
import Foundation

/// The single writer of a store: one dedicated OS thread that takes every append waiting in its
/// queue, applies them in one LMDB write transaction, commits (fsync), and only then answers each
/// caller. LMDB requires a write transaction to begin and commit on one thread and never span an
/// `await`; a dedicated thread, not the cooperative pool, guarantees both.
final class Writer: @unchecked Sendable {
    // `@unchecked`: `policy` and `statistics` are guarded by `condition`; `head`, `projections`
    // and `scratch` are touched only by the writer thread (and by `init` before it starts).
    let condition = NSCondition()
    /// The queues and the rules of which work commits when (guarded by `condition`).
    private var policy: WriterPolicy<Work>
    /// Where the policy's times count from.
    private let started = ContinuousClock.now
    var statistics = WriterStatistics()
    private let finished = DispatchSemaphore(value: 0)
    /// Where processed batches are freed, off the writer's thread.
    private static let reclaimer = DispatchQueue(label: "runlog-writer-reclaim", qos: .utility)

    let env: LMDBEnvironment
    let dbs: LMDBEventStore.Databases
    let options: LMDBEventStore.Options
    let notifier: HeadNotifier
    var head: LogHead
    /// The inline projections attached so far (touched only by the writer thread).
    var projections: [AttachedProjection] = []
    let registry: ProjectionRegistry
    /// Where an event's envelope is copied for the projections: the space LMDB reserved for it
    /// may move once other tables change.
    var scratch: [UInt8] = []

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

    /// Who waits for a side write: a suspended caller, or a callback (`queueRequestRecord`).
    enum SideCompletion {
        case continuation(UnsafeContinuation<Void, any Error>)
        case callback(@Sendable (EventStoreError?) -> Void)

        func resume(_ error: EventStoreError?) {
            switch (self, error) {
            case (.continuation(let c), nil): c.resume()
            case (.continuation(let c), let error?): c.resume(throwing: error)
            case (.callback(let done), _): done(error)
            }
        }
    }

    enum Work: WriterQueueItem {
        case append(AppendRequest, Completion)
        case checkpoint(String, UInt64, UnsafeContinuation<Void, any Error>)
        /// Puts (or with nil deletes) an entry of a side table.
        case side(LMDBEventStore.SideTable, String, [UInt8]?, SideCompletion)
        /// Attaches an inline projection: folds in what its tables lack, then keeps them current.
        case attach(any InlineProjection, UnsafeContinuation<Void, any Error>)
        /// Envelopes and side changes copied from another log, written as they are.
        case replica(ReplicaBatch, UnsafeContinuation<LogHead, any Error>)

        var eventCount: Int {
            switch self {
            case .append(let request, _): request.eventCount
            case .replica(let copy, _): copy.envelopes.count
            case .checkpoint, .side, .attach: 0
            }
        }

        var byteCount: Int {
            switch self {
            case .append(let request, _): request.byteCount
            case .replica(let copy, _): copy.envelopes.reduce(0) { $0 + $1.count }
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
        policy = WriterPolicy(options: options)
        let thread = Thread { [self] in self.run() }
        thread.name = "runlog-writer"
        thread.qualityOfService = .userInteractive
        thread.start()
    }

    /// Queues `work`; the writer answers it after its commit. Background work commits after the
    /// normal work waiting with it (in the order submitted among itself).
    func submit(_ work: Work, background isBackground: Bool = false) {
        condition.lock()
        guard policy.running else {
            condition.unlock()
            switch work {
            case .append(_, let c): c.resume(.failure(EventStoreError.closedStore))
            case .checkpoint(_, _, let c), .attach(_, let c):
                c.resume(throwing: EventStoreError.closedStore)
            case .side(_, _, _, let c): c.resume(EventStoreError.closedStore)
            case .replica(_, let c): c.resume(throwing: EventStoreError.closedStore)
            }
            return
        }
        if policy.add(work, background: isBackground) { condition.signal() }
        condition.unlock()
    }

    /// Makes background appends wait (true) while real-time work is in flight, or lets them go.
    func deferBackground(_ on: Bool) {
        condition.lock()
        defer { condition.unlock() }
        if policy.deferBackground(on) { condition.signal() }
    }

    /// Stops taking batches until `release()`; what is queued meanwhile commits together.
    func hold() {
        condition.lock()
        policy.hold()
        condition.unlock()
    }

    func release() {
        condition.lock()
        policy.release()
        condition.signal()
        condition.unlock()
    }

    var deferringBackground: Bool {
        condition.lock()
        defer { condition.unlock() }
        return policy.deferring
    }

    /// Appends and checkpoints waiting for the writer.
    var queuedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return policy.queuedCount
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
        let wasRunning = policy.running
        policy.stop()
        condition.signal()
        condition.unlock()
        if wasRunning { finished.wait() }
    }

    /// The thread's loop: asks the policy what to do, waits as it says, commits the batches it
    /// forms and reports each commit's duration back to it.
    private func run() {
        while true {
            condition.lock()
            var batch: WriterPolicy<Work>.Batch
            decide: while true {
                let now = ContinuousClock.now - started
                switch policy.next(now: now) {
                case .commit(let next):
                    batch = next
                    break decide
                case .wait(until: nil):
                    condition.wait()
                case .wait(until: let time?):
                    _ = condition.wait(until: Date(timeIntervalSinceNow: (time - now) / .seconds(1)))
                case .exit:
                    condition.unlock()
                    finished.signal()
                    return
                }
            }
            condition.unlock()
            let took = process(batch.items)
            let ended = ContinuousClock.now - started
            var spare: [Work] = []
            spare.reserveCapacity(batch.items.count)
            condition.lock()
            policy.committed(batch, took: took, at: ended, spare: spare)
            condition.unlock()
            // The batch's requests (events, payloads, the engine's decoded values) are freed on
            // another thread: in a bulk import their releases showed in the writer thread's profile.
            let done = batch.items
            batch.items = []
            Self.reclaimer.async { withExtendedLifetime(done) {} }
        }
    }
}
