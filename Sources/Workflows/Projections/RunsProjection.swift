import WorkflowModel
public import EventLog

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
/// A `run.batch_imported` event puts one summary per run in `records` and one entry for the
/// whole batch in each index, at the event's position: the value is an `ImportedBatchEntry`
/// (byte 1, where a run id starts with a letter) that stands for the batch's runs in row order.
/// The `active` entry counts the batch's runs that have ended and goes when all of them have.
///
/// The summaries are folded exactly as `WorkflowsState` folds them without details
/// (`RunRecord.fold`), so a rebuild of the in-memory models gives the same records.
public struct RunsProjection: InlineProjection {
    public static let name = "runs"
    public let name: String
    /// 2: the outcomes of each rollout's arms (`rollout_outcomes`).
    public var version: UInt32 { 2 }
    public var tables: [String] { ["records", "by_workflow", "by_source", "active", "job_counts", "rollout_outcomes"] }

    enum Table {
        static let records = 0
        static let byWorkflow = 1
        static let bySource = 2
        static let active = 3
        static let jobCounts = 4
        /// Runs of a rollout that ended, by arm and outcome (the decision, else the final status):
        /// key `rollout id NUL arm NUL outcome`, value a count (8 bytes, big-endian).
        static let rolloutOutcomes = 5
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

    public func apply(_ event: EventView, _ tables: any ProjectionTables) throws {
        guard let kind = DomainEvent.Kind(event.typeBytes), kind.isRunEvent else { return }
        let decoded: DomainEvent
        if kind == .runCreated || kind == .runsImported, let appended = event.decoded as? DomainEvent {
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
        if case .runsImported(let batch) = decoded {
            try create(batch, at: event.recordedAt, position: event.position, tables)
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
            if record.createdIndex != nil {
                try batchRunEnded(record, tables)
            } else {
                try Self.activeKey(record).withUnsafeBytes { _ = try tables.delete(Table.active, $0) }
            }
        }
        if record.status.hasEnded, let rollout = record.created.rolloutId, record.created.arm != .none {
            try countOutcome(Self.outcomeKey(rollout, arm: record.created.arm.rawValue,
                                             outcome: record.decision ?? record.status.rawValue), tables)
        }
        if record.created.source.kind == "job", let job = record.created.source.reference {
            try changeJobCounts(job, tables) { counts in
                counts.add(before, -1)
                counts.add(record.status, 1)
            }
        }
    }

    private func create(_ created: RunCreated, at: Int64, position: UInt64, _ tables: any ProjectionTables) throws {
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

    /// The runs of an imported batch: a summary each (near the end of `records`: a
    /// batch's ids follow one another), and one entry for the batch in each index.
    private func create(_ batch: RunsImported, at: Int64, position: UInt64, _ tables: any ProjectionTables) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(160)
        for i in batch.rows.indices {
            var created = batch.created(at: i)
            created.parameters = .null
            let record = RunRecord(created: created, createdAt: at, createdPosition: position, createdIndex: i, detailed: false)
            bytes.removeAll(keepingCapacity: true)
            record.encode(into: &bytes)
            try Array(created.runId.utf8).withUnsafeBytes { k in
                try bytes.withUnsafeBytes { try tables.put(Table.records, k, $0) }
            }
        }
        let entry = ImportedBatchEntry(prefix: batch.runIdPrefix, count: batch.rows.count, ended: 0).bytes
        try entry.withUnsafeBytes { value in
            try Self.workflowKey(batch.workflowId, position).withUnsafeBytes { try tables.put(Table.byWorkflow, $0, value) }
            try Self.sourceKey("importer", batch.importerRunId, position).withUnsafeBytes {
                try tables.put(Table.bySource, $0, value)
            }
            try Self.batchActiveKey(position).withUnsafeBytes { try tables.put(Table.active, $0, value) }
        }
    }

    /// Counts an ended run of an imported batch in the batch's `active` entry, and removes the
    /// entry with the batch's last run.
    private func batchRunEnded(_ record: RunRecord, _ tables: any ProjectionTables) throws {
        let key = Self.batchActiveKey(record.createdPosition)
        try key.withUnsafeBytes { k in
            guard let stored = try tables.get(Table.active, k), var entry = ImportedBatchEntry(stored) else { return }
            entry.ended += 1
            if entry.ended >= entry.count {
                _ = try tables.delete(Table.active, k)
            } else {
                try entry.bytes.withUnsafeBytes { try tables.put(Table.active, k, $0) }
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

    private func put(_ record: RunRecord, key: [UInt8], _ tables: any ProjectionTables) throws {
        let bytes = record.encoded
        try key.withUnsafeBytes { k in try bytes.withUnsafeBytes { try tables.put(Table.records, k, $0) } }
    }

    static func outcomeKey(_ rollout: String, arm: String, outcome: String) -> [UInt8] {
        Array(rollout.utf8) + [0] + Array(arm.utf8) + [0] + Array(outcome.utf8)
    }

    private func countOutcome(_ key: [UInt8], _ tables: any ProjectionTables) throws {
        let stored = try key.withUnsafeBytes { try tables.get(Table.rolloutOutcomes, $0) }
        let count = (stored.map { bytes in bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } ?? 0) + 1
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: count >> (56 - 8 * $0)) }
        try key.withUnsafeBytes { k in try bytes.withUnsafeBytes { try tables.put(Table.rolloutOutcomes, k, $0) } }
    }

    private func changeJobCounts(_ job: String, _ tables: any ProjectionTables, _ change: (inout JobCounts) -> Void) throws {
        let key = Array(job.utf8)
        var counts = try key.withUnsafeBytes { try tables.get(Table.jobCounts, $0) }.flatMap(JobCounts.init(stored:)) ?? JobCounts()
        change(&counts)
        let bytes = counts.stored
        try key.withUnsafeBytes { k in try bytes.withUnsafeBytes { try tables.put(Table.jobCounts, k, $0) } }
    }
}
