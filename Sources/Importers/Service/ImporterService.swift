import Crypto
import S3
import RunlogJSON
public import EventLog
import Foundation
public import WorkflowModel
public import Workflows


/// Importers (seed 000): data sources, importers pinned to a workflow version, and importer runs
/// that read, filter, map and validate every row and create one run per valid row on the batch
/// queue. Every batch of runs is appended together with the importer run's checkpoint, so after
/// a crash a run resumes after its last recorded row: each valid row gets exactly one run.
public actor ImporterService {
    public nonisolated let engine: WorkflowEngine
    public nonisolated let store: any EventStore
    /// Where uploaded CSV files are kept (inside the data directory).
    public nonisolated let uploads: String
    /// Rows per append (runs and checkpoint together). Smaller appends keep real-time runs from
    /// waiting behind a large one: at 200, tools/bench [9] measured real-time p99 during an import
    /// about half what it is at 1,000, for a few percent fewer rows/s.
    let batchSize: Int
    let s3: @Sendable (S3Settings, S3Secret) -> any S3ObjectSource
    /// Seals the credentials of S3 data sources (nil: S3 data sources cannot be created or read).
    let secrets: SecretBox?
    /// Where uploaded files are written.
    let files: any UploadFiles
    var state: ImportersState
    private var scanFrom: UInt64
    private var tasks: [String: Task<Void, Never>] = [:]
    /// The batches of each importer run being recorded, oldest first: the run reads and maps its
    /// next batches meanwhile. Each task prepares its batch, waits until the one before is
    /// submitted to the store, then submits its own, so the batches commit in row order.
    var recordings: [String: [Task<PendingAppend, any Error>]] = [:]
    /// Per importer run being recorded: the stream version its next checkpoint expects, and the
    /// runs of its batches not yet settled.
    var recordingVersion: [String: UInt64] = [:]
    var recordingRuns: [String: Int] = [:]
    /// How many batches of one importer run may be in flight (prepared, queued or committing)
    /// while it reads the next: they share group commits instead of each waiting for its own.
    /// tools/bench [9], 50,000 rows, interleaved: 4 gave about 25% more rows/s than 1, 8 about
    /// 75%, 16 no more than 8; real-time p99 during the import no worse within the noise.
    let recordingDepth: Int
    private var cancelRequested: Set<String> = []
    /// Follows the takeovers of work leases (`start`).
    private var takeovers: Task<Void, Never>?
    private var stopped = false

    /// Events of trigger objects older than this cannot be imported (seed 000's FAQ).
    static let maxEventAge: Int64 = 92 * 86_400_000

    /// Opens the service on `engine`'s store. Files in `uploads` that no data source holds (an
    /// upload that failed, or was cut short by a crash: `*.partial`, or a file whose event was
    /// never recorded) are deleted. `secrets` seals the credentials of S3 data sources (the
    /// server's `SecretBox`); without it S3 data sources cannot be created or read. `files` is
    /// where uploads are written (tests give a disk that fills up). `s3ConnectTimeout` bounds
    /// connecting to an S3 endpoint (the default reader's; `s3` replaces the reader). `replayed`
    /// is the importers' state a start-up replay shared with other parts built
    /// (`ImportersReplay`); without it the service reads the log itself.
    public init(
        engine: WorkflowEngine,
        uploads: String,
        secrets: SecretBox? = nil,
        files: any UploadFiles = DiskUploadFiles(),
        batchSize: Int = 200,
        recordingDepth: Int = 8,
        s3ConnectTimeout: Duration = .seconds(5),
        s3: (@Sendable (S3Settings, S3Secret) -> any S3ObjectSource)? = nil,
        replayed: ImportersState? = nil
    ) throws {
        self.engine = engine
        self.store = engine.store
        self.uploads = uploads
        self.secrets = secrets
        self.files = files
        self.batchSize = batchSize
        self.recordingDepth = max(1, recordingDepth)
        self.s3 = s3 ?? { S3ClientSource(settings: $0, secret: $1, connectTimeout: s3ConnectTimeout) }
        let state = try replayed ?? ImportersState.rebuild(from: engine.store)
        self.state = state
        self.scanFrom = state.position + 1
        try FileManager.default.createDirectory(atPath: uploads, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        Self.removeLeftovers(in: uploads, keeping: Set(state.dataSources.values.compactMap(\.file)))
    }

    /// Deletes the upload files (`ds_…`) that no recorded data source holds. One that cannot be
    /// deleted does not stop the start (it is tried again at the next).
    static func removeLeftovers(in uploads: String, keeping files: Set<String>) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: uploads)) ?? []
        where name.hasPrefix("ds_") && !files.contains(name) {
            try? FileManager.default.removeItem(atPath: uploads + "/" + name)
        }
    }

    /// Resumes the importer runs a previous process left running, after sealing S3 credentials
    /// that an earlier version kept in clear.
    ///
    /// With work leases (several nodes on one log), only the importer runs of the leases this node
    /// takes over resume, now and whenever it takes over another node's.
    public func start() async {
        await sealClearCredentials()
        if let leases = store.workLeases {
            takeovers = Task { [weak self] in
                for await takeover in leases.takeovers() {
                    guard let self else { return }
                    await self.resume(takeover, leases)
                }
            }
            return
        }
        // On a shared log without a lease (a command-line tool), the nodes own the running ones.
        guard !store.isShared else { return }
        for run in state.runs.values.sorted(by: { $0.startedAt < $1.startedAt }) where run.status == .running {
            launch(run.id)
        }
    }

    /// Launches the running importer runs started by an event of a lease this node took over,
    /// once this node's copy of the log has what was committed when it took it. A failed read is
    /// tried again each second until it succeeds or the service stops.
    private func resume(_ takeover: WorkTakeover, _ leases: any WorkLeases) async {
        _ = try? await store.waitForCommit(reaching: takeover.head)
        while !stopped {
            do {
                catchUp()
                var started: [UInt64: String] = [:]
                for run in state.runs.values where run.status == .running && tasks[run.id] == nil {
                    if let first = try store.readStream(Streams.importRun(run.id), limit: 1).first {
                        started[first.position] = run.id
                    }
                }
                let owned = try await leases.written(Array(started.keys), in: takeover)
                for position in owned.sorted() {
                    if let id = started[position], state.runs[id]?.status == .running { launch(id) }
                }
                return
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Stops the importer runs at their next batch (their checkpoints stay; they resume on start).
    public func shutdown() async {
        stopped = true
        takeovers?.cancel()
        let running = tasks.values
        for task in running { task.cancel() }
        for task in running { await task.value }
        tasks.removeAll()
    }

    /// Waits until no importer run is executing.
    public func waitUntilIdle() async {
        while !tasks.isEmpty {
            let running = Array(tasks.values)
            for task in running { await task.value }
        }
    }

    /// The importers' state, with what other nodes on the log recorded up to this node's copy.
    public var snapshot: ImportersState {
        catchUp()
        return state
    }

    // MARK: Appending

    /// Appends and folds the new importer events into the state.
    func append(_ writes: [StreamWrite]) async throws(WorkflowError) {
        do {
            _ = try await store.append(writes)
        } catch {
            throw WorkflowError(appending: error)
        }
        catchUp()
    }

    /// Folds in the importer events appended since the last look (by this service, through the
    /// engine in the same append as runs, or by other nodes on a shared log); reads and commands
    /// call it first.
    func catchUp() {
        // The head first: a batch committing during the read must not be skipped, so the scan
        // ends at this head and the next one starts after it.
        guard let head = try? store.head().position, head >= scanFrom,
              let events = try? store.readAll(from: scanFrom, filter: EventFilter(types: ImportersState.types),
                                              limit: .max) else { return }
        for event in events where event.position <= head { state.apply(event) }
        scanFrom = head + 1
    }

    static func makeId(_ prefix: String) -> String {
        prefix + UUID.timeOrdered().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    // MARK: Importers

    /// Saves an importer (a new one without `id`), pinned to the workflow's latest published
    /// version. Only active workflows can be chosen; the mapping must fit the version's trigger.
    public func saveImporter(
        id: String?, name: String, dataSourceId: String, workflowId: String,
        mapping: ImporterMapping, query: ImporterQuery, actor: String?
    ) async throws(WorkflowError) -> ImporterRecord {
        try Self.validName(name)
        catchUp()
        let existing = try id.map { id throws(WorkflowError) -> ImporterRecord in
            guard let record = state.importers[id] else { throw WorkflowError(.notFound, "importer \(id) does not exist") }
            return record
        }
        guard let source = state.dataSources[dataSourceId] else {
            throw WorkflowError(.notFound, "data source \(dataSourceId) does not exist")
        }
        guard let workflow = await engine.read({ $0.workflows[workflowId] }) else {
            throw WorkflowError(.notFound, "workflow \(workflowId) does not exist")
        }
        guard workflow.active != nil, workflow.latestVersion > 0 else {
            throw WorkflowError(.conflict, "workflow \(workflowId) is not active; only active workflows can be imported into")
        }
        let version = workflow.latestVersion
        let definition = try await engine.publishedDefinition(workflowId, version: version)
        var issues = mapping.problems(for: definition.trigger)
        if let header = source.header {
            let columns = Set(query.header(header))
            for column in mapping.columns.keys.sorted() where !columns.contains(column) {
                issues.append(FieldIssue(field: "mapping.columns.\(column)", value: JSONValue.string(column).jsonText,
                                         rule: "is not a column of the data source (columns: \(query.header(header).joined(separator: ", ")))"))
            }
            if let token = mapping.tokenColumn, !columns.contains(token) {
                issues.append(FieldIssue(field: "mapping.token_column", value: JSONValue.string(token).jsonText,
                                         rule: "is not a column of the data source"))
            }
        }
        guard issues.isEmpty else {
            throw WorkflowError(.invalid, "the mapping does not fit version \(version) of \(workflowId)", issues: issues)
        }
        // The condition is checked against the header when it is known (an uploaded file); an S3
        // source's header is known when a run reads it, which checks it the same way.
        if let condition = query.condition, let header = source.header {
            var schema: ParameterSchema?
            switch definition.trigger {
            case .api(let parameters, _): schema = parameters
            case .action(_, let inputs): schema = inputs
            case .event: schema = nil
            }
            let full = query.header(header)
            let mapper = schema.flatMap { try? RowMapper(mapping: mapping, schema: $0, header: full) }
            do throws(QueryViewError) {
                _ = try QueryView(condition, header: full, mapper: mapper)
            } catch {
                throw WorkflowError(.invalid, "the query box's condition does not fit the data: \(error.description)",
                                    issues: error.issues)
            }
        }
        let importerId = existing?.id ?? Self.makeId("imp_")
        let payload: JSONValue = [
            "importerId": .string(importerId), "name": .string(name), "dataSourceId": .string(dataSourceId),
            "workflowId": .string(workflowId), "version": .integer(Int64(version)), "mapping": mapping.json,
            "query": query.json, "revision": .integer(Int64((existing?.revision ?? 0) + 1)),
        ]
        try await append([StreamWrite(stream: Streams.importer(importerId), expected: .any,
                                      events: [ImporterEvent.event(ImporterEvent.importerSaved, payload, actor: actor)])])
        return state.importers[importerId]!
    }

    // MARK: Importer runs

    /// "Activate & Run": starts an importer run (or a dry run, which validates every row and
    /// reports what would be created, creating nothing). Fails at once when a newer version of
    /// the workflow was published since the importer was saved.
    public func startRun(importerId: String, dryRun: Bool = false, onlyRows: [Int]? = nil, rerunOf: String? = nil,
                         actor: String?) async throws(WorkflowError) -> ImportRunRecord {
        guard !stopped else { throw WorkflowError.shuttingDown("the importer service is shut down") }
        catchUp()
        guard let importer = state.importers[importerId] else {
            throw WorkflowError(.notFound, "importer \(importerId) does not exist")
        }
        try await checkPin(importer)
        let runId = Self.makeId("irun_")
        var payload: [String: JSONValue] = [
            "importerRunId": .string(runId), "importerId": .string(importerId), "workflowId": .string(importer.workflowId),
            "version": .integer(Int64(importer.version)), "dryRun": .bool(dryRun),
        ]
        if let source = state.dataSources[importer.dataSourceId], source.kind == .csv, let bytes = source.bytes {
            payload["bytesTotal"] = .integer(Int64(bytes))
        }
        if let onlyRows { payload["onlyRows"] = .array(onlyRows.map { .integer(Int64($0)) }) }
        if let rerunOf { payload["rerunOf"] = .string(rerunOf) }
        try await append([StreamWrite(stream: Streams.importRun(runId), expected: .noStream,
                                      events: [ImporterEvent.event(ImporterEvent.runStarted, .object(payload), actor: actor)])])
        launch(runId)
        return state.runs[runId]!
    }

    /// Re-runs a finished importer run on only its errored rows (after the data was fixed, or
    /// the workflow changed).
    public func rerunErrored(_ runId: String, actor: String?) async throws(WorkflowError) -> ImportRunRecord {
        let run = try requireRun(runId)
        guard run.status != .running else { throw WorkflowError(.conflict, "importer run \(runId) is still running") }
        let rows = Array(Set(run.errors.map(\.row))).sorted()
        guard !rows.isEmpty else { throw WorkflowError(.conflict, "importer run \(runId) has no errored rows") }
        return try await startRun(importerId: run.importerId, onlyRows: rows, rerunOf: runId, actor: actor)
    }

    /// Cancels a running importer run at its next batch; rows already recorded keep their runs.
    public func cancel(_ runId: String, actor: String?) async throws(WorkflowError) -> ImportRunRecord {
        let run = try requireRun(runId)
        guard run.status == .running else {
            throw WorkflowError(.conflict, "importer run \(runId) is \(run.status.rawValue), not running")
        }
        cancelRequested.insert(runId)
        if let task = tasks[runId] { await task.value }
        if state.runs[runId]?.status == .running {
            try await finish(runId, .cancelled, reason: "cancelled", rowsLeft: nil, actor: actor)
        }
        cancelRequested.remove(runId)
        return state.runs[runId]!
    }

    /// Resumes an importer run stopped by the quota (or failed by a transient error) from its
    /// checkpoint.
    public func resume(_ runId: String, actor: String?) async throws(WorkflowError) -> ImportRunRecord {
        let run = try requireRun(runId)
        guard run.status == .stopped || run.status == .failed else {
            throw WorkflowError(.conflict, "importer run \(runId) is \(run.status.rawValue); only stopped or failed runs resume")
        }
        guard let importer = state.importers[run.importerId] else {
            throw WorkflowError(.notFound, "importer \(run.importerId) does not exist")
        }
        try await checkPin(importer, pinned: run.version)
        try await append([StreamWrite(stream: Streams.importRun(runId), expected: .exact(run.streamVersion), events: [
            ImporterEvent.event(ImporterEvent.runResumed, ["importerRunId": .string(runId)], actor: actor),
        ])])
        launch(runId)
        return state.runs[runId]!
    }

    func requireRun(_ runId: String) throws(WorkflowError) -> ImportRunRecord {
        catchUp()
        guard let run = state.runs[runId] else { throw WorkflowError(.notFound, "importer run \(runId) does not exist") }
        return run
    }

    /// The seed's FAQ: a version published after the importer was saved makes a run fail until
    /// the importer is saved again.
    func checkPin(_ importer: ImporterRecord, pinned: Int? = nil) async throws(WorkflowError) {
        let version = pinned ?? importer.version
        guard let workflow = await engine.read({ $0.workflows[importer.workflowId] }) else {
            throw WorkflowError(.notFound, "workflow \(importer.workflowId) does not exist")
        }
        guard workflow.latestVersion == version else {
            throw WorkflowError(.conflict, "importer \(importer.id) is pinned to version \(version) of \(importer.workflowId), "
                                + "but version \(workflow.latestVersion) was published since; save the importer again "
                                + "to use the latest version")
        }
        guard workflow.active != nil else {
            throw WorkflowError(.conflict, "workflow \(importer.workflowId) is not active")
        }
    }

    func finish(_ runId: String, _ status: ImportRunRecord.Status, reason: String?, rowsLeft: Int?,
                bytesRead: Int? = nil, actor: String?) async throws(WorkflowError) {
        guard let run = state.runs[runId] else { return }
        // The runs of its last batch are in the read models before the run shows as ended.
        await engine.importedRunsQueued()
        var payload: [String: JSONValue] = ["importerRunId": .string(runId), "status": .string(status.rawValue)]
        if let bytesRead { payload["bytesRead"] = .integer(Int64(bytesRead)) }
        if let reason { payload["reason"] = .string(reason) }
        if let rowsLeft { payload["rowsLeft"] = .integer(Int64(rowsLeft)) }
        try await append([StreamWrite(stream: Streams.importRun(runId), expected: .exact(run.streamVersion), events: [
            ImporterEvent.event(ImporterEvent.runFinished, .object(payload), actor: actor),
        ])])
    }

    private func launch(_ runId: String) {
        guard tasks[runId] == nil, !stopped else { return }
        tasks[runId] = Task { [weak self] in
            // The run outlives the request that started it: its appends carry no request's mark.
            await RequestMark.$current.withValue(nil) {
                guard let self else { return }
                await self.execute(runId)
                await self.ended(runId)
            }
        }
    }

    private func ended(_ runId: String) {
        tasks[runId] = nil
    }

    func isCancelled(_ runId: String) -> Bool { cancelRequested.contains(runId) || stopped }

    // MARK: Reads

    /// The bytes of an S3 or CSV data source, as chunks, one object after another, with each
    /// object's size when known.
    func objects(of source: DataSourceRecord) async throws -> [(name: String, size: Int?, chunks: ObjectChunks)] {
        switch source.kind {
        case .csv:
            guard let file = source.file else { throw WorkflowError(.storage, "data source \(source.id) has no file") }
            // With several nodes on one log, an upload stays on the node that received it.
            guard FileManager.default.fileExists(atPath: uploads + "/" + file) else {
                throw WorkflowError(.conflict, "the uploaded file of data source \(source.id) is not on this node: an "
                                    + "upload stays on the node that received it; start or resume the run through that "
                                    + "node, or use an S3 data source")
            }
            return [(file, source.bytes, FileChunks(path: uploads + "/" + file))]
        case .s3:
            guard let settings = source.s3 else { throw WorkflowError(.storage, "data source \(source.id) has no S3 settings") }
            let reader = s3(settings, try credentials(of: source.id))
            return try await reader.objects().map { object in (object.key, object.size, reader.chunks(of: object.key)) }
        }
    }
}
