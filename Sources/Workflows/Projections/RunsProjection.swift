public import EventStore

/// The runs' read model, kept in LMDB beside the log (an inline projection): each run's summary
/// and the indexes the engine and the API look runs up by. Memory does not grow with the number
/// of runs, and a command's runs are in the tables as soon as its append returns.
///
/// Tables (keys are bytes; positions big-endian, so key order is log order):
/// - `records`: run id → the run's summary (`RunRecord` without details, `RunRecord+Binary`);
/// - `by_workflow`: workflow id, 0, `run.created` position → run id;
/// - `by_source`: source kind, 0, reference, 0, `run.created` position → run id (runs whose
///   source has a reference: an importer run, a job, a posted event, a parent run's step);
/// - `active`: queue (0 real-time, 1 batch), `run.created` position → run id, while the run is
///   queued or running;
/// - `job_counts`: job id → its runs by status (`JobCounts`, seven UInt64 LE).
///
/// The summaries are folded exactly as `WorkflowsState` folds them without details
/// (`RunRecord.fold`), so a rebuild of the in-memory models gives the same records.
public struct RunsProjection: InlineProjection {
    public static let name = "runs"
    public let name: String
    public var version: UInt32 { 1 }
    public var tables: [String] { ["records", "by_workflow", "by_source", "active", "job_counts"] }

    enum Table {
        static let records = 0
        static let byWorkflow = 1
        static let bySource = 2
        static let active = 3
        static let jobCounts = 4
    }

    /// The summaries of runs executing, as last written (the writer's thread only): a step's
    /// event folds into the summary without reading and decoding it again.
    private let cache = RecordCache()

    /// `@unchecked`: only the writer's thread, which calls `apply` and `rolledBack`, touches it.
    final class RecordCache: @unchecked Sendable {
        var records: [String: RunRecord] = [:]
        /// Runs kept at most (the runs executing are a few hundred at a time).
        static let limit = 4_096
    }

    public init() {
        name = Self.name
    }

    /// The same tables under another name (tests and the bench build a second copy to compare).
    public init(name: String) {
        self.name = name
    }

    public func apply(_ event: EventView, _ tables: borrowing ProjectionTables) throws {
        guard let kind = DomainEvent.Kind(event.typeBytes), kind.isRunEvent else { return }
        let decoded: DomainEvent
        if kind == .runCreated, let appended = event.decoded as? DomainEvent, case .runCreated = appended {
            // The engine's own event, as it encoded it: no need to parse the payload.
            decoded = appended
        } else {
            var ids = DomainEvent.RepeatedIds()
            // An undecodable payload is skipped, as the in-memory models skip it.
            guard let read = try? DomainEvent.decode(kind, payload: event.payloadBytes, ids: &ids) else { return }
            decoded = read
        }
        if case .runCreated(let created) = decoded {
            try create(created, at: event.recordedAt, position: event.position, tables)
            return
        }
        guard let runId = decoded.runId else { return }
        var record: RunRecord
        let key = Array(runId.utf8)
        if let cached = cache.records[runId] {
            record = cached
        } else {
            do {
                guard let bytes = try key.withUnsafeBytes({ try tables.get(Table.records, $0) }) else { return }
                record = try RunRecord(encoded: bytes)
            } catch let error as RunRecordDecodingError {
                throw EventStoreError(.corrupted, "run \(runId) has an unreadable summary: \(error.message)")
            }
        }
        let before = record.status
        record.fold(decoded, at: event.recordedAt, keepsDetails: false)
        try put(record, key: key, tables)
        remember(record)
        guard record.status != before else { return }
        if record.status.hasEnded {
            try Self.activeKey(record).withUnsafeBytes { _ = try tables.delete(Table.active, $0) }
        }
        if record.created.source.kind == "job", let job = record.created.source.reference {
            try changeJobCounts(job, tables) { counts in
                counts.add(before, -1)
                counts.add(record.status, 1)
            }
        }
    }

    private func create(_ created: RunCreated, at: Int64, position: UInt64, _ tables: borrowing ProjectionTables) throws {
        let record = RunRecord(created: created, createdAt: at, createdPosition: position, detailed: false)
        let id = Array(created.runId.utf8)
        // Not kept in `cache`: an import creates runs far faster than they execute.
        try put(record, key: id, tables)
        try id.withUnsafeBytes { value in
            try Self.workflowKey(created.workflowId, position).withUnsafeBytes { try tables.put(Table.byWorkflow, $0, value) }
            if let reference = created.source.reference {
                try Self.sourceKey(created.source.kind, reference, position).withUnsafeBytes {
                    try tables.put(Table.bySource, $0, value)
                }
            }
            try Self.activeKey(record).withUnsafeBytes { try tables.put(Table.active, $0, value) }
        }
        if created.source.kind == "job", let job = created.source.reference {
            try changeJobCounts(job, tables) { counts in
                counts.total += 1
                counts.add(.queued, 1)
            }
        }
    }

    /// Keeps the summary of a run that has not ended in `cache` (forgets one that has). A full
    /// cache starts over: removing one entry at a time from a dictionary's start scans ever
    /// more empty buckets (an import of 50,000 rows ran at a third of its speed that way).
    private func remember(_ record: RunRecord) {
        if record.status.hasEnded {
            cache.records[record.id] = nil
            return
        }
        if cache.records.count >= RecordCache.limit, cache.records[record.id] == nil {
            cache.records.removeAll(keepingCapacity: true)
        }
        cache.records[record.id] = record
    }

    public func rolledBack() {
        cache.records.removeAll()
    }

    private func put(_ record: RunRecord, key: [UInt8], _ tables: borrowing ProjectionTables) throws {
        let bytes = record.encoded
        try key.withUnsafeBytes { k in try bytes.withUnsafeBytes { try tables.put(Table.records, k, $0) } }
    }

    private func changeJobCounts(_ job: String, _ tables: borrowing ProjectionTables, _ change: (inout JobCounts) -> Void) throws {
        let key = Array(job.utf8)
        var counts = try key.withUnsafeBytes { try tables.get(Table.jobCounts, $0) }.flatMap(JobCounts.init(stored:)) ?? JobCounts()
        change(&counts)
        let bytes = counts.stored
        try key.withUnsafeBytes { k in try bytes.withUnsafeBytes { try tables.put(Table.jobCounts, k, $0) } }
    }

    // MARK: Keys

    static func workflowKey(_ workflowId: String, _ position: UInt64) -> [UInt8] {
        var key = workflowPrefix(workflowId)
        append(position, to: &key)
        return key
    }

    static func workflowPrefix(_ workflowId: String) -> [UInt8] {
        var key = Array(workflowId.utf8)
        key.append(0)
        return key
    }

    static func sourceKey(_ kind: String, _ reference: String, _ position: UInt64) -> [UInt8] {
        var key = sourcePrefix(kind, reference)
        append(position, to: &key)
        return key
    }

    static func sourcePrefix(_ kind: String, _ reference: String) -> [UInt8] {
        var key = Array(kind.utf8)
        key.append(0)
        key.append(contentsOf: reference.utf8)
        key.append(0)
        return key
    }

    static func activeKey(_ record: RunRecord) -> [UInt8] {
        var key: [UInt8] = [record.created.queue == .realtime ? 0 : 1]
        append(record.createdPosition, to: &key)
        return key
    }

    static func append(_ position: UInt64, to key: inout [UInt8]) {
        withUnsafeBytes(of: position.bigEndian) { key.append(contentsOf: $0) }
    }

    /// The position at the end of an index key.
    static func position(ofKey key: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(bigEndian: key.loadUnaligned(fromByteOffset: key.count - 8, as: UInt64.self))
    }
}

extension DomainEvent.Kind {
    /// Events that change a run after its creation.
    var isRunUpdate: Bool { isRunEvent && self != .runCreated }

    /// Events the run table folds.
    var isRunEvent: Bool {
        switch self {
        case .runCreated, .routeMatched, .stepStarted, .stepCompleted, .stepFailed, .runCompleted, .runFailed, .runCancelled:
            true
        default:
            false
        }
    }
}

extension DomainEvent {
    /// The run an event of a run is about (nil for other events).
    var runId: String? {
        switch self {
        case .runCreated(let e): e.runId
        case .routeMatched(let e): e.runId
        case .stepStarted(let e): e.runId
        case .stepCompleted(let e): e.runId
        case .stepFailed(let e): e.runId
        case .runCompleted(let e): e.runId
        case .runFailed(let e): e.runId
        case .runCancelled(let e): e.runId
        default: nil
        }
    }
}

extension JobCounts {
    /// Seven UInt64 LE: total, queued, running, completed, failed, cancelled, 0.
    var stored: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(56)
        for n in [total, queued, running, completed, failed, cancelled, 0] {
            withUnsafeBytes(of: UInt64(max(0, n)).littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    init?(stored bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 56 else { return nil }
        func at(_ i: Int) -> Int { Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        self.init()
        total = at(0)
        queued = at(1)
        running = at(2)
        completed = at(3)
        failed = at(4)
        cancelled = at(5)
    }
}

// MARK: Reading

/// Reads of the run tables (`RunsProjection`), each in one read transaction.
public struct RunTables: Sendable {
    public let store: EventStore
    /// The projection's name (`RunsProjection.name` but in tests).
    let projection: String

    public init(store: EventStore) {
        self.init(store: store, projection: RunsProjection.name)
    }

    /// The tables of the `RunsProjection` named `projection`.
    public init(store: EventStore, projection: String) {
        self.store = store
        self.projection = projection
    }

    typealias Table = RunsProjection.Table

    /// The run `id`, or nil.
    public func run(_ id: String) throws(WorkflowError) -> RunRecord? {
        try read { tables in try Self.record(id, tables) }
    }

    /// The runs `ids` (nil for an unknown id), in order.
    public func runs(_ ids: some Sequence<String>) throws(WorkflowError) -> [RunRecord?] {
        try read { tables in try ids.map { try Self.record($0, tables) } }
    }

    /// The status of each run (nil for an unknown id).
    public func statuses(_ ids: [String]) throws(WorkflowError) -> [RunRecord.Status?] {
        try runs(ids).map { $0?.status }
    }

    /// Runs of a workflow, oldest first, filtered by status, arm and version; `after` (a run id
    /// of the workflow) pages on from the run after it.
    public func listRuns(
        of workflowId: String,
        status: RunRecord.Status? = nil,
        arm: Arm? = nil,
        version: Int? = nil,
        after: String? = nil,
        limit: Int = 100
    ) throws(WorkflowError) -> [RunRecord] {
        try read { tables in
            let prefix = RunsProjection.workflowPrefix(workflowId)
            var from = prefix
            if let after, let place = try Self.record(after, tables), place.created.workflowId == workflowId {
                from = RunsProjection.workflowKey(workflowId, place.createdPosition + 1)
            }
            var result: [RunRecord] = []
            guard limit > 0 else { return result }
            try prefix.withUnsafeBytes { prefixBytes in
                try from.withUnsafeBytes { fromBytes in
                    try tables.scan(Table.byWorkflow, from: fromBytes) { key, value in
                        guard key.count == prefixBytes.count + 8, key.prefix(prefixBytes.count).elementsEqual(prefixBytes) else {
                            return false
                        }
                        guard let run = try Self.record(value, tables) else { return true }
                        if let status, run.status != status { return true }
                        if let arm, run.created.arm != arm { return true }
                        if let version, run.created.version != version { return true }
                        result.append(run)
                        return result.count < limit
                    }
                }
            }
            return result
        }
    }

    /// The ids of the runs whose source is `kind` with `reference`, oldest first, from the
    /// `offset`-th on, at most `limit`.
    public func runIds(source kind: String, reference: String, offset: Int = 0, limit: Int = .max) throws(WorkflowError) -> [String] {
        try read { tables in
            var ids: [String] = []
            var skipped = 0
            guard limit > 0 else { return ids }
            try RunsProjection.sourcePrefix(kind, reference).withUnsafeBytes { prefix in
                try tables.scan(Table.bySource, prefix: prefix) { key, value in
                    guard key.count == prefix.count + 8 else { return true }
                    if skipped < offset {
                        skipped += 1
                        return true
                    }
                    ids.append(String(decoding: value, as: UTF8.self))
                    return ids.count < limit
                }
            }
            return ids
        }
    }

    /// The runs of a source, oldest first (see `runIds(source:reference:)`).
    public func runs(source kind: String, reference: String, offset: Int = 0, limit: Int = .max) throws(WorkflowError) -> [RunRecord] {
        try runs(runIds(source: kind, reference: reference, offset: offset, limit: limit)).compactMap { $0 }
    }

    /// The runs of a launch-API job by status.
    public func jobCounts(_ jobId: String) throws(WorkflowError) -> JobCounts {
        try read { tables in
            try Array(jobId.utf8).withUnsafeBytes { try tables.get(Table.jobCounts, $0) }.flatMap(JobCounts.init(stored:))
        } ?? JobCounts()
    }

    /// Runs queued or running, in the order they were created, with their queue.
    public func activeRuns() throws(WorkflowError) -> [(id: String, queue: RunQueue)] {
        try read { tables in
            var runs: [(position: UInt64, id: String, queue: RunQueue)] = []
            try tables.scan(Table.active, from: nil) { key, value in
                runs.append((RunsProjection.position(ofKey: key), String(decoding: value, as: UTF8.self),
                             key.first == 0 ? .realtime : .batch))
                return true
            }
            // The table holds the real-time runs first; order them all by creation.
            return runs.sorted { $0.position < $1.position }.map { ($0.id, $0.queue) }
        }
    }

    /// The batch-queue runs still queued or running that were created after position `after`
    /// through `through`, oldest first, at most `limit`.
    public func queuedBatchRuns(after: UInt64, through: UInt64, limit: Int) throws(WorkflowError) -> [(position: UInt64, id: String)] {
        guard limit > 0, after < through else { return [] }
        return try read { tables in
            var runs: [(position: UInt64, id: String)] = []
            var from: [UInt8] = [1]
            RunsProjection.append(after + 1, to: &from)
            try from.withUnsafeBytes { start in
                try tables.scan(Table.active, from: start) { key, value in
                    guard key.first == 1, key.count == 9 else { return false }
                    let position = RunsProjection.position(ofKey: key)
                    guard position <= through else { return false }
                    runs.append((position, String(decoding: value, as: UTF8.self)))
                    return runs.count < limit
                }
            }
            return runs
        }
    }

    /// Every run, in the order they were created (tests and checks; it reads the whole table).
    public func allRuns() throws(WorkflowError) -> [RunRecord] {
        try read { tables in
            var runs: [RunRecord] = []
            try tables.scan(Table.records, from: nil) { _, value in
                runs.append(try Self.decode(value))
                return true
            }
            return runs.sorted { $0.createdPosition < $1.createdPosition }
        }
    }

    /// The number of runs.
    public func count() throws(WorkflowError) -> Int {
        try read { tables in try tables.count(Table.records) }
    }

    // MARK: Helpers

    private func read<T>(_ body: (borrowing ProjectionTables) throws -> T) throws(WorkflowError) -> T {
        do {
            return try store.readProjection(projection, body)
        } catch {
            throw WorkflowError(.storage, "cannot read the run tables: \(error.message)")
        }
    }

    private static func record(_ id: String, _ tables: borrowing ProjectionTables) throws -> RunRecord? {
        try Array(id.utf8).withUnsafeBytes { try record($0, tables) }
    }

    private static func record(_ id: UnsafeRawBufferPointer, _ tables: borrowing ProjectionTables) throws -> RunRecord? {
        try tables.get(Table.records, id).map(decode)
    }

    private static func position(_ id: String, _ tables: borrowing ProjectionTables) throws -> UInt64 {
        try record(id, tables)?.createdPosition ?? 0
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer) throws -> RunRecord {
        do {
            return try RunRecord(encoded: bytes)
        } catch {
            throw EventStoreError(.corrupted, "a run summary does not decode: \(error.message)")
        }
    }
}
