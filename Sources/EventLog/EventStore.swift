public import Foundation

/// The storage seam: an append-only, hash-chained event log with a few named side tables.
///
/// Everything above the store (the engine, importers, the HTTP layer) uses this protocol and
/// nothing else; `LMDBStore` implements it for one machine, and a second backend implements the
/// same contract (the conformance suite in the tests runs against each). Guarantees every
/// implementation gives:
///
/// - positions are gap-free, in commit order, from 1; stream versions are contiguous from 1;
/// - an append is atomic over all its streams, checks each stream's expected version, and is
///   durable when it returns; one failing append never fails the others committed with it;
/// - an append whose event ids are all stored returns the original positions and writes nothing
///   (`AppendResult.deduplicated`); one with only some of them stored fails;
/// - every event's envelope and hash chain are the same bytes whatever the backend
///   (`Envelope`), so a log copied between backends verifies with the same head hash;
/// - side writes named by the caller (an idempotency mark, a vault entry, a checkpoint) are in
///   the same commit as the events they go with, or in a commit of their own.
public protocol EventStore: AnyObject, Sendable {
    /// Where the log lives, for messages (a directory, a database URL without its password).
    var location: String { get }
    /// Whether the store was opened without the right to append.
    var isReadOnly: Bool { get }
    /// Ends appends, reads and subscriptions; later calls throw `closed`.
    func close()
    /// `close()`, then waits until what was queued before it is durable and the store's files and
    /// connections are released (a store that does all of that in `close()` need not implement it).
    func shutdown() async
    /// Who executes which work when several nodes share the log; nil when one process has it all.
    var workLeases: (any WorkLeases)? { get }
    /// Whether other processes may append to this log at the same time (a database several nodes
    /// share). Such a store without `workLeases` executes no work it did not start itself.
    var isShared: Bool { get }

    // MARK: Appends

    /// Appends to one or more streams atomically: every event is written, or none. See
    /// `AppendPriority` for how `background` appends share the writer.
    func append(_ writes: [StreamWrite], priority: AppendPriority) async throws(EventStoreError) -> AppendResult
    /// Queues an append at once and returns a handle to its outcome. Appends of one priority
    /// queued one after another commit in that order. Bad input throws here.
    func submit(_ writes: [StreamWrite], priority: AppendPriority) throws(EventStoreError) -> PendingAppend
    /// While `on`, background appends give way to normal ones (real-time work is in flight).
    func deferBackground(_ on: Bool)
    /// Whether background appends are deferred now.
    var backgroundDeferred: Bool { get }
    /// Counters of the group commits since the store was opened.
    var writerStatistics: WriterStatistics { get }

    // MARK: Reads

    /// The committed head of the log.
    func head() throws(EventStoreError) -> LogHead
    /// The head as it was at `timestamp` (UTC ms): the last event recorded at or before it.
    func head(asOf timestamp: Int64) throws(EventStoreError) -> LogHead
    /// One stream from `version` (inclusive; nil: the first going forward, the last going back);
    /// `readStream(_:from:direction:limit:)` gives the usual arguments.
    func readEvents(of stream: String, from version: UInt64?, direction: ReadDirection, limit: Int)
        throws(EventStoreError) -> [RecordedEvent]
    /// The stream's last version (0 when it has no event).
    func streamVersion(_ stream: String) throws(EventStoreError) -> UInt64
    /// How many streams have a name that begins with `prefix`.
    func streamCount(prefix: String) throws(EventStoreError) -> Int
    /// The whole log from `position` (inclusive; nil: 1 going forward, the head going back); only
    /// events `filter` selects count towards `limit`. `readAll(from:direction:filter:limit:)` gives
    /// the usual arguments.
    func readLog(from position: UInt64?, direction: ReadDirection, filter: EventFilter, limit: Int)
        throws(EventStoreError) -> [RecordedEvent]
    /// The selected events from `position` on, a page at a time (the subscriptions' read).
    func readPage(from position: UInt64, filter: EventFilter, limit: Int) throws(EventStoreError) -> LogPage
    /// Calls `body` with a view of every envelope from `position` until it returns false: the
    /// fastest replay. The view is valid only during the call; errors `body` throws are rethrown.
    func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws
    /// Calls `body` with every selected event from `position` in log order until it returns false.
    func forEach(from position: UInt64, filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws
    /// The event at `position`, or nil.
    func event(at position: UInt64) throws(EventStoreError) -> RecordedEvent?
    /// The position of the event with `id`, or nil.
    func position(ofEventId id: UUID) throws(EventStoreError) -> UInt64?
    /// Counts and sizes.
    func stats() throws(EventStoreError) -> LogStats
    /// Recomputes the hash chain from position 1.
    func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport

    // MARK: Subscriptions

    /// Waits until the committed head reaches `position`; false when the store closed.
    func waitForCommit(reaching position: UInt64) async throws -> Bool

    // MARK: Side tables

    /// The vault: small values outside the hash chain that the log must be able to forget
    /// (per-subject encryption keys, sealed credentials). Durable when the write returns.
    func putVaultEntry(_ name: String, _ value: [UInt8]) async throws(EventStoreError)
    func deleteVaultEntry(_ name: String) async throws(EventStoreError)
    func vaultEntry(_ name: String) throws(EventStoreError) -> [UInt8]?
    /// Request records (idempotency answers), written alone or with an append (`RequestMark`).
    func putRequestRecord(_ name: String, _ value: [UInt8]) async throws(EventStoreError)
    /// Queues a request record without waiting for it: it goes into the writer's next commit,
    /// with the appends waiting then, and `whenDurable` is called once that commit is durable
    /// (nil) or failed. Bad input throws here, and nothing is queued. An idempotent command's
    /// answer is kept this way, so the command costs one durable commit, not two.
    func queueRequestRecord(_ name: String, _ value: [UInt8],
                            whenDurable: @escaping @Sendable (EventStoreError?) -> Void) throws(EventStoreError)
    func requestRecord(_ name: String) throws(EventStoreError) -> [UInt8]?
    /// Up to `limit` records after `after` (nil: from the first) in name order, each made into a
    /// value by `select` (nil skips it), with the last name examined.
    func requestRecords<T>(after: String?, limit: Int, _ select: (UnsafeRawBufferPointer) -> T?)
        throws(EventStoreError) -> (records: [(name: String, value: T)], last: String?)
    func deleteRequestRecords(_ names: [String]) async throws(EventStoreError)
    /// Named positions (how far a consumer has folded the log).
    func setCheckpoint(_ name: String, to position: UInt64) async throws(EventStoreError)
    func checkpoint(_ name: String) throws(EventStoreError) -> UInt64?
    func checkpoints() throws(EventStoreError) -> [String: UInt64]

    // MARK: Inline projections

    /// Attaches an inline projection: once this returns it has folded the whole log, and every
    /// later append changes it in its own commit.
    func attach(_ projection: any InlineProjection) async throws(EventStoreError)
    /// Runs `body` on the tables of the attached projection `name` as of one committed head.
    func readProjection<T>(_ name: String, _ body: (any ProjectionTables) throws -> T)
        throws(EventStoreError) -> T
    /// The position the attached projection `name` has folded in up to.
    func projectionPosition(_ name: String) throws(EventStoreError) -> UInt64?
}

extension EventStore {
    public func shutdown() async {
        close()
    }

    public var workLeases: (any WorkLeases)? { nil }

    public var isShared: Bool { false }
}

/// A page of the log read by a subscription: the events selected, and where the next page starts.
public struct LogPage: Sendable {
    public var events: [RecordedEvent]
    public var next: UInt64

    public init(events: [RecordedEvent], next: UInt64) {
        self.events = events
        self.next = next
    }
}

/// The usual arguments.
extension EventStore {
    /// Appends `events` to `stream` if it is at the `expected` version; durable when it returns.
    @discardableResult
    public func append(
        to stream: String,
        expected: ExpectedVersion = .any,
        _ events: [NewEvent]
    ) async throws(EventStoreError) -> AppendResult {
        try await append([StreamWrite(stream: stream, expected: expected, events: events)], priority: .normal)
    }

    @discardableResult
    public func append(_ writes: [StreamWrite]) async throws(EventStoreError) -> AppendResult {
        try await append(writes, priority: .normal)
    }

    public func submit(_ writes: [StreamWrite]) throws(EventStoreError) -> PendingAppend {
        try submit(writes, priority: .normal)
    }

    public func readStream(
        _ stream: String,
        from version: UInt64? = nil,
        direction: ReadDirection = .forward,
        limit: Int = 1000
    ) throws(EventStoreError) -> [RecordedEvent] {
        try readEvents(of: stream, from: version, direction: direction, limit: limit)
    }

    public func readAll(
        from position: UInt64? = nil,
        direction: ReadDirection = .forward,
        filter: EventFilter = .all,
        limit: Int = 1000
    ) throws(EventStoreError) -> [RecordedEvent] {
        try readLog(from: position, direction: direction, filter: filter, limit: limit)
    }

    public func forEachView(_ body: (EventView) throws -> Bool) throws {
        try forEachView(from: 1, body)
    }

    public func forEach(_ body: (RecordedEvent) throws -> Bool) throws {
        try forEach(from: 1, filter: .all, body)
    }

    public func forEach(from position: UInt64, _ body: (RecordedEvent) throws -> Bool) throws {
        try forEach(from: position, filter: .all, body)
    }

    public func forEach(filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws {
        try forEach(from: 1, filter: filter, body)
    }

    public func verify() throws(EventStoreError) -> VerifyReport {
        try verify(progress: nil)
    }

    /// Subscribes from `position` (inclusive): catch-up, then live, with no gap and no duplicate.
    public func subscribe(from position: UInt64 = 1, filter: EventFilter = .all, pageSize: Int = 512) -> EventSubscription {
        EventSubscription(store: self, from: position, filter: filter, pageSize: pageSize)
    }

    public func requestRecords<T>(
        limit: Int,
        _ select: (UnsafeRawBufferPointer) -> T?
    ) throws(EventStoreError) -> (records: [(name: String, value: T)], last: String?) {
        try requestRecords(after: nil, limit: limit, select)
    }
}
