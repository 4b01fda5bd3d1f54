public import EventLog
public import Foundation
public import LMDBStore
public import Logging
import Synchronization

/// The event store of a node on a PostgreSQL log: appends and side writes go to the database
/// (`PostgresLog`), reads come from a local copy in LMDB that follows it.
///
/// The copy (the *mirror*, a data directory of the node's own) takes every envelope and side
/// change from the database as it is stored there (`LMDBEventStore.replicate`), so it has the
/// same positions, ids and hash chain; the node's read models and inline projections fold it.
/// An append, a side write or a checkpoint returns once it has committed in the database and the
/// mirror has it, so what a node wrote it reads at once (read-your-writes by position). What other
/// nodes write arrives when the head watch or a notification shows it (`pollInterval`).
///
/// The mirror can be deleted at any time while the node is stopped: it is made again from the
/// database when the store opens. One whose head is not in the database (another database, or a
/// log replaced since) is made again too.
public final class PostgresEventStore: EventStore, Sendable {
    public let log: PostgresLog
    /// The node's copy of the log, which every read uses.
    public let mirror: LMDBEventStore
    private let closed = Atomic<Bool>(false)
    private let deferring = Atomic<Bool>(false)
    /// The mirror's head, closed with the store (what `waitForCommit` waits on).
    private let mirrored = HeadNotifier()
    /// The number of the last side change the mirror has, closed with the store.
    private let mirroredChanges = HeadNotifier()
    /// The tasks that run while the store is open: the log's, the mirror's follower, and the one
    /// that stops both once the store closes.
    private let tasks = Mutex<(running: Task<Void, Never>?, follower: Task<Void, Never>?, stopped: Task<Void, Never>?)>(
        (nil, nil, nil))
    /// The decodings of this node's appends not yet in the mirror, by event id
    /// (`NewEvent.decoded`): the mirror hands them to its inline projections as LMDB's own
    /// appends do, so they need not parse those payloads again.
    private let decodings = Mutex<[UUID: any Sendable]>([:])
    private let logger: Logger
    /// This node's work leases, when it executes work (`open`'s `lease`).
    public let leases: PostgresWorkLeases?
    public var workLeases: (any WorkLeases)? { leases }
    public var isShared: Bool { true }

    /// How many envelopes (and side changes) the mirror takes per commit.
    static let copyBatch = 512

    public var location: String { log.location }
    public var isReadOnly: Bool { false }

    private init(log: PostgresLog, mirror: LMDBEventStore, leases: PostgresWorkLeases?, logger: Logger) {
        self.log = log
        self.mirror = mirror
        self.leases = leases
        self.logger = logger
    }

    /// How a node that executes work holds its lease (`PostgresWorkLeases`).
    public struct LeaseSettings: Sendable {
        /// The node's name, for operators.
        public var node: String
        /// How long the lease lasts without renewal: how long a dead node's work waits.
        public var timeout: Duration
        /// Called once, with the reason, when this node is fenced off the log and commits nothing
        /// more: another node took its lease, or after a failover the database's log does not
        /// continue the node's copy (commits the old primary lost had been copied). It must restart.
        public var fenced: @Sendable (String) -> Void

        public init(node: String, timeout: Duration = .seconds(10), fenced: @escaping @Sendable (String) -> Void = { _ in }) {
            self.node = node
            self.timeout = timeout
            self.fenced = fenced
        }
    }

    /// Opens the log at `url` in `schema` (created when missing), with the node's mirror in the
    /// directory `mirror`, and brings the mirror up to the database's head before returning.
    ///
    /// With `creating` false, a schema without the log's tables throws `dataDirectoryMissing`
    /// instead of being made (a command that only reads).
    ///
    /// With `lease`, the node executes work: it holds a work lease (`workLeases`), takes over the
    /// lease of its previous process (its number is kept in the mirror's directory) and those
    /// that expired, and its appends fail once another node has taken its lease.
    public static func open(
        url: String,
        schema: String = "runlog",
        mirror directory: String,
        creating: Bool = true,
        pollInterval: Duration = .milliseconds(100),
        lease: LeaseSettings? = nil,
        logger: Logger = Logger(label: "runlog.postgres")
    ) async throws(EventStoreError) -> PostgresEventStore {
        let log = try PostgresLog(url: url, schema: schema, pollInterval: pollInterval, logger: logger)
        let running = Task { await log.run() }
        do throws(EventStoreError) {
            if log.endpoints.count > 1, !(await log.locatePrimary()) {
                throw EventStoreError(.storage, "no server of \(log.location) answers as a primary")
            }
            if creating {
                try await log.migrate()
            } else if !(try await log.isMigrated(tablesOnly: true)) {
                throw EventStoreError(.dataDirectoryMissing, "\(log.location) holds no Runlog log in schema \(log.schema)")
            }
            let mirror = try await openMirror(directory, of: log, logger: logger)
            let leases: PostgresWorkLeases?
            do throws(EventStoreError) {
                if let lease {
                    leases = try await startLeases(lease, log: log, directory: directory)
                } else {
                    leases = nil
                }
            } catch {
                mirror.close()
                throw error
            }
            let store = PostgresEventStore(log: log, mirror: mirror, leases: leases, logger: logger)
            do {
                try await store.catchUp()
                store.mirrored.advance(to: try mirror.head().position)
                store.mirroredChanges.advance(to: try mirror.replicaChangesReached())
            } catch {
                await leases?.stop(release: true)
                mirror.close()
                throw error
            }
            log.onPrimaryChange.withLock { $0 = { [weak store] in Task { await store?.checkContinues() } } }
            store.start(running)
            return store
        } catch {
            log.finish()
            running.cancel()
            await running.value
            throw error
        }
    }

    /// Starts this node's lease, taking over its previous process's (the number in `DIRECTORY/lease`,
    /// replaced by the new one).
    private static func startLeases(_ settings: LeaseSettings, log: PostgresLog, directory: String) async throws(EventStoreError)
        -> PostgresWorkLeases {
        let file = directory + "/lease"
        let previous = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap {
            Int64($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let leases = try await PostgresWorkLeases.start(log: log, node: settings.node, previous: previous,
                                                        timeout: settings.timeout, fenced: settings.fenced)
        do {
            try Data("\(leases.id)\n".utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            await leases.stop(release: true)
            throw EventStoreError(.storage, "cannot write this node's lease number to \(file): \(error)")
        }
        return leases
    }

    /// Opens the mirror in `directory`; one that is not a copy of this database's log (its head is
    /// not the database's event at that position, or it counts more side changes than the
    /// database: another database, or one restored or copied since) is removed and made anew.
    private static func openMirror(_ directory: String, of log: PostgresLog, logger: Logger) async throws(EventStoreError)
        -> LMDBEventStore {
        let mirror = try LMDBEventStore(directory: directory, options: mirrorOptions)
        let matches: Bool
        do throws(EventStoreError) {
            let head = try mirror.head()
            let changes = try mirror.replicaChangesReached()
            let database = try await log.committed()
            if head.position == 0 {
                matches = changes <= database.changes
            } else {
                let same = try await log.read(from: head.position, limit: 1).first
                matches = same?.position == head.position && same?.hash == head.hash && changes <= database.changes
            }
        } catch {
            mirror.close()
            throw error
        }
        if matches { return mirror }
        logger.warning("the local copy is not a copy of this database's log: making it again", metadata: ["mirror": "\(directory)"])
        mirror.close()
        do {
            try FileManager.default.removeItem(atPath: directory)
        } catch {
            throw EventStoreError(.storage, "cannot remove the stale local copy in \(directory): \(error)")
        }
        return try LMDBEventStore(directory: directory, options: mirrorOptions)
    }

    /// The mirror's commits sync their pages but not LMDB's meta page: what a system crash undoes
    /// is copied again from the database at the next open.
    static var mirrorOptions: LMDBEventStore.Options {
        var options = LMDBEventStore.Options()
        options.syncsMetaPage = false
        return options
    }

    /// Copies into the mirror what it lacks until a read brings nothing new.
    private func catchUp() async throws(EventStoreError) {
        while try await copyOnce() {}
    }

    /// One read from the database and, when it brought anything, one commit of the mirror;
    /// whether it brought anything.
    private func copyOnce() async throws(EventStoreError) -> Bool {
        let head = try mirror.head().position
        let changes = try mirror.replicaChangesReached()
        var batch = try await log.changes(after: head, changesAfter: changes, limit: Self.copyBatch)
        batch.decoded = decodings.withLock { $0 }
        guard !batch.envelopes.isEmpty || !batch.changes.isEmpty || (batch.changesReached ?? 0) > changes else {
            return false
        }
        let reached = try await mirror.replicate(batch)
        mirrored.advance(to: reached.position)
        mirroredChanges.advance(to: max(changes, batch.changesReached ?? 0))
        return true
    }

    /// Runs the log and the mirror's follower until `close()`.
    private func start(_ running: Task<Void, Never>) {
        let follower = Task { await self.follow() }
        tasks.withLock { $0 = (running, follower, nil) }
    }

    /// After a failover: whether the new primary's log still holds the mirror's head. A commit the
    /// old primary made visible but lost (it had not reached the standby) may have been copied;
    /// then the mirror is not a copy of this log any more, and the node is fenced (its next open
    /// makes the mirror again). Tried until it gets an answer or the store closes.
    func checkContinues() async {
        while !closed.load(ordering: .relaxed) {
            do {
                let head = try mirror.head()
                let changes = try mirror.replicaChangesReached()
                let database = try await log.committed()
                if changes > database.changes {
                    log.fence("after a failover the database has \(database.changes) side changes and this node's copy "
                              + "\(changes) (the old primary lost changes this node had copied)")
                    return
                }
                guard head.position > 0 else { return }
                let same = try await log.read(from: head.position, limit: 1).first
                if same?.hash != head.hash {
                    log.fence("after a failover the database's log does not hold this node's copy at position "
                              + "\(head.position) (the old primary lost commits this node had copied)")
                }
                return
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Copies into the mirror each time the log shows something new, until the log stops.
    /// A failure waits before the next try, twice as long each time up to 5 s; the first failure
    /// after a success is logged, and then one a minute.
    private func follow() async {
        var delay = log.pollInterval
        var failing = false
        var lastLogged = ContinuousClock.now
        while !Task.isCancelled {
            let seen = log.generation
            do {
                let copied = try await copyOnce()
                delay = log.pollInterval
                failing = false
                if copied { continue }
            } catch {
                if closed.load(ordering: .relaxed) || Task.isCancelled { return }
                if !failing || ContinuousClock.now - lastLogged >= .seconds(60) {
                    logger.error("cannot copy from the database into the local copy; trying again",
                                 metadata: ["error": "\(error.message)"])
                    lastLogged = ContinuousClock.now
                }
                failing = true
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
                continue
            }
            guard (try? await log.waitForNews(after: seen)) == true else { return }
        }
    }

    /// Waits until the mirror has `position` and the side change `change`; returns early when the
    /// store closes, or after `settleLimit` when the mirror cannot follow (what was written is in
    /// the database either way; the follower logs why it cannot copy).
    private func settle(position: UInt64, change: UInt64) async {
        let reached = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try? await self.mirrored.wait(for: position)
                _ = try? await self.mirroredChanges.wait(for: change)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: Self.settleLimit)
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? true
        }
        if !reached {
            logger.error("the local copy has not reached a committed write after \(Self.settleLimit): answering without it",
                         metadata: ["position": "\(position)", "change": "\(change)"])
        }
    }

    /// The longest a write waits for the mirror to have it.
    static let settleLimit: Duration = .seconds(30)

    private func checkOpen() throws(EventStoreError) {
        if closed.load(ordering: .relaxed) { throw EventStoreError.closedStore }
    }

    /// Takes no more work; what is queued commits in the database, then the mirror closes. The
    /// follower stops first, while the log's connections still run (a query on a client that
    /// stopped running would wait for ever).
    public func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        mirrored.close()
        mirroredChanges.close()
        tasks.withLock { tasks in
            let (running, follower) = (tasks.running, tasks.follower)
            follower?.cancel()
            tasks.stopped = Task { [log, mirror, leases] in
                await follower?.value
                await leases?.stop(release: true)
                log.finish()
                await running?.value
                mirror.close()
            }
        }
    }

    /// `close()`, and waits until what was queued has committed and the mirror is closed.
    public func shutdown() async {
        close()
        // Another caller's close() may still be storing the stopping task: wait for it to appear.
        while true {
            if let stopped = tasks.withLock({ $0.stopped }) { return await stopped.value }
            if tasks.withLock({ $0.running == nil }) { return }
            await Task.yield()
        }
    }

    // MARK: Appends

    public func append(_ writes: [StreamWrite], priority: AppendPriority) async throws(EventStoreError) -> AppendResult {
        try checkOpen()
        let ids = keepDecodings(writes)
        defer { forgetDecodings(ids) }
        let result = try await log.append(writes, mark: RequestMark.current)
        await settle(position: result.lastPosition, change: log.knownChanges)
        return result
    }

    public func submit(_ writes: [StreamWrite], priority: AppendPriority) throws(EventStoreError) -> PendingAppend {
        try checkOpen()
        let pending = PendingAppend()
        let ids = keepDecodings(writes)
        do {
            try log.submit(writes, mark: RequestMark.current) { [self] outcome in
                guard case .success(let result) = outcome else {
                    forgetDecodings(ids)
                    return pending.complete(outcome)
                }
                let change = log.knownChanges
                Task {
                    await self.settle(position: result.lastPosition, change: change)
                    self.forgetDecodings(ids)
                    pending.complete(outcome)
                }
            }
        } catch {
            forgetDecodings(ids)
            throw error
        }
        return pending
    }

    /// Keeps the decodings `writes` carry until the mirror has their events; their ids.
    private func keepDecodings(_ writes: [StreamWrite]) -> [UUID] {
        var kept: [(UUID, any Sendable)] = []
        for write in writes {
            for event in write.events { if let decoded = event.decoded { kept.append((event.id, decoded)) } }
        }
        guard !kept.isEmpty else { return [] }
        decodings.withLock { map in for (id, decoded) in kept { map[id] = decoded } }
        return kept.map(\.0)
    }

    private func forgetDecodings(_ ids: [UUID]) {
        guard !ids.isEmpty else { return }
        decodings.withLock { map in for id in ids { map[id] = nil } }
    }

    /// Recorded for `backgroundDeferred`; appends in the database are not held back by priority:
    /// each node's transactions take them in the order queued.
    public func deferBackground(_ on: Bool) {
        deferring.store(on, ordering: .relaxed)
    }

    public var backgroundDeferred: Bool { deferring.load(ordering: .relaxed) }

    /// The node's append transactions.
    public var writerStatistics: WriterStatistics { log.writerStatistics }

    // MARK: Side tables

    private func writeSide(_ change: SideChange) async throws(EventStoreError) {
        try checkOpen()
        let number = try await log.writeSide(change)
        await settle(position: 0, change: number)
    }

    public func putVaultEntry(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await writeSide(SideChange(.vault, name, value))
    }

    public func deleteVaultEntry(_ name: String) async throws(EventStoreError) {
        try await writeSide(SideChange(.vault, name, nil))
    }

    public func vaultEntry(_ name: String) throws(EventStoreError) -> [UInt8]? {
        try checkOpen()
        return try mirror.vaultEntry(name)
    }

    public func putRequestRecord(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await writeSide(SideChange(.requests, name, value))
    }

    public func queueRequestRecord(_ name: String, _ value: [UInt8],
                                   whenDurable: @escaping @Sendable (EventStoreError?) -> Void) throws(EventStoreError) {
        try checkOpen()
        try log.queueSide(SideChange(.requests, name, value)) { [self] outcome in
            switch outcome {
            case .failure(let error): whenDurable(error)
            case .success(let number):
                Task {
                    await self.settle(position: 0, change: number)
                    whenDurable(nil)
                }
            }
        }
    }

    public func requestRecord(_ name: String) throws(EventStoreError) -> [UInt8]? {
        try checkOpen()
        return try mirror.requestRecord(name)
    }

    public func requestRecords<T>(after: String?, limit: Int, _ select: (UnsafeRawBufferPointer) -> T?)
        throws(EventStoreError) -> (records: [(name: String, value: T)], last: String?) {
        try checkOpen()
        return try mirror.requestRecords(after: after, limit: limit, select)
    }

    public func deleteRequestRecords(_ names: [String]) async throws(EventStoreError) {
        try checkOpen()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in names {
                    group.addTask { try await self.writeSide(SideChange(.requests, name, nil)) }
                }
                try await group.waitForAll()
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "cannot delete request records: \(error)")
        }
    }

    public func setCheckpoint(_ name: String, to position: UInt64) async throws(EventStoreError) {
        try await writeSide(SideChange(.checkpoints, name, SideChange.checkpointValue(position)))
    }

    public func checkpoint(_ name: String) throws(EventStoreError) -> UInt64? {
        try checkOpen()
        return try mirror.checkpoint(name)
    }

    public func checkpoints() throws(EventStoreError) -> [String: UInt64] {
        try checkOpen()
        return try mirror.checkpoints()
    }

    // MARK: Reads (from the mirror)

    public func head() throws(EventStoreError) -> LogHead {
        try checkOpen()
        return try mirror.head()
    }

    public func head(asOf timestamp: Int64) throws(EventStoreError) -> LogHead {
        try checkOpen()
        return try mirror.head(asOf: timestamp)
    }

    public func readEvents(of stream: String, from version: UInt64?, direction: ReadDirection, limit: Int)
        throws(EventStoreError) -> [RecordedEvent] {
        try checkOpen()
        return try mirror.readEvents(of: stream, from: version, direction: direction, limit: limit)
    }

    public func streamVersion(_ stream: String) throws(EventStoreError) -> UInt64 {
        try checkOpen()
        return try mirror.streamVersion(stream)
    }

    public func streamCount(prefix: String) throws(EventStoreError) -> Int {
        try checkOpen()
        return try mirror.streamCount(prefix: prefix)
    }

    public func readLog(from position: UInt64?, direction: ReadDirection, filter: EventFilter, limit: Int)
        throws(EventStoreError) -> [RecordedEvent] {
        try checkOpen()
        return try mirror.readLog(from: position, direction: direction, filter: filter, limit: limit)
    }

    public func readPage(from position: UInt64, filter: EventFilter, limit: Int) throws(EventStoreError) -> LogPage {
        try checkOpen()
        return try mirror.readPage(from: position, filter: filter, limit: limit)
    }

    public func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws {
        try checkOpen()
        try mirror.forEachView(from: position, body)
    }

    public func forEach(from position: UInt64, filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws {
        try checkOpen()
        try mirror.forEach(from: position, filter: filter, body)
    }

    public func event(at position: UInt64) throws(EventStoreError) -> RecordedEvent? {
        try checkOpen()
        return try mirror.event(at: position)
    }

    public func position(ofEventId id: UUID) throws(EventStoreError) -> UInt64? {
        try checkOpen()
        return try mirror.position(ofEventId: id)
    }

    public func stats() throws(EventStoreError) -> LogStats {
        try checkOpen()
        return try mirror.stats()
    }

    /// Recomputes the hash chain of the mirror (the same envelopes as the database, each checked
    /// against the chain as it was copied); `PostgresLog.verify()` reads the database itself.
    public func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport {
        try checkOpen()
        return try mirror.verify(progress: progress)
    }

    public func waitForCommit(reaching position: UInt64) async throws -> Bool {
        if closed.load(ordering: .relaxed) { return false }
        return try await mirrored.wait(for: position)
    }

    // MARK: Inline projections (kept in the mirror)

    public func attach(_ projection: any InlineProjection) async throws(EventStoreError) {
        try checkOpen()
        try await mirror.attach(projection)
    }

    public func readProjection<T>(_ name: String, _ body: (any ProjectionTables) throws -> T) throws(EventStoreError) -> T {
        try checkOpen()
        return try mirror.readProjection(name, body)
    }

    public func projectionPosition(_ name: String) throws(EventStoreError) -> UInt64? {
        try checkOpen()
        return try mirror.projectionPosition(name)
    }
}
