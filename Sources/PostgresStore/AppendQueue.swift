import EventLog
import Synchronization

/// The appends of one node waiting for its next transaction, and the signal that wakes the
/// commit loop (`PostgresLog.run`).
final class AppendQueue: Sendable {
    struct Append: Sendable {
        let writes: [StreamWrite]
        let answer: CheckedContinuation<Result<AppendResult, EventStoreError>, Never>
    }

    private let state = Mutex<(waiting: [Append], open: Bool)>(([], true))
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an append; after `close()` it fails at once.
    func submit(_ writes: [StreamWrite], _ answer: CheckedContinuation<Result<AppendResult, EventStoreError>, Never>) {
        let queued = state.withLock { state in
            guard state.open else { return false }
            state.waiting.append(Append(writes: writes, answer: answer))
            return true
        }
        if queued {
            wake.yield()
        } else {
            answer.resume(returning: .failure(EventStoreError.closedStore))
        }
    }

    /// Up to `max` appends, oldest first, or nil when none waits.
    func take(max: Int) -> [Append]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else { return nil }
            let batch = Array(state.waiting.prefix(max))
            state.waiting.removeFirst(batch.count)
            return batch
        }
    }

    /// Fails what waits and every later append with `closed`.
    func close() {
        let left = state.withLock { state in
            state.open = false
            defer { state.waiting = [] }
            return state.waiting
        }
        wake.finish()
        for append in left { append.answer.resume(returning: .failure(EventStoreError.closedStore)) }
    }
}
