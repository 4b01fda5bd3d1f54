public import WorkflowModel
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

    private func changeJobCounts(_ job: String, _ tables: any ProjectionTables, _ change: (inout JobCounts) -> Void) throws {
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

    static func batchActiveKey(_ position: UInt64) -> [UInt8] {
        var key: [UInt8] = [1]
        append(position, to: &key)
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


/// An imported batch's entry in the run tables' indexes: byte 1, the number of runs, how many
/// of them have ended (kept in `active` only), both UInt32 big-endian, then the batch's run id
/// prefix (`RunsImported.runIdPrefix`).
struct ImportedBatchEntry: Equatable {
    var prefix: String
    var count: Int
    var ended: Int

    static let marker: UInt8 = 1

    /// Whether an index value is a batch entry rather than a run id.
    static func isEntry(_ value: UnsafeRawBufferPointer) -> Bool { value.first == marker }

    var bytes: [UInt8] {
        var out: [UInt8] = [Self.marker]
        out.reserveCapacity(9 + prefix.utf8.count)
        withUnsafeBytes(of: UInt32(count).bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(ended).bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: prefix.utf8)
        return out
    }

    init(prefix: String, count: Int, ended: Int) {
        self.prefix = prefix
        self.count = count
        self.ended = ended
    }

    init?(_ value: UnsafeRawBufferPointer) {
        guard value.count > 9, value[0] == Self.marker else { return nil }
        count = Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
        ended = Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 5, as: UInt32.self)))
        prefix = String(decoding: UnsafeRawBufferPointer(rebasing: value[9...]), as: UTF8.self)
    }

    func runId(at index: Int) -> String { RunsImported.runId(prefix: prefix, index: index) }
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
    public let store: any EventStore
    /// The projection's name (`RunsProjection.name` but in tests).
    let projection: String

    public init(store: any EventStore) {
        self.init(store: store, projection: RunsProjection.name)
    }

    /// The tables of the `RunsProjection` named `projection`.
    public init(store: any EventStore, projection: String) {
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
            // Within an imported batch, the runs after `after` in the batch come first.
            var resume: (position: UInt64, index: Int)?
            if let after, let place = try Self.record(after, tables), place.created.workflowId == workflowId {
                if let index = place.createdIndex {
                    from = RunsProjection.workflowKey(workflowId, place.createdPosition)
                    resume = (place.createdPosition, index + 1)
                } else {
                    from = RunsProjection.workflowKey(workflowId, place.createdPosition + 1)
                }
            }
            var result: [RunRecord] = []
            guard limit > 0 else { return result }
            /// Takes `run` if it passes the filters; false once the page is full.
            func take(_ run: RunRecord) -> Bool {
                if let status, run.status != status { return true }
                if let arm, run.created.arm != arm { return true }
                if let version, run.created.version != version { return true }
                result.append(run)
                return result.count < limit
            }
            try prefix.withUnsafeBytes { prefixBytes in
                try from.withUnsafeBytes { fromBytes in
                    try tables.scan(Table.byWorkflow, from: fromBytes) { key, value in
                        guard key.count == prefixBytes.count + 8, key.prefix(prefixBytes.count).elementsEqual(prefixBytes) else {
                            return false
                        }
                        if let batch = ImportedBatchEntry(value) {
                            let position = RunsProjection.position(ofKey: key)
                            let first = resume?.position == position ? resume!.index : 0
                            for i in first..<max(first, batch.count) {
                                guard let run = try Self.record(batch.runId(at: i), tables) else { continue }
                                if !take(run) { return false }
                            }
                            return true
                        }
                        guard let run = try Self.record(value, tables) else { return true }
                        return take(run)
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
                    if let batch = ImportedBatchEntry(value) {
                        // A batch skipped whole at once.
                        if skipped + batch.count <= offset {
                            skipped += batch.count
                            return true
                        }
                        for i in (offset - skipped)..<batch.count {
                            ids.append(batch.runId(at: i))
                            if ids.count == limit { return false }
                        }
                        skipped = offset
                        return true
                    }
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
            var runs: [(position: UInt64, index: Int, id: String, queue: RunQueue)] = []
            try tables.scan(Table.active, from: nil) { key, value in
                let position = RunsProjection.position(ofKey: key)
                if let batch = ImportedBatchEntry(value) {
                    for i in 0..<batch.count {
                        let id = batch.runId(at: i)
                        guard let run = try Self.record(id, tables), !run.status.hasEnded else { continue }
                        runs.append((position, i, id, .batch))
                    }
                    return true
                }
                runs.append((position, 0, String(decoding: value, as: UTF8.self), key.first == 0 ? .realtime : .batch))
                return true
            }
            // The table holds the real-time runs first; order them all by creation.
            return runs.sorted { ($0.position, $0.index) < ($1.position, $1.index) }.map { ($0.id, $0.queue) }
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
            return runs.sorted { ($0.createdPosition, $0.createdIndex ?? 0) < ($1.createdPosition, $1.createdIndex ?? 0) }
        }
    }

    /// The number of runs.
    public func count() throws(WorkflowError) -> Int {
        try read { tables in try tables.count(Table.records) }
    }

    // MARK: Helpers

    private func read<T>(_ body: (any ProjectionTables) throws -> T) throws(WorkflowError) -> T {
        do {
            return try store.readProjection(projection, body)
        } catch {
            throw WorkflowError(storage: error, "cannot read the run tables")
        }
    }

    private static func record(_ id: String, _ tables: any ProjectionTables) throws -> RunRecord? {
        try Array(id.utf8).withUnsafeBytes { try record($0, tables) }
    }

    private static func record(_ id: UnsafeRawBufferPointer, _ tables: any ProjectionTables) throws -> RunRecord? {
        try tables.get(Table.records, id).map(decode)
    }

    private static func position(_ id: String, _ tables: any ProjectionTables) throws -> UInt64 {
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
