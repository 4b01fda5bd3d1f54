public import WorkflowModel
public import EventLog

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
        source: String? = nil,
        since: Int64? = nil,
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
                if let source, run.created.source.kind != source { return true }
                if let since, run.createdAt < since { return true }
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

    /// The ids of a workflow's last `limit` runs created after log position `after`, oldest
    /// first. One pass over the workflow's index, keeping only ids.
    public func lastRunIds(of workflowId: String, limit: Int, after: UInt64 = 0) throws(WorkflowError) -> [String] {
        var ring: [String] = []
        var next = 0
        guard limit > 0 else { return ring }
        try forEachRunId(of: workflowId, after: after, lastOfBatch: limit) { id in
            if ring.count < limit {
                ring.append(id)
            } else {
                ring[next] = id
                next = (next + 1) % limit
            }
        }
        return Array(ring[next...] + ring[..<next])
    }

    /// About `limit` ids of a workflow's runs created after log position `after`, spread over them
    /// all, oldest first: those whose id hashes lowest (FNV-1a), so the same runs on every node and
    /// every time. Two passes over the workflow's index, keeping only ids.
    public func sampledRunIds(of workflowId: String, limit: Int, after: UInt64 = 0) throws(WorkflowError) -> [String] {
        var total = 0
        try forEachRunId(of: workflowId, after: after) { _ in total += 1 }
        guard total > limit else { return try lastRunIds(of: workflowId, limit: limit, after: after) }
        // Ids below twice the expected threshold, then the `limit` lowest of them.
        let fraction = Double(limit) * 2 / Double(total)
        let threshold = fraction >= 1 ? UInt64.max : UInt64(fraction * Double(UInt64.max / 2)) * 2
        var kept: [(hash: UInt64, order: Int, id: String)] = []
        var order = 0
        try forEachRunId(of: workflowId, after: after) { id in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            if hash < threshold { kept.append((hash, order, id)) }
            order += 1
        }
        kept.sort { $0.hash < $1.hash }
        return kept.prefix(limit).sorted { $0.order < $1.order }.map(\.id)
    }

    /// Calls `body` with each id of a workflow's runs created after `after`, oldest first; of an
    /// imported batch, only the last `lastOfBatch`.
    private func forEachRunId(of workflowId: String, after: UInt64, lastOfBatch: Int = .max,
                              _ body: (String) -> Void) throws(WorkflowError) {
        try read { tables in
            let prefix = RunsProjection.workflowPrefix(workflowId)
            let from = RunsProjection.workflowKey(workflowId, after + 1)
            try prefix.withUnsafeBytes { prefixBytes in
                try from.withUnsafeBytes { fromBytes in
                    try tables.scan(Table.byWorkflow, from: fromBytes) { key, value in
                        guard key.count == prefixBytes.count + 8, key.prefix(prefixBytes.count).elementsEqual(prefixBytes) else {
                            return false
                        }
                        if let batch = ImportedBatchEntry(value) {
                            for i in max(0, batch.count - lastOfBatch)..<batch.count { body(batch.runId(at: i)) }
                        } else {
                            body(String(decoding: value, as: UTF8.self))
                        }
                        return true
                    }
                }
            }
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

    /// The runs of rollout `rolloutId` that ended, by arm (`treatment`, `control`) and outcome
    /// (the decision, else the final status: `completed`, `failed`, `cancelled`).
    public func rolloutOutcomes(_ rolloutId: String) throws(WorkflowError) -> [String: [String: Int]] {
        try read { tables in
            var outcomes: [String: [String: Int]] = [:]
            let prefix = Array(rolloutId.utf8) + [0]
            try prefix.withUnsafeBytes { prefixBytes in
                try tables.scan(Table.rolloutOutcomes, prefix: prefixBytes) { key, value in
                    let parts = key.dropFirst(prefix.count).split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { return true }
                    let count = value.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    outcomes[String(decoding: parts[0], as: UTF8.self), default: [:]][String(decoding: parts[1], as: UTF8.self)]
                        = Int(clamping: count)
                    return true
                }
            }
            return outcomes
        }
    }

    /// Runs queued or running, in the order they were created, with their queue and the position
    /// of the event that created them.
    public func activeRuns() throws(WorkflowError) -> [(id: String, queue: RunQueue, position: UInt64)] {
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
            return runs.sorted { ($0.position, $0.index) < ($1.position, $1.index) }.map { ($0.id, $0.queue, $0.position) }
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
