public import WorkflowModel
public import RunlogJSON
public import EventLog

/// One run an importer asks for: a row mapped to a pinned version.
public struct ImportedRun: Sendable, Hashable {
    public var parameters: JSONValue
    public var objectType: String?
    public var objectToken: String?
    public var eventType: String?
    public var row: Int

    public init(parameters: JSONValue, objectType: String? = nil, objectToken: String? = nil, eventType: String? = nil,
                row: Int) {
        self.parameters = parameters
        self.objectType = objectType
        self.objectToken = objectToken
        self.eventType = eventType
        self.row = row
    }
}

/// A batch of imported runs with its quota reserved and its event encoded, ready to be
/// submitted (`WorkflowEngine.submitImportedRuns`) or given up (`discardImportedRuns`).
public struct PreparedImport: Sendable {
    let writes: [StreamWrite]
    /// The batch's run id prefix (`RunsImported.runIdPrefix`).
    let prefix: String
    /// The number of runs.
    public let count: Int
    let day: String

    /// The ids of the runs, in the order of the batch.
    public var ids: [String] { (0..<count).map { RunsImported.runId(prefix: prefix, index: $0) } }
}

extension WorkflowEngine {
    /// Creates `runs` of `workflowId` at `version` on the batch queue, in one atomic append with
    /// `extra` (an importer's checkpoint): the runs exist exactly when the checkpoint does. Runs
    /// count against the daily quota: when it has no room for all of them, nothing is created and
    /// the error is `quotaExceeded` (`quotaRoom()` tells how many would fit).
    ///
    /// Returns the ids of the runs created, in order, once they are durable: the read models
    /// may not have them yet (`importedRunsQueued()` waits until they do). An importer that
    /// keeps several batches in flight uses the two steps this is made of instead.
    public nonisolated func createImportedRuns(
        workflowId: String,
        version: Int,
        importerRunId: String,
        _ runs: [ImportedRun],
        extra: [StreamWrite],
        actor: String?
    ) async throws(WorkflowError) -> [String] {
        let prepared = try await prepareImportedRuns(workflowId: workflowId, version: version, importerRunId: importerRunId,
                                                     runs, extra: extra, actor: actor)
        let pending = try submitImportedRuns(prepared)
        do {
            _ = try await pending.result()
        } catch {
            throw WorkflowError(appending: error)
        }
        return prepared.ids
    }

    /// The first step of creating imported runs: checks the workflow, reserves the runs' quota
    /// and encodes their `run.batch_imported` event (on the caller's task, off the actor, so the
    /// encoding can use another core). It waits first while the read models are more than
    /// `importsAhead` recorded batches behind, so an import never gets further ahead of the
    /// projection than that (real-time commands wait for the projection to reach their events).
    public nonisolated func prepareImportedRuns(
        workflowId: String,
        version: Int,
        importerRunId: String,
        _ runs: [ImportedRun],
        extra: [StreamWrite],
        actor: String?
    ) async throws(WorkflowError) -> PreparedImport {
        let count = runs.count
        guard count <= RunsImported.maxRows else {
            throw .invalid(field: "runs", value: .integer(Int64(count)), rule: "at most \(RunsImported.maxRows) runs per batch")
        }
        let day = try await reserveImportQuota(workflowId: workflowId, count: count)
        let prefix = Ids.batchPrefix("run_")
        var writes: [StreamWrite] = []
        if count > 0 {
            let batch = RunsImported(
                workflowId: workflowId, version: version, importerRunId: importerRunId, runIdPrefix: prefix, quotaDay: day,
                rows: runs.map { ImportedRow(row: $0.row, parameters: $0.parameters, objectType: $0.objectType,
                                             objectToken: $0.objectToken, eventType: $0.eventType) })
            let metadata = Self.metadata(actor, correlation: importerRunId)
            writes.append(StreamWrite(stream: Streams.importedRuns(importerRunId),
                                      events: [DomainEvent.runsImported(batch).newEvent(metadata: metadata)]))
        }
        writes += extra
        return PreparedImport(writes: writes, prefix: prefix, count: count, day: day)
    }

    /// The second step: queues the prepared batch in the store at once, so batches submitted one
    /// after another commit in that order, and returns the append's handle. The engine queues
    /// the runs once the read models have them, and the runs' quota reservation ends as the
    /// read models fold them in (or when the append fails).
    public nonisolated func submitImportedRuns(_ prepared: PreparedImport) throws(WorkflowError) -> PendingAppend {
        let pending: PendingAppend
        do {
            pending = try store.submit(prepared.writes, priority: .background)
        } catch {
            discardImportedRuns(prepared)
            throw WorkflowError(appending: error)
        }
        importsOutstanding.withLock { $0 += 1 }
        Task { await self.track(pending, prefix: prepared.prefix, count: prepared.count, day: prepared.day) }
        return pending
    }

    /// Gives back the quota a prepared batch reserved, when it will not be submitted.
    public nonisolated func discardImportedRuns(_ prepared: PreparedImport) {
        Task { await self.releaseQuota(prepared.count, day: prepared.day) }
    }

    /// Checks the workflow and reserves `count` runs of today's quota; the day is the runs'
    /// quota day. `track` (or `discardImportedRuns`) gives the reservation back.
    private func reserveImportQuota(workflowId: String, count: Int) async throws(WorkflowError) -> String {
        if importsInFlight.count >= Self.importsAhead {
            await caughtUp(to: importsInFlight[importsInFlight.count - Self.importsAhead].position)
        }
        guard state.workflows[workflowId] != nil else { throw Self.workflowNotFound(workflowId) }
        return try reserveQuota(count)
    }

    /// How many recorded batches of imported runs the read models may be behind before the
    /// next batch waits.
    static let importsAhead = 2

    /// Waits for a submitted batch's commit: then the batch waits in `importsInFlight` (by
    /// position) until the read models have it; a failed batch only gives back its quota.
    private func track(_ pending: PendingAppend, prefix: String, count: Int, day: String) async {
        defer {
            let left = importsOutstanding.withLock { count in
                count -= 1
                return count
            }
            if left == 0 {
                for waiter in importWaiters { waiter.resume() }
                importWaiters.removeAll()
            }
        }
        guard let result = try? await pending.result() else {
            releaseQuota(count, day: day)
            return
        }
        guard count > 0 else { return }
        let position = result.lastPosition
        let index = importsInFlight.firstIndex { $0.position > position } ?? importsInFlight.endIndex
        importsInFlight.insert((position, prefix, count), at: index)
        queueImportedRuns()
    }

    /// Queues the runs of the imported batches the read models now hold.
    func queueImportedRuns() {
        var settled = 0
        for batch in importsInFlight {
            guard batch.position <= state.position else { break }
            queues.pushImported(prefix: batch.prefix, count: batch.count)
            settled += 1
        }
        importsInFlight.removeFirst(settled)
    }

    /// Waits until the runs of every imported batch submitted so far are recorded, in the read
    /// models and queued (or the engine stops): an importer calls it before it records that its
    /// run ended.
    public func importedRunsQueued() async {
        while importsOutstanding.withLock({ $0 }) > 0 {
            await withCheckedContinuation { importWaiters.append($0) }
        }
        if let last = importsInFlight.last { await caughtUp(to: last.position) }
    }

    /// Runs that may still be created today (Int.max without a quota).
    public func quotaRoom() -> Int {
        guard let quota = configuration.dailyRunQuota else { return .max }
        let status = quotaStatus()
        return max(0, quota - status.used - (reservedRuns[status.day] ?? 0))
    }

    /// Why an event-triggered workflow's version cannot run for this object now, or nil when it
    /// can: the object must exist, have an event of the trigger's type no older than `maxAge`
    /// milliseconds, and satisfy the trigger criteria with that event.
    public func eventTriggerProblem(
        workflowId: String, version: Int, objectType: String, token: String, maxAge: Int64
    ) -> String? {
        guard let definition = try? definition(workflowId, version: version),
              case .event(let eventType, let criteria) = definition.trigger else {
            return "version \(version) of \(workflowId) is not event-triggered"
        }
        let key = ObjectKey(type: objectType, token: token)
        guard let object = state.objects[key] else { return "\(objectType) \(token) does not exist" }
        guard let event = object.events.last(where: { $0.eventType == eventType }) else {
            return "\(objectType) \(token) has no \(eventType) event"
        }
        // Overflow-safe: a log written before times were range-checked may hold any Int64.
        if event.occurredAt < configuration.clock().subtractingReportingOverflow(maxAge).partialValue {
            return "the \(eventType) event of \(objectType) \(token) is older than 3 months"
        }
        if let criteria {
            let data = (try? vault.open(event.data, for: key)) ?? .null
            let context: JSONValue = [
                "event": ["type": .string(eventType), "data": data, "occurred_at": .integer(event.occurredAt)],
                "object": ["type": .string(objectType), "token": .string(token), "data": .object(objectFields(key)),
                           "tags": .array(object.tags.map(JSONValue.string))],
            ]
            if !criteria.matches(context, lists: state.listMembership) {
                return "\(objectType) \(token) does not satisfy the trigger criteria"
            }
        }
        return nil
    }

    /// True when the object exists.
    public func objectExists(type: String, token: String) -> Bool {
        state.objects[ObjectKey(type: type, token: token)] != nil
    }

    /// The definition of a published version.
    public func publishedDefinition(_ workflowId: String, version: Int) throws(WorkflowError) -> WorkflowDefinition {
        try definition(workflowId, version: version)
    }
}
