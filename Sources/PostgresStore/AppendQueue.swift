import EventLog
import Synchronization

/// The work of one node waiting for its next transaction (appends and side writes, in the order
/// queued), and the signal that wakes the commit loop (`PostgresLog.run`).
final class AppendQueue: Sendable {
    enum Item: Sendable {
        /// An append, with the request mark written beside its events when it writes any.
        case append([StreamWrite], RequestMark?, @Sendable (Result<AppendResult, EventStoreError>) -> Void)
        /// A side-table write; answered with the number of the change.
        case side(SideChange, @Sendable (Result<UInt64, EventStoreError>) -> Void)

        /// About the bytes the item adds to its transaction's statement.
        var byteCount: Int {
            switch self {
            case .append(let writes, let mark, _):
                writes.reduce(mark?.value.count ?? 0) { sum, write in
                    write.events.reduce(sum + write.stream.utf8.count) { $0 + $1.payload.count + $1.type.utf8.count + 128 }
                }
            case .side(let change, _): change.name.utf8.count + (change.value?.count ?? 0)
            }
        }

        func fail(_ error: EventStoreError) {
            switch self {
            case .append(_, _, let answer): answer(.failure(error))
            case .side(_, let answer): answer(.failure(error))
            }
        }
    }

    private let state = Mutex<(waiting: [Item], open: Bool)>(([], true))
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `item` (items queued one after another commit in that order); after `finish()` or
    /// `close()` it fails at once with `closed`.
    func submit(_ item: Item) {
        let queued = state.withLock { state in
            guard state.open else { return false }
            state.waiting.append(item)
            return true
        }
        if queued {
            wake.yield()
        } else {
            item.fail(EventStoreError.closedStore)
        }
    }

    /// Up to `max` items and about `maxBytes` (at least one item), oldest first, or nil when none
    /// waits.
    func take(max: Int, maxBytes: Int) -> [Item]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else { return nil }
            var count = 0
            var bytes = 0
            for item in state.waiting.prefix(max) {
                bytes += item.byteCount
                if count > 0 && bytes > maxBytes { break }
                count += 1
            }
            let batch = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            return batch
        }
    }

    /// Takes no more items; the commit loop commits what waits, then ends.
    func finish() {
        state.withLock { $0.open = false }
        wake.finish()
    }

    /// Fails what waits and every later item with `closed`.
    func close() {
        let left = state.withLock { state in
            state.open = false
            defer { state.waiting = [] }
            return state.waiting
        }
        wake.finish()
        for item in left { item.fail(EventStoreError.closedStore) }
    }
}
