import Synchronization

/// Wakes subscribers when the committed head moves past the position they wait for.
package final class HeadNotifier: Sendable {
    private enum Waiter {
        case registering
        case cancelled
        case waiting(UInt64, UnsafeContinuation<Void, any Error>)
    }

    private struct State {
        var head: UInt64 = 0
        var closed = false
        var nextId: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    package var head: UInt64 { state.withLock { $0.head } }

    /// Records a new committed head and wakes everyone waiting for a position up to it.
    package func advance(to head: UInt64) {
        let ready: [UnsafeContinuation<Void, any Error>] = state.withLock { s in
            guard head > s.head else { return [] }
            s.head = head
            var ready: [UnsafeContinuation<Void, any Error>] = []
            for (id, waiter) in s.waiters {
                if case .waiting(let position, let continuation) = waiter, position <= head {
                    ready.append(continuation)
                    s.waiters[id] = nil
                }
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Ends every wait; later waits return false at once.
    package func close() {
        let all: [UnsafeContinuation<Void, any Error>] = state.withLock { s in
            s.closed = true
            let all = s.waiters.values.compactMap { waiter -> UnsafeContinuation<Void, any Error>? in
                if case .waiting(_, let continuation) = waiter { return continuation }
                return nil
            }
            s.waiters.removeAll()
            return all
        }
        for continuation in all { continuation.resume() }
    }

    /// Waits until the head reaches `position`. Returns false when the store closed instead.
    /// Throws `CancellationError` when the task is cancelled.
    package func wait(for position: UInt64) async throws -> Bool {
        let id: UInt64? = state.withLock { s in
            if s.closed || s.head >= position { return nil }
            s.nextId += 1
            s.waiters[s.nextId] = .registering
            return s.nextId
        }
        guard let id else { return !state.withLock { $0.closed } }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enum Action { case wait, resume, cancel }
                let action: Action = state.withLock { s in
                    if case .cancelled = s.waiters[id] {
                        s.waiters[id] = nil
                        return .cancel
                    }
                    if s.closed || s.head >= position {
                        s.waiters[id] = nil
                        return .resume
                    }
                    s.waiters[id] = .waiting(position, continuation)
                    return .wait
                }
                switch action {
                case .wait: break
                case .resume: continuation.resume()
                case .cancel: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let continuation: UnsafeContinuation<Void, any Error>? = state.withLock { s in
                switch s.waiters[id] {
                case .registering:
                    s.waiters[id] = .cancelled
                    return nil
                case .waiting(_, let continuation):
                    s.waiters[id] = nil
                    return continuation
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume(throwing: CancellationError())
        }
        return !state.withLock { $0.closed }
    }
}

/// Every event from a position on, first those already stored (catch-up), then each new one as
/// it is committed (live): in log order, with no gap and no duplicate.
///
/// It reads the log itself on demand, a page at a time, so a slow consumer holds nothing in
/// memory and never slows the writer (back-pressure by pull). It ends when the store closes;
/// it throws `CancellationError` when its task is cancelled.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: any EventStore
    let start: UInt64
    let filter: EventFilter
    let pageSize: Int

    public init(store: any EventStore, from start: UInt64, filter: EventFilter, pageSize: Int) {
        self.store = store
        self.start = start
        self.filter = filter
        self.pageSize = Swift.max(1, pageSize)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, next: Swift.max(1, start), filter: filter, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: any EventStore
        /// The next position to examine.
        var next: UInt64
        let filter: EventFilter
        let pageSize: Int
        var buffer: [RecordedEvent] = []
        var index = 0

        /// Whether `next()` can answer from memory, without reading the log or waiting.
        public var hasBuffered: Bool { index < buffer.count }

        /// The next page, or nil when the store has closed.
        private func readPage() throws(EventStoreError) -> LogPage? {
            do {
                return try store.readPage(from: next, filter: filter, limit: pageSize)
            } catch where error.code == .closed {
                return nil
            }
        }

        public mutating func next() async throws -> RecordedEvent? {
            while true {
                if index < buffer.count {
                    defer { index += 1 }
                    return buffer[index]
                }
                buffer.removeAll(keepingCapacity: true)
                index = 0
                try Task.checkCancellation()
                guard let page = try readPage() else { return nil }
                next = page.next
                if !page.events.isEmpty {
                    buffer = page.events
                    continue
                }
                // Caught up: wait for the head to reach the next position.
                if try await !store.waitForCommit(reaching: next) { return nil }
            }
        }
    }
}
