public import EventLog
import Foundation
public import Logging
import NIOCore
public import PostgresNIO
import Synchronization

/// The log in PostgreSQL: the same envelopes, positions and hash chain as the LMDB store, in a
/// database that several nodes share.
///
/// Positions come from one head row locked in each append's transaction, not from a sequence: a
/// sequence hands out numbers outside transactions, so a later number can commit before an
/// earlier one and a reader that moved past it would never see the earlier (or a rolled-back
/// number would leave a hole). Under the lock, positions are gap-free and in commit order, and
/// the head row carries the last hash the next event links to. Stream versions, expectations and
/// idempotency by event id are checked under the same lock.
///
/// Tables (in `schema`): `events` (position, id, stream, stream version, type, recorded-at and the
/// envelope), `streams` (each stream's version), `head` (one row: the last position and hash, and
/// the number of the last side change) and `side` (the side tables: vault entries, request
/// records, checkpoints; each row with the number of the change that last wrote it, a deleted
/// entry kept as a row without a value so that copies learn of the delete). Side changes are
/// numbered under the same head lock, so their numbers are in commit order too.
public final class PostgresLog: Sendable {
    /// The connection pool to the primary this node works on now.
    public var client: PostgresClient { current.withLock { $0.client } }
    /// The servers of the URL's host list: a primary and its standbys.
    public let endpoints: [PostgresURL.Endpoint]
    private let url: PostgresURL
    /// The server this node works on (an index into `endpoints`) and its pool.
    private let current: Mutex<(index: Int, client: PostgresClient)>
    /// Pools made after a failover, for `run()` to run (the first is the initial pool).
    private let newClients: AsyncStream<PostgresClient>
    private let newClient: AsyncStream<PostgresClient>.Continuation
    /// The search for the primary under way, if any (`locatePrimary`).
    private let locating = Mutex<Task<Bool, Never>?>(nil)
    /// How many times this node moved to another primary (a pool waiting to reach a dead server
    /// waits for ever: the work on it is given up when the node moves, `onPrimary`).
    private let primaries = HeadNotifier()
    /// When the search for the primary last said it found none (said at most every 10 s).
    private let noPrimaryWarning = Mutex<ContinuousClock.Instant?>(nil)
    /// How many times this node moved to another primary.
    var primaryGeneration: UInt64 { primaries.head }
    /// Appends waiting for this node's next transaction.
    private let queue = AppendQueue()
    private let counters = Mutex(WriterStatistics())
    /// The head this node knows: its own commits, the other nodes' notifications, polling.
    private let notifier = HeadNotifier()
    /// What this node knows of the log (the last position and side change) and a count of the
    /// times it grew, for `waitForNews`.
    private let known = Mutex<(position: UInt64, changes: UInt64, generation: UInt64)>((0, 0, 0))
    private let news = HeadNotifier()
    /// How often the head is read, to learn of the other nodes' commits.
    public let pollInterval: Duration
    /// The lease this node's appends are written under (`PostgresWorkLeases`); -1 for none.
    let leaseId = Atomic<Int64>(-1)
    /// Whether another node took this node's lease: nothing more commits.
    private let fencedFlag = Atomic<Bool>(false)
    /// Called once, with the reason, when this node is fenced (`fence`).
    let onFence = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Called after this node moved to another primary (`locatePrimary`).
    let onPrimaryChange = Mutex<(@Sendable () -> Void)?>(nil)

    /// The notification channel of this log's schema.
    var channel: String { "runlog_\(schema)" }

    /// Counters of this node's append transactions (each one commit) since it started.
    public var writerStatistics: WriterStatistics { counters.withLock { $0 } }
    /// The schema that holds the tables (a plain identifier).
    public let schema: String
    /// Where the log lives, without the password (for messages).
    public let location: String
    let logger: Logger

    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]`, the
    /// URL's schema taking the place of `schema`); `run()` must run while the log is used.
    public init(url: String, schema: String = "runlog", pollInterval: Duration = .milliseconds(100),
                logger: Logger = Logger(label: "runlog.postgres")) throws(EventStoreError) {
        let parsed = try PostgresURL(url)
        let schema = parsed.schema ?? schema
        // 56 at most: the notification channel, runlog_SCHEMA, must stay within PostgreSQL's 63 bytes.
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,55}$", options: .regularExpression) != nil else {
            throw EventStoreError(.invalidArgument, "a schema name is 1 to 56 lowercase letters, digits and underscores, "
                                  + "not starting with a digit", field: "schema", value: schema)
        }
        self.url = parsed
        endpoints = parsed.endpoints
        let client = PostgresClient(configuration: Self.poolConfiguration(parsed, parsed.endpoints[0]))
        current = Mutex((0, client))
        (newClients, newClient) = AsyncStream.makeStream(of: PostgresClient.self)
        newClient.yield(client)
        self.schema = schema
        self.pollInterval = pollInterval
        self.logger = logger
        location = Self.withoutPassword(url)
    }

    public static func withoutPassword(_ url: String) -> String {
        PostgresURL.withoutPassword(url)
    }

    private static func poolConfiguration(_ url: PostgresURL, _ endpoint: PostgresURL.Endpoint) -> PostgresClient.Configuration {
        PostgresClient.Configuration(host: endpoint.host, port: endpoint.port, username: url.user, password: url.password,
                                     database: url.database, tls: .disable)
    }

    /// How a connection of its own reaches the server this node works on (the head watch, the
    /// search for the primary).
    private func connectionConfiguration(_ endpoint: PostgresURL.Endpoint? = nil, name: String) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: (endpoint ?? currentEndpoint).host, port: (endpoint ?? currentEndpoint).port, username: url.user,
            password: url.password, database: url.database, tls: .disable)
        // Named in pg_stat_activity, for operators (and the test that cuts the watch).
        configuration.options.additionalStartupParameters = [("application_name", "\(name) \(schema)")]
        configuration.options.connectTimeout = .seconds(2)
        return configuration
    }

    /// The server this node works on now.
    public var currentEndpoint: PostgresURL.Endpoint { endpoints[current.withLock { $0.index }] }

    // MARK: Failover

    /// Finds the primary among `endpoints` (the server not in recovery, `pg_is_in_recovery()`),
    /// starting with the current one, and works on it from now on. True when the current server is
    /// the primary or one was found; false when no server answered as a primary. Callers at the same
    /// time share one search.
    @discardableResult
    public func locatePrimary() async -> Bool {
        let search = locating.withLock { locating in
            if let running = locating { return running }
            let task = Task { await self.searchPrimary() }
            locating = task
            return task
        }
        let found = await search.value
        locating.withLock { locating in
            if locating == search { locating = nil }
        }
        return found
    }

    private func searchPrimary() async -> Bool {
        let start = current.withLock { $0.index }
        for step in 0..<endpoints.count {
            let index = (start + step) % endpoints.count
            let endpoint = endpoints[index]
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: connectionConfiguration(endpoint, name: "runlog probe"), id: 0, logger: logger)
                var standby = true
                do {
                    for try await inRecovery in try await connection.query("SELECT pg_is_in_recovery()", logger: logger)
                        .decode(Bool.self) { standby = inRecovery }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
                if standby { continue }
            } catch {
                continue
            }
            if index != start {
                let client = PostgresClient(configuration: Self.poolConfiguration(url, endpoint))
                current.withLock { $0 = (index, client) }
                newClient.yield(client)
                // The new primary's head may be below what the old one showed (commits it never
                // got): what this node knows starts again from the new primary's answers.
                let generation: UInt64 = known.withLock { known in
                    known.position = 0
                    known.changes = 0
                    known.generation += 1
                    return known.generation
                }
                news.advance(to: generation)
                primaries.advance(to: primaries.head + 1)
                logger.notice("working on the primary \(endpoint) now", metadata: ["log": "\(location)"])
                onPrimaryChange.withLock { $0 }?()
            }
            return true
        }
        if noPrimaryWarning.withLock({ last in
            guard last.map({ ContinuousClock.now - $0 >= .seconds(10) }) ?? true else { return false }
            last = .now
            return true
        }) {
            logger.warning("no server of the host list answers as a primary (said at most every 10 s)",
                           metadata: ["log": "\(location)"])
        }
        return false
    }

    /// Whether `error` may pass once the primary is found again: a lost or refused connection, a
    /// server shutting down, or a write refused by a standby (SQLSTATE classes 08 and 57P, 25006).
    static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? PostgresTransactionError {
            return [error.beginError, error.closureError, error.commitError].compactMap { $0 }.contains(where: isTransient)
        }
        if error is EventStoreError { return false }
        guard let error = error as? PSQLError else { return true }
        guard let state = error.serverInfo?[.sqlState] else { return true }
        return state.hasPrefix("08") || state.hasPrefix("57P") || state == "25006"
    }

    /// Runs `body` on the current primary's pool; when this node moves to another primary first,
    /// gives it up and throws `MovedPrimary` (transient: the caller tries again on the new one). A
    /// request to a pool whose server died waits for a connection for ever, and does not end when
    /// cancelled, so `body` runs in a task of its own that is cancelled and let go, not awaited.
    ///
    /// With `limit`, gives it up after that long too (`TimedOut`).
    private func onPrimary<T: Sendable>(limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> T)
        async throws -> T {
        guard endpoints.count > 1 || limit != nil else { return try await body() }
        let generation = primaries.head
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation)
                race.add(Task {
                    do {
                        race.finish(.success(try await body()))
                    } catch {
                        race.finish(.failure(error))
                    }
                })
                if self.endpoints.count > 1 {
                    race.add(Task {
                        guard (try? await self.primaries.wait(for: generation + 1)) != nil else { return }
                        race.finish(.failure(MovedPrimary()))
                    })
                }
                if let limit {
                    race.add(Task {
                        guard (try? await Task.sleep(for: limit)) != nil else { return }
                        race.finish(.failure(TimedOut(limit: limit)))
                    })
                }
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The first of a body and a move to another primary: answers the caller once, then cancels
    /// both tasks.
    private final class Race<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, tasks: [Task<Void, Never>],
                                   outcome: Result<T, any Error>?)>((nil, [], nil))

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Result<T, any Error>? in
                if let outcome = state.outcome { return outcome }
                state.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        func add(_ task: Task<Void, Never>) {
            let done = state.withLock { state in
                state.tasks.append(task)
                return state.outcome != nil
            }
            if done { task.cancel() }
        }

        func finish(_ outcome: Result<T, any Error>) {
            let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
                guard state.outcome == nil else { return (nil, []) }
                state.outcome = outcome
                defer { state.continuation = nil }
                return (state.continuation, state.tasks)
            }
            continuation?.resume(with: outcome)
            for task in tasks { task.cancel() }
        }
    }

    /// Work given up after its time limit.
    struct TimedOut: Error, CustomStringConvertible {
        var limit: Duration
        var description: String { "no answer within \(limit)" }
    }

    /// Work given up because the node moved to another primary.
    struct MovedPrimary: Error, CustomStringConvertible {
        var description: String { "this node moved to another primary" }
    }

    /// How long an append waits for a primary after a transient failure (failover), with a host list.
    static let failoverLimit: Duration = .seconds(30)

    /// Runs each pool this log makes (the first, and one per failover) until cancelled.
    private func runClients() async {
        await withDiscardingTaskGroup { group in
            for await client in newClients {
                group.addTask { await client.run() }
            }
        }
    }

    /// Runs the connection pool, the commits of this node's appends and the watch of the head
    /// until `finish()` was called and what was queued before it has committed, or until the
    /// calling task is cancelled (appends waiting then fail with `closed`).
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.runClients() }
            group.addTask { await self.watchHead() }
            await self.commitLoop()
            group.cancelAll()
        }
        notifier.close()
        news.close()
    }

    /// Takes no more appends or side writes (they fail with `closed`); what is queued commits,
    /// then `run()` returns.
    public func finish() {
        queue.finish()
    }

    // MARK: Following the head

    /// Waits until the head this node knows reaches `position`; false once the log stopped.
    public func waitForCommit(reaching position: UInt64) async throws -> Bool {
        try await notifier.wait(for: position)
    }

    /// The number of the last side change this node knows of.
    public var knownChanges: UInt64 { known.withLock { $0.changes } }

    /// How many times what this node knows of the log grew (a new position or side change, its
    /// own or another node's).
    public var generation: UInt64 { known.withLock { $0.generation } }

    /// Waits until `generation` passes `seen`; false once the log stopped.
    public func waitForNews(after seen: UInt64) async throws -> Bool {
        try await news.wait(for: seen + 1)
    }

    /// Records what a commit or a read of the head showed.
    private func observe(_ row: HeadRow) {
        observe(position: row.head.position, changes: row.changes)
    }

    private func observe(position: UInt64, changes: UInt64) {
        notifier.advance(to: position)
        let generation: UInt64? = known.withLock { known in
            guard position > known.position || changes > known.changes else { return nil }
            known.position = max(known.position, position)
            known.changes = max(known.changes, changes)
            known.generation += 1
            return known.generation
        }
        if let generation { news.advance(to: generation) }
    }

    /// Keeps the known head current. The watch holds a connection of its own that listens on the
    /// log's channel (each append sends `pg_notify` with its head when it commits), so another
    /// node's commit wakes this node at once; on the same connection it reads the head every
    /// `pollInterval`, which catches what a notification could miss and finds a dead connection.
    /// When the connection fails (a read fails, or the notifications end) the watch closes it
    /// itself, waits a moment and connects again, reading the head first: postgres-nio's
    /// notification sequence did not end when the server cut the connection, so the watch does
    /// not rely on it ending.
    private func watchHead() async {
        var attempt: UInt64 = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                try await watchOnce(id: Int(truncatingIfNeeded: attempt))
            } catch {
                if Task.isCancelled { break }
                logger.warning("the head watch lost its connection; connecting again",
                               metadata: ["error": "\(Self.describe(error))"])
                // The server may be gone for good: the next connection goes to the primary there is.
                if endpoints.count > 1 { await locatePrimary() }
            }
            try? await Task.sleep(for: min(pollInterval, .seconds(1)))
        }
    }

    /// One connection of the watch: listens, and polls until a read fails, the notifications end,
    /// or the task is cancelled; then closes the connection. The listener is a task of its own
    /// that is cancelled but not awaited: postgres-nio's notification sequence did not always end
    /// when its connection was closed, and awaiting it hung the watch (and the node's shutdown).
    private func watchOnce(id: Int) async throws {
        let connection = try await PostgresConnection.connect(configuration: connectionConfiguration(name: "runlog watch"),
                                                              id: id, logger: logger)
        let ended = Atomic<Bool>(false)
        let listener = Task {
            defer { ended.store(true, ordering: .relaxed) }
            try await connection.listen(on: self.channel) { notifications in
                for try await notification in notifications { self.observe(notification: notification.payload) }
            }
        }
        do {
            while !ended.load(ordering: .relaxed) {
                // A read that does not answer in time counts as a dead connection: the watch must
                // not stop following the log on one connection (a full test run once saw a node
                // that never learnt of a commit after its watch's connection was cut).
                try await onPrimary(limit: Self.watchReadLimit) { try await self.readHeadIntoNotifier(connection) }
                try await Task.sleep(for: pollInterval)
            }
            throw EventStoreError(.storage, "the notifications of \(channel) ended")
        } catch {
            // Closed before it is let go (postgres-nio requires it), also when the task is cancelled;
            // a close that does not end soon is let go too.
            listener.cancel()
            _ = try? await onPrimary(limit: .seconds(2)) { try await connection.close() }
            throw error
        }
    }

    /// How long the watch waits for a read of the head before it takes its connection for dead.
    static let watchReadLimit: Duration = .seconds(5)

    /// Records what a notification says: "POSITION CHANGES" (ignored when it does not parse).
    private func observe(notification payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 2, let position = UInt64(parts[0]), let changes = UInt64(parts[1]) else { return }
        observe(position: position, changes: changes)
    }

    private func readHeadIntoNotifier(_ connection: PostgresConnection) async throws {
        do {
            observe(try await readHead(connection, forUpdate: false))
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
            // No head table yet (not migrated, or dropped): nothing is committed; look again later.
        }
    }

    /// A table of this log's schema, as SQL.
    func table(_ name: String) -> String { "\"\(schema)\".\"\(name)\"" }

    /// Creates the schema and its tables when missing (safe to run again, from several nodes). A
    /// schema that has them all is left alone: DDL on a table other nodes read (`ALTER TABLE`
    /// locks it whole, even when the column is there) deadlocked with their reads.
    public func migrate() async throws(EventStoreError) {
        let zero = ByteBuffer(bytes: [UInt8](repeating: 0, count: 32))
        if try await isMigrated() { return }
        if try await isMigrated(tablesOnly: true) {
            // Tables of an earlier version that lack only the function: no DDL on the tables, which
            // other nodes (of the earlier version) are using (see above).
            try await storage("create the append function") { [self] in
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT pg_advisory_xact_lock(7234001)", logger: logger)
                    try await connection.query(PostgresQuery(unsafeSQL: appendFunction), logger: logger)
                }
            }
            return
        }
        try await storage("create the tables") { [self] in
            try await client.withTransaction(logger: logger) { connection in
                // One migration at a time across nodes.
                try await connection.query("SELECT pg_advisory_xact_lock(7234001)", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\""), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(table("events")) (
                        position bigint PRIMARY KEY,
                        id uuid NOT NULL UNIQUE,
                        stream text NOT NULL,
                        stream_version bigint NOT NULL,
                        type text NOT NULL,
                        recorded_at bigint NOT NULL,
                        envelope bytea NOT NULL,
                        commit_last bigint,
                        UNIQUE (stream, stream_version))
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(table("streams")) (name text PRIMARY KEY, version bigint NOT NULL)
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(table("head")) (
                        id smallint PRIMARY KEY CHECK (id = 1),
                        position bigint NOT NULL, hash bytea NOT NULL, recorded_at bigint NOT NULL,
                        changes bigint NOT NULL DEFAULT 0)
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    ALTER TABLE \(table("head")) ADD COLUMN IF NOT EXISTS changes bigint NOT NULL DEFAULT 0
                    """), logger: logger)
                // The last position of each event's transaction, so that copies take whole commits.
                try await connection.query(PostgresQuery(unsafeSQL: """
                    ALTER TABLE \(table("events")) ADD COLUMN IF NOT EXISTS commit_last bigint
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(table("side")) (
                        tbl smallint NOT NULL, name text NOT NULL, value bytea, change bigint NOT NULL,
                        PRIMARY KEY (tbl, name))
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE INDEX IF NOT EXISTS side_change ON \(table("side")) (change)
                    """), logger: logger)
                // The lease each event was written under (`PostgresWorkLeases`); none for copies.
                try await connection.query(PostgresQuery(unsafeSQL: """
                    ALTER TABLE \(table("events")) ADD COLUMN IF NOT EXISTS writer bigint
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(table("leases")) (
                        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                        node text NOT NULL, owner bigint NOT NULL, expires_at timestamptz NOT NULL,
                        taken_at timestamptz)
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    CREATE INDEX IF NOT EXISTS leases_owner ON \(table("leases")) (owner)
                    """), logger: logger)
                // Lease 0 owns what no node wrote (copies): the first node to start takes it.
                try await connection.query(PostgresQuery(unsafeSQL: """
                    INSERT INTO \(table("leases")) (id, node, owner, expires_at) VALUES (0, 'no node', 0, '-infinity')
                    ON CONFLICT DO NOTHING
                    """), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: appendFunction), logger: logger)
                var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(table("head")) VALUES (1, 0, $1, 0, 0) ON CONFLICT DO NOTHING")
                insert.binds.append(zero)
                try await connection.query(insert, logger: logger)
            }
        }
    }

    /// Whether the schema has every table and column of this version, and its append function
    /// unless `tablesOnly` (enough to read the log).
    public func isMigrated(tablesOnly: Bool = false) async throws(EventStoreError) -> Bool {
        var current = PostgresQuery(unsafeSQL: """
            SELECT count(*)::int FROM information_schema.columns WHERE table_schema = $1 AND (
                (table_name = 'events' AND column_name = 'commit_last') OR (table_name = 'head' AND column_name = 'changes')
                OR (table_name = 'side' AND column_name = 'change') OR (table_name = 'events' AND column_name = 'writer')
                OR (table_name = 'leases' AND column_name = 'owner'))
            """ + (tablesOnly ? "" : """

            UNION ALL
            SELECT least(count(*), 1)::int FROM pg_proc JOIN pg_namespace ON pg_namespace.oid = pronamespace
            WHERE nspname = $1 AND proname = '\(Self.appendFunctionName)'
            """))
        current.binds.append(schema)
        let query = current
        let present = try await storage("read the tables") { [self] in
            var count = 0
            for try await n in try await client.query(query, logger: logger).decode(Int.self) { count += n }
            return count
        }
        return present == (tablesOnly ? 5 : 6)
    }

    // MARK: Appends

    /// Appends to one or more streams atomically, as `EventStore.append` does: every event or
    /// none, each stream's expectation checked, and an append whose ids are all stored answered
    /// with the original positions (`deduplicated`). Durable when it returns.
    ///
    /// The appends waiting on this node commit together, in one transaction (group commit): the
    /// head row is locked once for all of them, and each still succeeds or fails on its own.
    ///
    /// `mark` goes to the request records in the same transaction when the append writes events
    /// and no record of that name is there (`RequestMark`).
    public func append(_ writes: [StreamWrite], mark: RequestMark? = nil) async throws(EventStoreError) -> AppendResult {
        try Self.validate(writes, mark)
        let outcome = await withCheckedContinuation { (answer: CheckedContinuation<Result<AppendResult, EventStoreError>, Never>) in
            queue.submit(.append(writes, mark, { answer.resume(returning: $0) }))
        }
        return try outcome.get()
    }

    /// Queues an append and returns at once; `answer` gets its outcome once committed (or
    /// failed). Appends queued one after another commit in that order. Bad input throws here.
    public func submit(_ writes: [StreamWrite], mark: RequestMark? = nil,
                       answer: @escaping @Sendable (Result<AppendResult, EventStoreError>) -> Void) throws(EventStoreError) {
        try Self.validate(writes, mark)
        queue.submit(.append(writes, mark, answer))
    }

    private static func validate(_ writes: [StreamWrite], _ mark: RequestMark?) throws(EventStoreError) {
        _ = try EventLimits.validate(writes)
        if let mark { try EventLimits.validateName("requests entry", mark.name, maxBytes: 511) }
    }

    /// Writes `change` to its side table in this node's next transaction; answers its number.
    public func writeSide(_ change: SideChange) async throws(EventStoreError) -> UInt64 {
        try Self.validate(change)
        let outcome = await withCheckedContinuation { (answer: CheckedContinuation<Result<UInt64, EventStoreError>, Never>) in
            queue.submit(.side(change, { answer.resume(returning: $0) }))
        }
        return try outcome.get()
    }

    /// Queues `change` for this node's next transaction and returns at once; `answer` gets its
    /// number once committed (or the failure). Bad input throws here.
    public func queueSide(_ change: SideChange,
                          answer: @escaping @Sendable (Result<UInt64, EventStoreError>) -> Void) throws(EventStoreError) {
        try Self.validate(change)
        queue.submit(.side(change, answer))
    }

    private static func validate(_ change: SideChange) throws(EventStoreError) {
        switch change.table {
        case .vault: try EventLimits.validateName("vault entry", change.name, maxBytes: 511)
        case .requests: try EventLimits.validateName("requests entry", change.name, maxBytes: 511)
        case .checkpoints:
            try EventLimits.validateName("checkpoint", change.name, maxBytes: 256)
            guard change.value.map({ SideChange.checkpointPosition($0) != nil }) ?? true else {
                throw EventStoreError.invalid("checkpoint", change.name, "its value must be a position of 8 bytes")
            }
        }
    }

    /// Commits what the queue holds, a batch at a time, until the task is cancelled; then fails
    /// what is left.
    private func commitLoop() async {
        for await _ in queue.wakeups {
            await commitWaiting()
        }
        // An item queued just before `finish()` may have come after the last wake-up: it commits too.
        if !Task.isCancelled { await commitWaiting() }
        queue.close()
    }

    /// Whether another node took this node's lease (its appends then fail).
    public var isFenced: Bool { fencedFlag.load(ordering: .relaxed) }

    /// Fences this node off the log: what is queued and all later appends fail with `closed`.
    /// Called when another node took this node's lease, or when the log no longer continues this
    /// node's copy (`reason` says which); the node must restart.
    func fence(_ reason: String = PostgresLog.leaseTaken) {
        guard fencedFlag.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        logger.critical("\(reason): this node commits nothing more and must restart")
        let handler = onFence.withLock { handler in
            defer { handler = nil }
            return handler
        }
        handler?(reason)
    }

    static let leaseTaken = "another node took this node's work lease (it was thought dead)"

    static let fencedError = EventStoreError(.closed, "this node's work lease was taken by another node (it was thought "
                                             + "dead); it commits nothing more: restart it")

    /// Commits what the queue holds, a batch at a time, until it is empty.
    private func commitWaiting() async {
        while let batch = queue.take(max: Self.maxBatch, maxBytes: Self.maxBatchBytes) {
            var outcomes: [Result<Outcome, EventStoreError>]
            if isFenced {
                for item in batch { item.fail(Self.fencedError) }
                continue
            }
            do {
                let (results, row) = try await commitRetrying(batch)
                outcomes = results
                observe(row)
            } catch {
                // The transaction failed whole (or its outcome is unknown: a retry with the same
                // event ids answers the first positions if it did commit).
                outcomes = batch.map { _ in .failure(error) }
            }
            let written = outcomes.reduce(UInt64(0)) { sum, outcome in
                guard case .success(.appended(let result)) = outcome, !result.deduplicated else { return sum }
                return sum + UInt64(result.events.count)
            }
            counters.withLock { $0.record(batch: batch.count, events: written) }
            for (item, outcome) in zip(batch, outcomes) {
                switch (item, outcome) {
                case (.append(_, _, let answer), .success(.appended(let result))): answer(.success(result))
                case (.side(_, let answer), .success(.changed(let number))): answer(.success(number))
                case (_, .failure(let error)): item.fail(error)
                default: item.fail(EventStoreError(.storage, "the commit answered an item with the wrong kind of outcome"))
                }
            }
        }
    }

    /// Commits `batch` in one transaction. With a host list, a transient failure (a failover) finds
    /// the primary and tries the same batch again, for up to `failoverLimit`: an append that did
    /// commit before the connection was lost is then answered with its original positions (its
    /// event ids are stored), one that did not is written now.
    ///
    /// The batch is first tried in one statement against what this node's last commit left
    /// (`commitKnown`); when the log moved on since, it is written in a transaction of its own
    /// that reads what it needs under the head lock (`commit`).
    private func commitRetrying(_ batch: [AppendQueue.Item]) async throws(EventStoreError) -> ([Result<Outcome, EventStoreError>], HeadRow) {
        let deadline = ContinuousClock.now + Self.failoverLimit
        var delay = Duration.milliseconds(50)
        while true {
            do {
                if let plan = try await onPrimary({ try await self.commitKnown(batch) }) {
                    return (plan.outcomes, plan.row)
                }
                let (plan, versions) = try await onPrimary {
                    try await self.client.withTransaction(logger: self.logger) { connection in
                        try await self.commit(batch, connection)
                    }
                }
                lastCommit.withLock { $0.committed(plan, read: versions) }
                return (plan.outcomes, plan.row)
            } catch {
                lastCommit.withLock { $0.forget() }
                guard endpoints.count > 1, Self.isTransient(error), !isFenced, ContinuousClock.now < deadline,
                      !Task.isCancelled else {
                    throw Self.storageError(error, doing: "append", in: location)
                }
                logger.warning("an append transaction failed; looking for the primary and trying again",
                               metadata: ["error": "\(Self.describe(error))"])
                await locatePrimary()
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// What the commit loop knows of the log after its last commit (`commitKnown`).
    private let lastCommit = Mutex(LastCommit())

    /// How many batches were written in one statement (`commitKnown`), and how many it left to
    /// a transaction that read the log first because another node had written meanwhile.
    public var knownCommits: (known: UInt64, missed: UInt64) { lastCommit.withLock { ($0.known, $0.missed) } }

    /// Appends one transaction takes at most.
    static let maxBatch = 512
    /// About the most bytes of events one transaction takes (one larger append commits alone):
    /// the statement that writes them must stay well under PostgreSQL's 1 GB for a value.
    static let maxBatchBytes = 64 << 20

    /// What a committed item of the queue gets.
    enum Outcome {
        case appended(AppendResult)
        case changed(UInt64)
    }

    /// The head row: the log's head and the number of the last side change.
    struct HeadRow: Sendable {
        var head = LogHead.empty
        var changes: UInt64 = 0
    }

    /// The side rows one transaction writes, one entry per table and name (the last write wins).
    struct SideRows {
        var entries: [SideKey: (value: [UInt8]?, change: UInt64)] = [:]
        struct SideKey: Hashable {
            let table: Int16
            let name: String
        }
    }

    /// Writes `batch` inside the transaction, after locking the head and reading what the batch
    /// needs (`stored`); answers the plan written and the stream versions read.
    private func commit(_ batch: [AppendQueue.Item], _ connection: PostgresConnection) async throws
        -> (Plan, [String: UInt64]) {
        let locked = try await lockHead(connection)
        let touched = Touched(batch)
        let lease = leaseId.load(ordering: .relaxed)
        let (known, versions, records, owner) = try await stored(touched.ids, streams: touched.streams, records: touched.marks,
                                                                 lease: lease, connection)
        if lease >= 0, owner != lease {
            fence()
            throw Self.fencedError
        }
        let plan = Self.plan(batch, head: locked, stored: known, versions: versions, records: records)
        _ = try await write(plan, check: nil, connection)
        return (plan, versions)
    }

    /// Commits `batch` in one statement, planned against the head this node's last commit left and
    /// the stream versions it knows (a stream it does not know taken at the version its append
    /// expects, or 0), assuming none of the batch's ids or request marks is stored. The statement
    /// locks the head and writes only when all of that holds (`appendFunction`); nil when it does
    /// not (another node wrote since, an id is stored), or when this node knows no head to plan
    /// against: the batch then goes through `commit`.
    ///
    /// One round trip instead of five (begin, lock, read, write, commit) while one node writes.
    private func commitKnown(_ batch: [AppendQueue.Item]) async throws -> Plan? {
        guard let (head, cached) = lastCommit.withLock({ $0.start() }) else { return nil }
        let noticed = known.withLock { (position: $0.position, changes: $0.changes) }
        guard noticed.position <= head.head.position, noticed.changes <= head.changes else {
            lastCommit.withLock { $0.forget() }
            return nil
        }
        var versions: [String: UInt64] = [:]
        for case .append(let writes, _, _) in batch {
            for write in writes where versions[write.stream] == nil {
                if let version = cached[write.stream] {
                    versions[write.stream] = version
                    continue
                }
                switch write.expected {
                case .exact(let version): versions[write.stream] = version
                case .noStream, .any: versions[write.stream] = 0
                case .streamExists: return nil
                }
            }
        }
        let plan = Self.plan(batch, head: head, stored: [:], versions: versions, records: [])
        let check = Check(head: head, lease: leaseId.load(ordering: .relaxed), touched: Touched(batch), versions: versions)
        let answer = try await write(plan, check: check, nil)
        lastCommit.withLock { state in
            switch answer {
            case "ok": state.committed(plan, read: versions, known: true)
            // Another node wrote, or took this node's lease: the next batches are likely to miss too.
            case "moved", "fenced": state.miss(backOff: true)
            // A retry of a stored append, or a stream this node did not know: this batch only.
            default: state.miss(backOff: false)
            }
        }
        return answer == "ok" ? plan : nil
    }

    /// The ids, streams and request marks of a batch's appends.
    private struct Touched {
        var ids: [UUID] = []
        var streams = Set<String>()
        var marks: [String] = []

        init(_ batch: [AppendQueue.Item]) {
            for case .append(let writes, let mark, _) in batch {
                for write in writes {
                    streams.insert(write.stream)
                    ids += write.events.map(\.id)
                }
                if let mark { marks.append(mark.name) }
            }
        }
    }

    /// What a batch writes and answers.
    private struct Plan {
        var outcomes: [Result<Outcome, EventStoreError>] = []
        var rows = Rows()
        /// The new versions of the streams written.
        var changed: [String: UInt64] = [:]
        var side = SideRows()
        /// The head after the batch.
        var row = HeadRow()
    }

    /// Works out `batch` in order against the log as `head`, `stored` (the batch's ids already
    /// stored), `versions` (its streams') and `records` (its request marks present) give it: each
    /// append's ids, expectations and events are checked against the log and the appends before it
    /// in the batch, so one that fails changes nothing and fails alone.
    private static func plan(_ batch: [AppendQueue.Item], head locked: HeadRow, stored: [UUID: AppendedEvent],
                             versions: [String: UInt64], records: Set<String>) -> Plan {
        var head = locked.head
        var changes = locked.changes
        var known = stored
        var versions = versions
        var records = records
        var plan = Plan()
        let recordedAt = max(Int64(Date().timeIntervalSince1970 * 1000), head.recordedAt)
        plan.outcomes.reserveCapacity(batch.count)
        append: for item in batch {
            let writes: [StreamWrite]
            let mark: RequestMark?
            switch item {
            case .side(let change, _):
                changes += 1
                plan.side.entries[.init(table: change.table.rawValue, name: change.name)] = (change.value, changes)
                if change.table == .requests {
                    if change.value == nil { records.remove(change.name) } else { records.insert(change.name) }
                }
                plan.outcomes.append(.success(.changed(changes)))
                continue append
            case .append(let w, let m, _):
                writes = w
                mark = m
            }
            // Idempotency: every id already stored → the original answer; some → an error.
            let ids = writes.flatMap { $0.events.map(\.id) }
            let stored = ids.compactMap { known[$0] }
            if stored.count == ids.count {
                plan.outcomes.append(.success(.appended(AppendResult(events: stored, deduplicated: true))))
                continue
            }
            if let first = ids.first(where: { known[$0] != nil }) {
                plan.outcomes.append(.failure(.partlyStored(first, stored: stored.count, of: ids.count)))
                continue
            }
            // Expectations, all checked before anything of this append is written.
            var start: [String: UInt64] = [:]
            for write in writes {
                let current = start[write.stream] ?? versions[write.stream] ?? 0
                guard write.expected.accepts(current) else {
                    plan.outcomes.append(.failure(.wrongVersion(write.stream, expected: write.expected, actual: current)))
                    continue append
                }
                start[write.stream] = current + UInt64(write.events.count)
            }
            var appended: [AppendedEvent] = []
            for write in writes {
                var version = versions[write.stream] ?? 0
                let streamBytes = write.stream.utf8.count
                for event in write.events {
                    version += 1
                    let position = head.position + 1
                    var envelope = [UInt8](repeating: 0, count: Envelope.size(stream: streamBytes, event: event))
                    let hash = envelope.withUnsafeMutableBytes {
                        Envelope.encode(into: $0, position: position, stream: write.stream, streamVersion: version,
                                        recordedAt: recordedAt, event: event, previousHash: head.hash)
                    }
                    plan.rows.add(position: position, id: event.id, stream: write.stream, version: version, type: event.type,
                                  recordedAt: recordedAt, envelope: envelope)
                    let stored = AppendedEvent(position: position, stream: write.stream, streamVersion: version,
                                               id: event.id, recordedAt: recordedAt, hash: hash)
                    appended.append(stored)
                    known[event.id] = stored
                    head = LogHead(position: position, hash: hash, recordedAt: recordedAt)
                }
                versions[write.stream] = version
                plan.changed[write.stream] = version
            }
            if let mark, !records.contains(mark.name) {
                changes += 1
                plan.side.entries[.init(table: SideChange.Table.requests.rawValue, name: mark.name)] = (mark.value, changes)
                records.insert(mark.name)
            }
            plan.outcomes.append(.success(.appended(AppendResult(events: appended, deduplicated: false))))
        }
        plan.row = HeadRow(head: head, changes: changes)
        return plan
    }

    /// The stored events among `ids`, by id, and the versions of `streams`, in one statement (after
    /// the head is locked: a statement that also took the lock would read with the snapshot from
    /// before its wait, missing what the append it waited for wrote).
    ///
    /// With a `lease` (not -1), also reads who owns it now: a node whose lease was taken is fenced.
    private func stored(_ ids: [UUID], streams: Set<String>, records: [String], lease: Int64,
                        _ connection: PostgresConnection) async throws
        -> (events: [UUID: AppendedEvent], versions: [String: UInt64], records: Set<String>, owner: Int64?) {
        var query = PostgresQuery(unsafeSQL: """
            SELECT position, stream, stream_version, id, recorded_at,
                   substring(envelope FROM octet_length(envelope) - 31 FOR 32)
            FROM \(table("events")) WHERE id = ANY($1)
            UNION ALL
            SELECT 0, name, version, NULL, 0, NULL FROM \(table("streams")) WHERE name = ANY($2)
            """ + (records.isEmpty ? "" : """

            UNION ALL
            SELECT -1, name, 0, NULL, 0, NULL FROM \(table("side"))
            WHERE tbl = \(SideChange.Table.requests.rawValue) AND name = ANY($3) AND value IS NOT NULL
            """) + (lease < 0 ? "" : """

            UNION ALL
            SELECT -2, '', owner, NULL, 0, NULL FROM \(table("leases")) WHERE id = $\(records.isEmpty ? 3 : 4)
            """))
        query.binds.append(ids)
        query.binds.append(Array(streams))
        if !records.isEmpty { query.binds.append(records) }
        if lease >= 0 { query.binds.append(lease) }
        var events: [UUID: AppendedEvent] = [:]
        var versions: [String: UInt64] = [:]
        var present = Set<String>()
        var owner: Int64?
        for try await (position, stream, version, id, recordedAt, hash)
            in try await connection.query(query, logger: logger)
            .decode((Int64, String, Int64, UUID?, Int64, ByteBuffer?).self) {
            guard let id, let hash else {
                if position == -2 {
                    owner = version
                } else if position < 0 {
                    present.insert(stream)
                } else {
                    versions[stream] = UInt64(version)
                }
                continue
            }
            events[id] = AppendedEvent(position: UInt64(position), stream: stream, streamVersion: UInt64(version), id: id,
                                       recordedAt: recordedAt,
                                       hash: Array(hash.readableBytesView).withUnsafeBytes { EventHash($0) })
        }
        return (events, versions, present, owner)
    }

    /// Appends envelopes as they are (a copy of another log): each must be the next position and
    /// link to the head's hash, so the copy keeps positions, ids and hashes. Durable when it returns.
    public func appendCopies(_ envelopes: [[UInt8]]) async throws(EventStoreError) -> LogHead {
        try await replicate(ReplicaBatch(envelopes: envelopes))
    }

    /// Writes `copy` in one transaction: its envelopes as they are (each the next position, linked
    /// to the head's hash, so the copy keeps positions, ids and hashes; a repeated id or stream
    /// version fails the whole copy) and its side changes (numbered here). Durable when it returns.
    public func replicate(_ copy: ReplicaBatch) async throws(EventStoreError) -> LogHead {
        for change in copy.changes { try Self.validate(change) }
        let outcome: Result<LogHead, EventStoreError> = try await storage("append copies") { [self] in
            try await client.withTransaction(logger: logger) { connection in
                let locked = try await self.lockHead(connection)
                var head = locked.head
                var rows = Rows()
                var versions: [String: UInt64] = [:]
                var side = SideRows()
                var changes = locked.changes
                for change in copy.changes {
                    changes += 1
                    side.entries[.init(table: change.table.rawValue, name: change.name)] = (change.value, changes)
                }
                for envelope in copy.envelopes {
                    let position = head.position + 1
                    let checked = envelope.withUnsafeBytes { Envelope.check($0, at: position, previous: head.hash) }
                    guard case .success(let hash) = checked else {
                        if case .failure(let failure) = checked {
                            return .failure(EventStoreError(.invalidArgument, "the copied event at position \(failure.position) "
                                                            + "does not continue the log: \(failure.reason)"))
                        }
                        return .failure(EventStoreError(.invalidArgument, "the copied event does not continue the log"))
                    }
                    let event = try envelope.withUnsafeBytes { try Envelope.View($0).decode() }
                    rows.add(position: position, id: event.id, stream: event.stream, version: event.streamVersion,
                             type: event.type, recordedAt: event.recordedAt, envelope: envelope)
                    versions[event.stream] = event.streamVersion
                    head = LogHead(position: position, hash: hash, recordedAt: event.recordedAt)
                }
                let plan = Plan(rows: rows, changed: versions, side: side, row: HeadRow(head: head, changes: changes))
                _ = try await self.write(plan, check: nil, writer: false, connection)
                return .success(head)
            }
        }
        lastCommit.withLock { $0.forget() }
        return try outcome.get()
    }

    /// The head row, locked until the transaction ends: appends take turns here.
    func lockHead(_ connection: PostgresConnection) async throws -> HeadRow {
        try await readHead(connection, forUpdate: true)
    }

    private func readHead(_ connection: PostgresConnection, forUpdate: Bool) async throws -> HeadRow {
        let query = PostgresQuery(unsafeSQL: "SELECT position, hash, recorded_at, changes FROM \(table("head")) WHERE id = 1"
                                  + (forUpdate ? " FOR UPDATE" : ""))
        for try await (position, hash, recordedAt, changes) in try await connection.query(query, logger: logger)
            .decode((Int64, ByteBuffer, Int64, Int64).self) {
            return HeadRow(head: LogHead(position: UInt64(position),
                                         hash: Array(hash.readableBytesView).withUnsafeBytes { EventHash($0) },
                                         recordedAt: recordedAt),
                           changes: UInt64(changes))
        }
        throw EventStoreError(.corrupted, "the head row of \(location) (schema \(schema)) is missing: run migrate first")
    }

    /// The columns of the events to insert, one array per column (one statement whatever the count).
    private struct Rows {
        var positions: [Int64] = []
        var ids: [UUID] = []
        var streams: [String] = []
        var versions: [Int64] = []
        var types: [String] = []
        var times: [Int64] = []
        var envelopes: [ByteBuffer] = []

        mutating func add(position: UInt64, id: UUID, stream: String, version: UInt64, type: String, recordedAt: Int64,
                          envelope: [UInt8]) {
            positions.append(Int64(position))
            ids.append(id)
            streams.append(stream)
            versions.append(Int64(version))
            types.append(type)
            times.append(recordedAt)
            envelopes.append(ByteBuffer(bytes: envelope))
        }
    }

    /// What `commitKnown` checks before it writes: the head and the lease it planned with, and
    /// that the batch's ids and request marks are not stored and its streams are at the versions
    /// it planned with.
    private struct Check {
        var head: HeadRow
        var lease: Int64
        var touched: Touched
        var versions: [String: UInt64]
    }

    /// Writes the plan's rows, the streams' new versions, its side rows and the head, and notifies
    /// the listening nodes (delivered when the transaction commits, and only then), in one call of
    /// the append function (`appendFunction`). With `check`, the call locks the head first and
    /// writes only when the checks hold (else answers the one that failed); without, the transaction on
    /// `connection` holds the lock and read what the plan rests on. Without a connection, the
    /// call is a transaction of its own on the pool.
    private func write(_ plan: Plan, check: Check?, writer: Bool = true, _ connection: PostgresConnection?) async throws -> String {
        let rows = plan.rows
        guard check != nil || !rows.positions.isEmpty || !plan.side.entries.isEmpty else { return "ok" }
        var query = PostgresQuery(unsafeSQL: "SELECT \(table(Self.appendFunctionName))("
                                  + (1...30).map { "$\($0)" }.joined(separator: ", ") + ")")
        let expected = check?.head ?? HeadRow()
        query.binds.append(check != nil)
        query.binds.append(Int64(expected.head.position))
        query.binds.append(ByteBuffer(bytes: expected.head.hash.bytes))
        query.binds.append(Int64(expected.changes))
        query.binds.append(check?.lease ?? -1)
        query.binds.append(check?.touched.ids ?? [])
        let before = Array(check?.versions ?? [:])
        query.binds.append(before.map(\.key))
        query.binds.append(before.map { Int64($0.value) })
        query.binds.append(check?.touched.marks ?? [])
        query.binds.append(rows.positions)
        query.binds.append(rows.ids)
        query.binds.append(rows.streams)
        query.binds.append(rows.versions)
        query.binds.append(rows.types)
        query.binds.append(rows.times)
        query.binds.append(rows.envelopes)
        // Copies (`replicate`) are written under no lease: their work belongs to lease 0.
        let lease = leaseId.load(ordering: .relaxed)
        if lease >= 0, writer { query.binds.append(lease) } else { query.binds.append(Optional<Int64>.none) }
        query.binds.append(Array(plan.changed.keys))
        query.binds.append(plan.changed.values.map { Int64($0) })
        let entries = Array(plan.side.entries)
        query.binds.append(entries.map(\.key.table))
        query.binds.append(entries.map(\.key.name))
        query.binds.append(entries.map { ByteBuffer(bytes: $0.value.value ?? []) })
        query.binds.append(entries.map { Int64($0.value.change) })
        query.binds.append(entries.map { $0.value.value == nil })
        let head = plan.row.head
        query.binds.append(Int64(head.position))
        query.binds.append(ByteBuffer(bytes: head.hash.bytes))
        query.binds.append(head.recordedAt)
        query.binds.append(Int64(plan.row.changes))
        query.binds.append(channel)
        query.binds.append("\(head.position) \(plan.row.changes)")
        let answers = if let connection {
            try await connection.query(query, logger: logger)
        } else {
            try await client.query(query, logger: logger)
        }
        var answer = ""
        for try await text in answers.decode(String.self) { answer = text }
        return answer
    }

    /// The append function's name, with a version: a schema that has a function of this name is not
    /// migrated again, so a change to its parameters or body needs a new name.
    static let appendFunctionName = "append_v1"

    /// The append function: with `_check`, locks the head and answers why it writes nothing when
    /// the head (position, hash, last side change) is not the one given, the lease is not its
    /// owner's, an id or request mark given is stored, or a stream is not at the version given;
    /// then (or without `_check`: the caller's transaction holds the lock) writes the events, the
    /// streams' versions, the side rows and the head, notifies, and answers "ok".
    ///
    /// A function, not a statement: each of its statements reads with a snapshot taken when it
    /// starts, after the lock is held, so it sees what the append it waited for wrote. Its
    /// statements are planned at each call: a plan kept from a call on an empty table scanned the
    /// whole table for the ids later.
    var appendFunction: String {
        """
        CREATE OR REPLACE FUNCTION \(table(Self.appendFunctionName))(
            _check boolean, _position bigint, _hash bytea, _changes bigint, _lease bigint,
            _ids uuid[], _streams text[], _before bigint[], _marks text[],
            _positions bigint[], _event_ids uuid[], _event_streams text[], _versions bigint[], _types text[],
            _times bigint[], _envelopes bytea[], _writer bigint,
            _names text[], _new_versions bigint[],
            _tables smallint[], _side_names text[], _values bytea[], _side_changes bigint[], _deleted boolean[],
            _last bigint, _last_hash bytea, _last_recorded bigint, _last_changes bigint, _channel text, _payload text)
        RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $body$
        DECLARE
            locked record;
        BEGIN
            IF _check THEN
                SELECT position, hash, changes INTO locked FROM \(table("head")) WHERE id = 1 FOR UPDATE;
                IF NOT FOUND OR locked.position <> _position OR locked.hash <> _hash OR locked.changes <> _changes THEN
                    RETURN 'moved';
                END IF;
                IF _lease >= 0 AND NOT EXISTS (SELECT 1 FROM \(table("leases")) WHERE id = _lease AND owner = _lease) THEN
                    RETURN 'fenced';
                END IF;
                IF EXISTS (SELECT 1 FROM \(table("events")) WHERE id = ANY(_ids)) THEN
                    RETURN 'stored';
                END IF;
                IF EXISTS (SELECT 1 FROM unnest(_streams, _before) AS given (name, version)
                           LEFT JOIN \(table("streams")) AS s ON s.name = given.name
                           WHERE coalesce(s.version, 0) <> given.version) THEN
                    RETURN 'versions';
                END IF;
                IF cardinality(_marks) > 0 AND EXISTS (
                    SELECT 1 FROM \(table("side"))
                    WHERE tbl = \(SideChange.Table.requests.rawValue) AND name = ANY(_marks) AND value IS NOT NULL) THEN
                    RETURN 'marks';
                END IF;
                IF cardinality(_positions) = 0 AND cardinality(_tables) = 0 THEN
                    RETURN 'ok';
                END IF;
            END IF;
            INSERT INTO \(table("events")) (position, id, stream, stream_version, type, recorded_at, envelope, commit_last, writer)
            SELECT *, _last, _writer FROM unnest(_positions, _event_ids, _event_streams, _versions, _types, _times, _envelopes);
            INSERT INTO \(table("streams")) (name, version) SELECT * FROM unnest(_names, _new_versions)
            ON CONFLICT (name) DO UPDATE SET version = excluded.version;
            INSERT INTO \(table("side")) (tbl, name, value, change)
            SELECT t, n, CASE WHEN d THEN NULL ELSE v END, c
            FROM unnest(_tables, _side_names, _values, _side_changes, _deleted) AS x (t, n, v, c, d)
            ON CONFLICT (tbl, name) DO UPDATE SET value = excluded.value, change = excluded.change;
            UPDATE \(table("head")) SET position = _last, hash = _last_hash, recorded_at = _last_recorded,
                changes = _last_changes WHERE id = 1;
            PERFORM pg_notify(_channel, _payload);
            RETURN 'ok';
        END
        $body$
        """
    }

    /// What the commit loop knows of the log after its last commit, for `commitKnown`: the head it
    /// left and the versions of the streams it wrote or read (a bounded number). After a miss
    /// (another node wrote meanwhile), the next batches go through `commit`, more of them after
    /// each miss in a row.
    private struct LastCommit {
        var head: HeadRow?
        var versions: [String: UInt64] = [:]
        var skip = 0
        var backoff = 1
        /// Batches written by `commitKnown`, and those it left to `commit`.
        var known: UInt64 = 0
        var missed: UInt64 = 0
        static let maxVersions = 65_536

        /// The head and versions to plan the next batch with, or nil.
        mutating func start() -> (HeadRow, [String: UInt64])? {
            if skip > 0 {
                skip -= 1
                return nil
            }
            guard let head else { return nil }
            return (head, versions)
        }

        mutating func committed(_ plan: Plan, read: [String: UInt64], known: Bool = false) {
            if known {
                self.known += 1
                backoff = 1
            }
            if versions.count + read.count > Self.maxVersions { versions.removeAll(keepingCapacity: true) }
            versions.merge(read) { _, new in new }
            versions.merge(plan.changed) { _, new in new }
            head = plan.row
        }

        mutating func miss(backOff: Bool) {
            missed += 1
            guard backOff else { return }
            head = nil
            skip = backoff
            backoff = min(backoff * 2, 64)
        }

        mutating func forget() {
            head = nil
        }
    }

    // MARK: Reads

    /// The committed head of the log.
    public func head() async throws(EventStoreError) -> LogHead {
        try await storage("read the head") { [self] in
            try await client.withConnection { connection in try await self.readHead(connection, forUpdate: false).head }
        }
    }

    /// The committed head and the number of the last side change.
    public func committed() async throws(EventStoreError) -> (head: LogHead, changes: UInt64) {
        try await storage("read the head") { [self] in
            let row = try await client.withConnection { connection in try await self.readHead(connection, forUpdate: false) }
            return (row.head, row.changes)
        }
    }

    /// What a copy of this log lacks: the envelopes after `position`, `limit` of them and then up
    /// to the end of the last one's commit (a copy never holds part of an append), and up to
    /// `limit` side changes numbered after `changes`, read in one snapshot. When fewer than `limit` side
    /// changes are read, `changesReached` is the head's number of the last side change (a number
    /// can be skipped: two writes of one entry in a transaction leave one row).
    public func changes(after position: UInt64, changesAfter changes: UInt64, limit: Int) async throws(EventStoreError)
        -> ReplicaBatch {
        try await storage("read the log") { [self] in
            var query = PostgresQuery(unsafeSQL: """
                (SELECT 0::smallint, position, envelope, NULL::text FROM \(table("events"))
                 WHERE position > $1 AND position <= (
                     SELECT coalesce(max(coalesce(commit_last, position)), 0) FROM (
                         SELECT commit_last, position FROM \(table("events")) WHERE position > $1 ORDER BY position LIMIT $2
                     ) AS page)
                 ORDER BY position)
                UNION ALL
                (SELECT tbl, change, value, name FROM \(table("side")) WHERE change > $3 ORDER BY change LIMIT $2)
                UNION ALL
                SELECT -1::smallint, changes, NULL, NULL FROM \(table("head")) WHERE id = 1
                """)
            query.binds.append(Int64(clamping: position))
            query.binds.append(Int64(max(1, limit)))
            query.binds.append(Int64(clamping: changes))
            var batch = ReplicaBatch(envelopes: [])
            var headChanges: UInt64 = 0
            var sideRows = 0
            for try await (table, number, data, name) in try await client.query(query, logger: logger)
                .decode((Int16, Int64, ByteBuffer?, String?).self) {
                if table == -1 {
                    headChanges = UInt64(number)
                } else if table == 0 {
                    guard let data else { continue }
                    batch.envelopes.append(Array(data.readableBytesView))
                } else {
                    // Every side row counts, also one of a table this version does not know.
                    sideRows += 1
                    batch.changesReached = max(batch.changesReached ?? 0, UInt64(number))
                    if let kind = SideChange.Table(rawValue: table), let name {
                        batch.changes.append(SideChange(kind, name, data.map { Array($0.readableBytesView) }))
                    }
                }
            }
            if sideRows < max(1, limit), headChanges > changes {
                batch.changesReached = max(batch.changesReached ?? 0, headChanges)
            }
            return batch
        }
    }

    /// Up to `limit` events from `position` on, in log order.
    public func read(from position: UInt64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        try await storage("read the log") { [self] in
            var query = PostgresQuery(unsafeSQL: "SELECT envelope FROM \(table("events")) WHERE position >= $1 ORDER BY position LIMIT $2")
            query.binds.append(Int64(clamping: position))
            query.binds.append(Int64(max(0, limit)))
            var events: [RecordedEvent] = []
            for try await envelope in try await client.query(query, logger: logger).decode(ByteBuffer.self) {
                events.append(try Array(envelope.readableBytesView).withUnsafeBytes { try Envelope.View($0).decode() })
            }
            return events
        }
    }

    /// Recomputes the hash chain from position 1 and checks the head row against it.
    public func verify() async throws(EventStoreError) -> VerifyReport {
        try await storage("verify the log") { [self] in
            // The head first, then the events up to it: appends committing meanwhile do not count.
            let head = try await head()
            var query = PostgresQuery(unsafeSQL: "SELECT position, envelope FROM \(table("events")) WHERE position <= $1 ORDER BY position")
            query.binds.append(Int64(head.position))
            var expected: UInt64 = 1
            var previous = EventHash.zero
            for try await (position, envelope) in try await client.query(query, logger: logger).decode((Int64, ByteBuffer).self) {
                guard UInt64(position) == expected else {
                    return .broken(position: expected, reason: "position \(expected) is missing (next stored is \(position))")
                }
                let checked = Array(envelope.readableBytesView).withUnsafeBytes {
                    Envelope.check($0, at: expected, previous: previous)
                }
                switch checked {
                case .failure(let failure): return .broken(position: failure.position, reason: failure.reason)
                case .success(let hash): previous = hash
                }
                expected += 1
            }
            let count = expected - 1
            guard head.position == count, head.hash == previous else {
                return .broken(position: count + 1, reason: "the stored head (position \(head.position), hash \(head.hash)) "
                               + "does not match the chain (position \(count), hash \(previous))")
            }
            return .intact(count: count, head: previous)
        }
    }

    /// Verifies the log at `url` (`verify()`) with a client of its own, stopped afterwards.
    public static func verifying(url: String, logger: Logger = Logger(label: "runlog.postgres")) async throws(EventStoreError)
        -> VerifyReport {
        let log = try PostgresLog(url: url, logger: logger)
        // Cancelled, not awaited, once the report is read: a command that verified has its answer,
        // and waiting for the pool to wind down once kept `runlog log verify` from exiting.
        let running = Task { await log.run() }
        defer {
            log.finish()
            running.cancel()
        }
        if log.endpoints.count > 1 { await log.locatePrimary() }
        return try await log.verify()
    }

    /// Runs `body`, making what it throws an `EventStoreError` (a lost connection, a failed query:
    /// `storage`, with the server's message).
    ///
    /// With a host list, a transient failure (`isTransient`) starts a search for the primary, so
    /// that the next try goes to the server that is the primary now.
    ///
    /// With `limit`, gives the work up after that long (a server that does not answer).
    func storage<T: Sendable>(_ what: String, limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> T)
        async throws(EventStoreError) -> T {
        do {
            return try await onPrimary(limit: limit, body)
        } catch {
            if endpoints.count > 1, Self.isTransient(error) { Task { await self.locatePrimary() } }
            throw Self.storageError(error, doing: what, in: location)
        }
    }

    static func storageError(_ error: any Error, doing what: String, in location: String) -> EventStoreError {
        if let error = error as? EventStoreError { return error }
        if let error = error as? PostgresTransactionError, let inner = error.closureError as? EventStoreError { return inner }
        return EventStoreError(.storage, "cannot \(what) in \(location): \(describe(error))")
    }

    /// The server's message when there is one (PSQLError's description hides it).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        if let error = error as? PostgresTransactionError {
            return [error.beginError, error.closureError, error.commitError].compactMap { $0.map(describe) }
                .joined(separator: "; ")
        }
        return "\(error)"
    }
}
