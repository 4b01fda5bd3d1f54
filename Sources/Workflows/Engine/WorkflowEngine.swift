public import WorkflowModel
import RunlogJSON
public import EventLog
public import Foundation
import Synchronization

/// Settings of a workflow engine.
public struct EngineConfiguration: Sendable {
    /// Runs that may be created per UTC day, over every source; nil for no limit.
    public var dailyRunQuota: Int?
    /// Workers that only ever take real-time runs, so batch work cannot hold them.
    public var realtimeWorkers: Int
    /// Workers that take real-time runs first and batch runs when no real-time run waits. A run
    /// spends most of its time waiting for its commit, so more workers put more runs in each
    /// group commit and drain a batch backlog faster, at a cost in real-time latency while
    /// batch work runs (see docs/architecture.md, "Runs and queues").
    public var sharedWorkers: Int
    /// The clock, in UTC milliseconds (tests move it to cross quota days).
    public var clock: @Sendable () -> Int64
    /// Performs `http_request` steps.
    public var http: any HTTPPerformer
    /// Turns the `account` of an `http_request` step into the request's auth headers (nil: steps
    /// with an account fail).
    public var credentials: (any CredentialProvider)?
    /// The longest batch work (an importer's next batch, a batch run) waits for the real-time runs
    /// in flight to end before it goes ahead anyway (`WorkflowEngine.yieldToRealtime`).
    public var batchYieldLimit: Duration

    public init(
        dailyRunQuota: Int? = nil,
        realtimeWorkers: Int = 1,
        sharedWorkers: Int = 3,
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        http: any HTTPPerformer = URLSessionHTTPPerformer(),
        credentials: (any CredentialProvider)? = nil,
        batchYieldLimit: Duration = .milliseconds(100)
    ) {
        self.dailyRunQuota = dailyRunQuota
        self.realtimeWorkers = realtimeWorkers
        self.sharedWorkers = sharedWorkers
        self.clock = clock
        self.http = http
        self.credentials = credentials
        self.batchYieldLimit = batchYieldLimit
    }
}

/// The workflow engine: decides each command against the live read models, appends the events
/// it decides (with the stream's expected version, so concurrent commands cannot both win), and
/// executes runs from a real-time and a batch queue. The read models follow the log through a
/// subscription; a command returns once its own events are in them (read-your-writes).
public actor WorkflowEngine {
    public nonisolated let store: any EventStore
    public let configuration: EngineConfiguration
    let vault: ObjectVault
    var state: WorkflowsState
    var definitions: [String: WorkflowDefinition] = [:]
    private var waiters: [(position: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    /// Run creations in flight per quota day (not yet in `state`).
    var reservedRuns: [String: Int] = [:]
    /// Batches of imported runs recorded and not yet queued, oldest first, by the position of
    /// their append: `ingest` queues each batch's runs once it has folded the batch in (and
    /// ends the runs' quota reservation as it folds their `run.batch_imported`).
    var importsInFlight: [(position: UInt64, prefix: String, count: Int)] = []
    /// The last `run.batch_imported` the executor read, by position: workers take a batch's
    /// runs one after another, and each needs its own row of it.
    var lastImportedBatch: (position: UInt64, batch: RunsImported)?
    /// Batches of imported runs submitted to the store whose commit `track` has not seen yet
    /// (counted when submitted, off the actor), and who waits for there to be none.
    nonisolated let importsOutstanding = Mutex(0)
    var importWaiters: [CheckedContinuation<Void, Never>] = []
    private var nextWorkflowNumber: Int
    /// The next workflow number; numbers are handed out in order on the actor, so two concurrent
    /// creations never share one.
    func nextNumber() -> Int {
        defer { nextWorkflowNumber += 1 }
        return nextWorkflowNumber
    }
    var queues: RunQueues
    /// Launch-API jobs (`WorkflowEngine+Jobs.swift`).
    var jobs: JobsState
    /// Queued runs of paused jobs that a worker took and put aside, by job id.
    var deferredJobRuns: [String: [String]] = [:]
    /// Runs a previous process left queued or running, in the order they were created: read from
    /// the run tables when the engine is made, queued by `start()`.
    private var leftRuns: [(id: String, queue: RunQueue, isJob: Bool)] = []
    /// Runs a previous process left unfinished that no worker has taken again yet.
    var interruptedRuns: Set<String> = []
    /// Jobs whose stop is being appended: workers leave their queued runs alone.
    var stoppingJobs: Set<String> = []
    var executing: Set<String> = []
    /// Real-time runs queued or executing, and real-time runs being created (`yieldToRealtime`).
    var realtimeRuns: Set<String> = []
    var realtimeCreating = 0
    var quietWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextQuietToken = 0
    var graceRunning = false
    /// When real-time work last became quiet (no run being created, queued or executed).
    var realtimeQuietSince = ContinuousClock.now
    /// Whether the store defers background appends (an importer's batches) now: from the moment
    /// a real-time run is being created or queued until `realtimeGrace` after the last one left.
    var deferringBackground = false
    func isExecuting(_ runId: String) -> Bool { executing.contains(runId) }
    private var tasks: [Task<Void, Never>] = []
    var stopped = false

    /// The runs, in LMDB (`RunsProjection`): the engine's state holds none.
    public nonisolated var runs: RunTables { RunTables(store: store) }

    /// The run `id` from the run table; nil when there is none or it cannot be read.
    nonisolated func runRecord(_ id: String) -> RunRecord? {
        (try? runs.run(id)) ?? nil
    }

    /// The run `id`, as the API shows it: read from the run table, which is current as soon as
    /// an append returns, and returned once the other read models have caught up with what the
    /// read saw, so a run seen completed has its steps' effects on objects and lists visible too.
    public func run(_ id: String) async throws(WorkflowError) -> RunRecord? {
        try await consistent { () throws(WorkflowError) in try runs.run(id) }
    }

    /// Runs of a workflow (`RunTables.listRuns`), returned as `run(_:)` returns a run.
    public func listRuns(
        of workflowId: String,
        status: RunRecord.Status? = nil,
        arm: Arm? = nil,
        version: Int? = nil,
        source: String? = nil,
        since: Int64? = nil,
        after: String? = nil,
        limit: Int = 100
    ) async throws(WorkflowError) -> [RunRecord] {
        try await consistent { () throws(WorkflowError) in
            try runs.listRuns(of: workflowId, status: status, arm: arm, version: version, source: source, since: since,
                              after: after, limit: limit)
        }
    }

    /// `read`'s result once the in-memory read models include every event committed when it
    /// returned (the head read after it is at least what it saw).
    private func consistent<T>(_ read: () throws(WorkflowError) -> T) async throws(WorkflowError) -> T {
        let value = try read()
        await caughtUp(to: (try? store.head().position) ?? 0)
        return value
    }

    /// Attaches the run tables to the store (building them from the log the first time) and
    /// builds the other read models from the log (a full replay), ready to `start()`.
    public init(store: any EventStore, configuration: EngineConfiguration = EngineConfiguration()) async throws {
        let replay = LogReplay()
        let models = EngineReplay(registeringWith: replay)
        try await store.attach(RunsProjection())
        try replay.run(store)
        try await self.init(store: store, configuration: configuration, replayed: models)
    }

    /// As `init(store:configuration:)`, with the read models a start-up replay shared with other
    /// parts built (`EngineReplay`); the run tables are attached here if they are not yet.
    public init(store: any EventStore, configuration: EngineConfiguration, replayed: EngineReplay) async throws {
        self.store = store
        self.configuration = configuration
        self.vault = ObjectVault(store: store)
        self.queues = RunQueues()
        try await store.attach(RunsProjection())
        let state = replayed.workflows.state
        self.state = state
        self.jobs = replayed.jobs
        self.jobs.position = state.position
        self.nextWorkflowNumber = (state.workflowNumbers.keys.max() ?? 0) + 1
        // Read here, where a failure to read them stops the engine from starting at all. With work
        // leases (several nodes), only the runs of the leases this node takes over resume; on a
        // shared log without a lease (a command-line tool), none: the nodes own them.
        guard store.workLeases == nil, !store.isShared else { return }
        let active = try RunTables(store: store).activeRuns()
        let records = try RunTables(store: store).runs(active.map(\.id))
        self.leftRuns = zip(active, records).map { ($0.id, $0.queue, $1?.created.source.kind == "job") }
    }

    /// Follows the log and starts the workers; runs left unfinished by a previous process resume.
    public func start() {
        guard tasks.isEmpty else { return }
        let from = state.position + 1
        let store = self.store
        tasks.append(Task { [weak self] in
            do {
                // Everything a page read holds is applied in one actor turn: a page comes from
                // one read transaction, so readers of the models do not see half of a commit.
                // Payloads are decoded here, off the actor: it only folds them in.
                var events = store.subscribe(from: from).makeAsyncIterator()
                var ids = DomainEvent.RepeatedIds()
                while let first = try await events.next() {
                    var batch = [(first, DecodedEvent(first, ids: &ids, runUpdates: false))]
                    while events.hasBuffered, let next = try await events.next() {
                        batch.append((next, DecodedEvent(next, ids: &ids, runUpdates: false)))
                    }
                    guard let self else { return }
                    await self.ingest(batch)
                }
            } catch {
                // Cancelled, or the store closed.
            }
        })
        for run in leftRuns {
            queues.push(run.id, run.queue)
            if run.isJob { interruptedRuns.insert(run.id) }
        }
        leftRuns = []
        if let leases = store.workLeases {
            tasks.append(Task { [weak self] in
                for await takeover in leases.takeovers() {
                    guard let self else { return }
                    await self.resume(takeover, leases)
                }
            })
        }
        for i in 0..<(configuration.realtimeWorkers + configuration.sharedWorkers) {
            let realtimeOnly = i < configuration.realtimeWorkers
            tasks.append(Task { [weak self] in
                while let self, let (runId, queue) = await self.nextRun(realtimeOnly: realtimeOnly) {
                    if queue == .batch { await self.yieldToRealtime() }
                    await self.executeClaimed(runId)
                }
            })
        }
    }

    /// Stops the workers (a run being executed finishes its current step) and the projection.
    public func shutdown() async {
        stopped = true
        queues.close()
        // Wake commands waiting for the read models first: the cancelled subscription will not
        // bring the events they wait for, and the workers cannot end while they wait.
        for waiter in waiters { waiter.continuation.resume() }
        waiters.removeAll()
        realtimeRunLeft()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        tasks.removeAll()
    }

    /// A copy of the read models as they are now.
    public var snapshot: WorkflowsState { state }

    /// Runs `body` on the read models as they are now, without copying them: for reads that
    /// take a few records out (a copy held across the next change would copy every table).
    public func read<T: Sendable, E: Error>(_ body: (borrowing WorkflowsState) throws(E) -> T) throws(E) -> T {
        try body(state)
    }

    // MARK: Projection

    private func ingest(_ batch: [(envelope: RecordedEvent, decoded: DecodedEvent)]) {
        for (envelope, decoded) in batch where envelope.position > state.position {
            state.apply(decoded)
            // An imported run counts in `runsPerDay` from here on: its reservation ends now, not
            // when `track` sees the commit (which may come later), so it never counts twice.
            if case .success(.runsImported(let batch)?) = decoded.event {
                releaseQuota(batch.rows.count, day: batch.quotaDay)
            }
            if JobEvent.types.contains(envelope.type) { jobs.apply(envelope) }
        }
        if !importsInFlight.isEmpty { queueImportedRuns() }
        if !deferredJobRuns.isEmpty { requeueResumedJobs() }
        if !waiters.isEmpty {
            let ready = waiters.filter { $0.position <= state.position }
            waiters.removeAll { $0.position <= state.position }
            for waiter in ready { waiter.continuation.resume() }
        }
    }

    /// Waits until the read models include `position`.
    func caughtUp(to position: UInt64) async {
        guard state.position < position, !stopped else { return }
        await withCheckedContinuation { waiters.append((position, $0)) }
    }

    // MARK: Appending

    /// Appends and waits for the read models to include the events.
    @discardableResult
    func append(_ writes: [StreamWrite], priority: AppendPriority = .normal) async throws(WorkflowError) -> AppendResult {
        let result = try await record(writes, priority: priority)
        try await caughtUpOrStopping(result.lastPosition)
        return result
    }

    /// Appends without waiting for the read models.
    func record(_ writes: [StreamWrite], priority: AppendPriority = .normal) async throws(WorkflowError) -> AppendResult {
        guard !stopped else { throw Self.shutDown }
        do {
            return try await store.append(writes, priority: priority)
        } catch {
            throw WorkflowError(appending: error)
        }
    }

    /// Waits for the read models to include `position`; throws when the engine stops first.
    func caughtUpOrStopping(_ position: UInt64) async throws(WorkflowError) {
        await caughtUp(to: position)
        if state.position < position {
            throw WorkflowError.shuttingDown("the engine is shutting down; the command was recorded at position "
                                             + "\(position) and shows once the engine runs again")
        }
    }

    static func metadata(_ actor: String?, correlation: String? = nil, causation: String? = nil) -> EventMetadata {
        EventMetadata(actor: actor, correlationId: correlation, causationId: causation)
    }

    /// Runs `decide` against the workflow's current state and appends its events to the
    /// workflow's stream at the version it saw; retries when another command got there first.
    ///
    /// With `ifMatch` (an HTTP `If-Match`), the workflow's stream must be at that version, or
    /// the command fails with `preconditionFailed` and records nothing.
    func mutateWorkflow(
        _ id: String,
        actor: String?,
        ifMatch: UInt64? = nil,
        _ decide: (WorkflowRecord) throws(WorkflowError) -> [DomainEvent]
    ) async throws(WorkflowError) -> WorkflowRecord {
        for _ in 0..<5 {
            guard !stopped else { throw Self.shutDown }
            guard let workflow = state.workflows[id] else { throw Self.workflowNotFound(id) }
            if let ifMatch, ifMatch != workflow.streamVersion {
                throw WorkflowError(.preconditionFailed, "workflow \(id) is at version \(workflow.streamVersion), "
                                    + "not \(ifMatch); reload it and try again")
            }
            let events = try decide(workflow)
            guard !events.isEmpty else { return workflow }
            let result: AppendResult
            do {
                result = try await store.append(to: Streams.workflow(id), expected: .exact(workflow.streamVersion),
                                                events.map { $0.newEvent(metadata: Self.metadata(actor)) })
            } catch {
                guard error.code == .wrongExpectedVersion else { throw WorkflowError(appending: error) }
                await caughtUp(to: (try? store.head().position) ?? 0)
                continue
            }
            try await caughtUpOrStopping(result.lastPosition)
            return state.workflows[id]!
        }
        throw WorkflowError(.conflict, "workflow \(id) is being changed by other commands; try again")
    }

    static let shutDown = WorkflowError.shuttingDown("the workflow engine is shut down; nothing was recorded")

    static func workflowNotFound(_ id: String) -> WorkflowError {
        WorkflowError(.notFound, "workflow \(id) does not exist")
    }

    // MARK: Definitions

    /// The compiled definition of a published version (cached).
    func definition(_ workflowId: String, version: Int) throws(WorkflowError) -> WorkflowDefinition {
        let key = "\(workflowId)#\(version)"
        if let cached = definitions[key] { return cached }
        guard let record = state.workflows[workflowId], version >= 1, version <= record.versions.count else {
            throw WorkflowError(.notFound, "workflow \(workflowId) has no version \(version)")
        }
        let definition = try WorkflowDefinition(json: record.versions[version - 1].definition)
        definitions[key] = definition
        return definition
    }

    // MARK: Quota

    /// The quota day of a time: its UTC date.
    static func day(of ms: Int64) -> String {
        JSONTextDate.day(milliseconds: ms)
    }

    /// Reserves `count` run creations today or throws `quotaExceeded` with the reset time.
    func reserveQuota(_ count: Int) throws(WorkflowError) -> String {
        let now = configuration.clock()
        let day = Self.day(of: now)
        if let quota = configuration.dailyRunQuota {
            let used = (state.runsPerDay[day] ?? 0) + (reservedRuns[day] ?? 0)
            if used + count > quota {
                let reset = (now / 86_400_000 + 1) * 86_400_000
                throw WorkflowError(
                    .quotaExceeded,
                    "the daily run quota of \(quota) is used up (\(used) runs today); it resets at "
                        + JSONText.timestamp(milliseconds: reset),
                    resetsAt: reset
                )
            }
        }
        reservedRuns[day, default: 0] += count
        return day
    }

    func releaseQuota(_ count: Int, day: String) {
        reservedRuns[day, default: 0] -= count
        if reservedRuns[day] == 0 { reservedRuns[day] = nil }
    }

    /// Runs created today, the quota and when it resets.
    public func quotaStatus() -> QuotaStatus {
        let now = configuration.clock()
        let day = Self.day(of: now)
        return QuotaStatus(day: day, used: state.runsPerDay[day] ?? 0, limit: configuration.dailyRunQuota,
                           resetsAt: (now / 86_400_000 + 1) * 86_400_000)
    }
}

/// The daily run quota as it stands.
public struct QuotaStatus: Sendable, Hashable {
    public var day: String
    public var used: Int
    public var limit: Int?
    public var resetsAt: Int64
}

/// UTC calendar days of millisecond timestamps.
enum JSONTextDate {
    static func day(milliseconds: Int64) -> String {
        String(JSONText.timestamp(milliseconds: milliseconds).prefix(10))
    }
}
