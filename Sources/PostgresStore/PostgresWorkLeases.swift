public import EventLog
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Work leases in PostgreSQL (`WorkLeases`), in the table `leases` of the log's schema: one row
/// per node process (`id`, the node's name, the `owner` lease, `expires_at` by the database's
/// clock). A node's own row is the one it owns itself; every event it appends records its lease
/// in `events.writer`.
///
/// - Every third of the lease's length the node renews all the rows it owns, in one statement,
///   and looks for nodes whose own row expired. It takes those over, with every row they owned,
///   in a transaction that holds the log's head lock: appends take the same lock, so a takeover
///   falls between two commits of the node it takes from.
/// - Each append's transaction reads, under the head lock, who owns the appending node's row: when
///   another node does, the append fails and the node is fenced (`PostgresLog.isFenced`); it
///   commits nothing more and must restart. Because rows are renewed together and a taken row
///   expires later than its new owner's own row, a node's own row is always among the first taken.
/// - Lease 0 owns what no node wrote (events copied in with `log copy`); the first node takes it.
public final class PostgresWorkLeases: WorkLeases {
    let log: PostgresLog
    /// How long a lease lasts without renewal.
    public let timeout: Duration
    /// This node's name, for operators (`leases.node`).
    public let node: String
    private let state = Mutex(State())
    private let loop = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        var takeovers: [WorkTakeover] = []
        /// Every lease announced in a takeover: a taken lease whose takeover's answer was lost (the
        /// connection dropped after the commit) is announced at the next renewal instead.
        var announced: Set<Int64> = []
        var subscribers: [Int: AsyncStream<WorkTakeover>.Continuation] = [:]
        var nextSubscriber = 0
        var finished = false
    }

    /// This node's lease.
    public var id: Int64 { log.leaseId.load(ordering: .relaxed) }

    private init(log: PostgresLog, node: String, timeout: Duration) {
        self.log = log
        self.node = node
        self.timeout = timeout
    }

    /// Makes this process's lease (its appends are written under it from here on), takes over
    /// the lease `previous` (this node's previous process) and the expired ones, and keeps the
    /// lease renewed until `stop()`. `fenced` is called once, with the reason, if the node is
    /// fenced (`PostgresLog.fence`).
    static func start(log: PostgresLog, node: String, previous: Int64?, timeout: Duration,
                      fenced: @escaping @Sendable (String) -> Void) async throws(EventStoreError) -> PostgresWorkLeases {
        let leases = PostgresWorkLeases(log: log, node: node, timeout: timeout)
        log.onFence.withLock { $0 = fenced }
        let id = try await leases.register()
        log.leaseId.store(id, ordering: .relaxed)
        try await leases.takeOver(previous: previous)
        leases.loop.withLock { $0 = Task { await leases.keepRenewed() } }
        return leases
    }

    private var seconds: Double { Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18 }

    private func register() async throws(EventStoreError) -> Int64 {
        var query = PostgresQuery(unsafeSQL: """
            WITH n AS (SELECT nextval(pg_get_serial_sequence('\(log.table("leases"))', 'id')) AS id)
            INSERT INTO \(log.table("leases")) (id, node, owner, expires_at)
            SELECT id, $1, id, now() + make_interval(secs => $2) FROM n RETURNING id
            """)
        query.binds.append(node)
        query.binds.append(seconds)
        return try await log.storage("make this node's lease") { [self, query] in
            for try await id in try await log.client.query(query, logger: log.logger).decode(Int64.self) { return id }
            throw EventStoreError(.storage, "making this node's lease returned no row")
        }
    }

    /// Renews this node's leases and takes over expired ones, every third of the lease's length,
    /// until cancelled or fenced. A renewal that fails is tried again at the next turn: the lease
    /// lasts three turns.
    ///
    /// For one lease length after a failed renewal or a move to another primary, it takes nothing
    /// over: the other nodes' renewals failed too (a failover, a network cut), and they get that
    /// long to renew before their leases count as dead.
    private func keepRenewed() async {
        var trouble: ContinuousClock.Instant?
        var primary = log.primaryGeneration
        while !Task.isCancelled, !log.isFenced {
            try? await Task.sleep(for: timeout / 3)
            if Task.isCancelled { return }
            if log.primaryGeneration != primary {
                primary = log.primaryGeneration
                trouble = .now
            }
            do {
                guard let owned = try await renew() else {
                    log.fence()
                    return
                }
                try await announce(owned)
                if let since = trouble, ContinuousClock.now - since < timeout { continue }
                trouble = nil
                try await takeOver(previous: nil)
            } catch {
                trouble = .now
                log.logger.warning("cannot renew this node's work lease; trying again",
                                   metadata: ["error": "\(error.message)"])
            }
        }
    }

    /// Announces the leases among `owned` (all this node owns) that no takeover announced.
    private func announce(_ owned: Set<Int64>) async throws(EventStoreError) {
        let me = id
        let missing = state.withLock { state in owned.subtracting(state.announced).subtracting([me]) }
        guard !missing.isEmpty else { return }
        publish(WorkTakeover(leases: missing.sorted(), head: try await log.head().position))
    }

    private func publish(_ takeover: WorkTakeover) {
        let subscribers = state.withLock { state in
            state.takeovers.append(takeover)
            state.announced.formUnion(takeover.leases)
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(takeover) }
    }

    /// Renews every lease this node owns and answers them; nil when its own lease is no longer its own.
    private func renew() async throws(EventStoreError) -> Set<Int64>? {
        var query = PostgresQuery(unsafeSQL: """
            UPDATE \(log.table("leases")) SET expires_at = now() + make_interval(secs => $2) WHERE owner = $1 RETURNING id
            """)
        query.binds.append(id)
        query.binds.append(seconds)
        let me = id
        return try await log.storage("renew this node's lease") { [self, query] in
            var owned = Set<Int64>()
            for try await renewed in try await log.client.query(query, logger: log.logger).decode(Int64.self) {
                owned.insert(renewed)
            }
            return owned.contains(me) ? owned : nil
        }
    }

    /// Takes over the leases of nodes whose own lease expired (and of `previous`), with what they
    /// owned, under the head lock; announces the takeover to `takeovers()`.
    func takeOver(previous: Int64?) async throws(EventStoreError) {
        let me = id
        if previous == nil {
            var check = PostgresQuery(unsafeSQL: """
                SELECT count(*)::int FROM \(log.table("leases")) WHERE id = owner AND id <> $1 AND expires_at < now()
                """)
            check.binds.append(me)
            let expired = try await log.storage("read the leases") { [self, check] in
                var count = 0
                for try await n in try await log.client.query(check, logger: log.logger).decode(Int.self) { count = n }
                return count
            }
            if expired == 0 { return }
        }
        var take = PostgresQuery(unsafeSQL: """
            UPDATE \(log.table("leases")) SET owner = $1, expires_at = now() + make_interval(secs => $3), taken_at = now()
            WHERE owner <> $1 AND (owner IN (SELECT id FROM \(log.table("leases")) WHERE id = $2 AND node = $4) OR owner IN (
                SELECT id FROM \(log.table("leases")) WHERE id = owner AND id <> $1 AND expires_at < now()))
            RETURNING id, node
            """)
        take.binds.append(me)
        take.binds.append(previous ?? -1)
        take.binds.append(seconds)
        take.binds.append(node)
        let (taken, head) = try await log.storage("take over expired leases") { [self, take] in
            try await log.client.withTransaction(logger: log.logger) { connection in
                let head = try await log.lockHead(connection).head.position
                var taken: [(Int64, String)] = []
                for try await row in try await connection.query(take, logger: log.logger).decode((Int64, String).self) {
                    taken.append(row)
                }
                return (taken, head)
            }
        }
        guard !taken.isEmpty else { return }
        log.logger.notice("took over the work of other node processes",
                          metadata: ["leases": "\(taken.map { "\($0.0) (\($0.1))" }.joined(separator: ", "))",
                                     "head": "\(head)"])
        publish(WorkTakeover(leases: taken.map(\.0).sorted(), head: head))
    }

    public func takeovers() -> AsyncStream<WorkTakeover> {
        let (stream, continuation) = AsyncStream.makeStream(of: WorkTakeover.self)
        let finished: Bool = state.withLock { state in
            for takeover in state.takeovers { continuation.yield(takeover) }
            guard !state.finished else { return true }
            let key = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[key] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) }
            }
            return false
        }
        if finished { continuation.finish() }
        return stream
    }

    public func written(_ positions: [UInt64], in takeover: WorkTakeover) async throws(EventStoreError) -> Set<UInt64> {
        guard !positions.isEmpty, !takeover.leases.isEmpty else { return [] }
        var query = PostgresQuery(unsafeSQL: """
            SELECT position FROM \(log.table("events")) WHERE position = ANY($1) AND coalesce(writer, 0) = ANY($2)
            """)
        query.binds.append(positions.map { Int64(clamping: $0) })
        query.binds.append(takeover.leases)
        return try await log.storage("read who wrote the unfinished work") { [self, query] in
            var found = Set<UInt64>()
            for try await position in try await log.client.query(query, logger: log.logger).decode(Int64.self) {
                found.insert(UInt64(position))
            }
            return found
        }
    }

    /// Stops renewing; with `release`, lets the leases expire now so that other nodes take this
    /// node's unfinished work at their next look instead of after the lease's length.
    func stop(release: Bool) async {
        let task = loop.withLock { loop in
            defer { loop = nil }
            return loop
        }
        task?.cancel()
        await task?.value
        let subscribers = state.withLock { state in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
        guard release, !log.isFenced else { return }
        var query = PostgresQuery(unsafeSQL: "UPDATE \(log.table("leases")) SET expires_at = now() WHERE owner = $1")
        query.binds.append(id)
        do {
            // Bounded: a node stopping while its database is gone must not wait for it.
            try await log.storage("release this node's leases", limit: .seconds(2)) { [self, query] in
                _ = try await log.client.query(query, logger: log.logger)
            }
        } catch {
            log.logger.warning("cannot release this node's work lease; other nodes take its work when it expires",
                               metadata: ["error": "\(error.message)"])
        }
    }
}
