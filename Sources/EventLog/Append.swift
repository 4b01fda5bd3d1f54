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

    package init(position: UInt64, stream: String, streamVersion: UInt64, id: UUID, recordedAt: Int64, hash: EventHash) {
        self.position = position
        self.stream = stream
        self.streamVersion = streamVersion
        self.id = id
        self.recordedAt = recordedAt
        self.hash = hash
    }

    package init(_ view: Envelope.View) {
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

    public init(events: [AppendedEvent], deduplicated: Bool) {
        self.events = events
        self.deduplicated = deduplicated
    }

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
    /// `LMDBEventStore.deferBackground` is on, such appends ride along with commits of normal appends
    /// up to `Options.rideAlongBytes`, commit in the gaps normal appends leave
    /// (`Options.backgroundGap`), and otherwise one at a time, only as often as
    /// `Options.backgroundShare` allows: a real-time append waits behind one of their commits
    /// rarely, and never behind more than one.
    case background
}

/// A request record that goes into the same transaction as the events of an append.
public struct RequestMark: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// While set, every append of this task (and of tasks it starts) that writes events also
    /// writes this request record, in the same transaction, unless one of that name exists.
    /// The HTTP layer marks an `Idempotency-Key` this way: once a command's events are durable,
    /// so is the mark that it ran, with no window in which a crash could lose it. Work that a
    /// command starts and that outlives it (an importer run) clears it
    /// (`RequestMark.$current.withValue(nil)`), so a mark swept after expiry is not written again.
    @TaskLocal public static var current: RequestMark?
}

/// The outcome of an append queued by `EventStore.submit(_:priority:)`: known once its commit is durable
/// (or it failed).
public final class PendingAppend: Sendable {
    private let state = Mutex<(result: Result<AppendResult, EventStoreError>?,
                               waiters: [CheckedContinuation<Result<AppendResult, EventStoreError>, Never>])>((nil, []))

    package init() {}

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

    package func complete(_ result: Result<AppendResult, EventStoreError>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}

/// Counters of the writer's group commits.
public struct WriterStatistics: Sendable, Hashable {
    /// Write transactions committed (each one fsync).
    public var commits: UInt64 = 0
    /// Appends and checkpoints answered.
    public var requests: UInt64 = 0
    /// Events written.
    public var events: UInt64 = 0
    /// Commits by number of requests: `[1, 2–4, 5–16, 17–64, 65–256, 257+]`.
    public var batchSizes: [UInt64] = [0, 0, 0, 0, 0, 0]

    public init() {}
    public static let batchSizeBounds = [1, 4, 16, 64, 256, Int.max]

    package mutating func record(batch: Int, events: UInt64) {
        commits += 1
        requests += UInt64(batch)
        self.events += events
        let bucket = Self.batchSizeBounds.firstIndex { batch <= $0 } ?? batchSizes.count - 1
        batchSizes[bucket] += 1
    }
}
