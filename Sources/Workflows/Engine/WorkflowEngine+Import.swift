public import EventStore

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

extension WorkflowEngine {
    /// Creates `runs` of `workflowId` at `version` on the batch queue, in one atomic append with
    /// `extra` (an importer's checkpoint): the runs exist exactly when the checkpoint does. Runs
    /// count against the daily quota: when it has no room for all of them, nothing is created and
    /// the error is `quotaExceeded` (`quotaRoom()` tells how many would fit).
    ///
    /// The events are encoded by the caller's task, off the actor: the actor only reserves the
    /// quota, then queues the runs once they are recorded and in the read models, so a batch of
    /// runs holds it for less time and the encoding can use another core.
    ///
    /// Returns the ids of the runs created, in order, once they are durable: the read models
    /// may not have them yet (`importedRunsQueued()` waits until they do).
    public nonisolated func createImportedRuns(
        workflowId: String,
        version: Int,
        importerRunId: String,
        _ runs: [ImportedRun],
        extra: [StreamWrite],
        actor: String?
    ) async throws(WorkflowError) -> [String] {
        let count = runs.count
        let day = try await reserveImportQuota(workflowId: workflowId, count: count)
        let metadata = Self.metadata(actor, correlation: importerRunId)
        var writes: [StreamWrite] = []
        var ids: [String] = []
        writes.reserveCapacity(count + extra.count)
        ids.reserveCapacity(count)
        for run in runs {
            let created = RunCreated(
                runId: Ids.make("run_"), workflowId: workflowId, version: version, arm: .none, rolloutId: nil,
                source: RunSource(kind: "importer", reference: importerRunId, row: run.row), parameters: run.parameters,
                objectType: run.objectType, objectToken: run.objectToken, eventType: run.eventType, queue: .batch,
                quotaDay: day
            )
            ids.append(created.runId)
            writes.append(StreamWrite(stream: Streams.run(created.runId), expected: .noStream,
                                      events: [DomainEvent.runCreated(created).newEvent(metadata: metadata)]))
        }
        writes += extra
        try await recordImportedRuns(writes, ids: ids, day: day)
        return ids
    }

    /// Checks the workflow and reserves `count` runs of today's quota; the day is the runs'
    /// quota day. `recordImportedRuns` gives the reservation back.
    private func reserveImportQuota(workflowId: String, count: Int) throws(WorkflowError) -> String {
        guard state.workflows[workflowId] != nil else { throw Self.workflowNotFound(workflowId) }
        return try reserveQuota(count)
    }

    /// Appends the writes of `createImportedRuns` and returns once they are recorded: the
    /// importer reads its next batch while the read models fold this one in, and `ingest` then
    /// queues the runs `ids` and releases the quota reserved for them. One batch at most waits
    /// for the read models; the next waits for it before it is appended, so an import never
    /// gets further ahead of the projection than that.
    private func recordImportedRuns(_ writes: [StreamWrite], ids: [String], day: String) async throws(WorkflowError) {
        if let last = importsInFlight.last { await caughtUp(to: last.position) }
        let result: AppendResult
        do {
            result = try await record(writes)
        } catch {
            releaseQuota(ids.count, day: day)
            throw error
        }
        importsInFlight.append((result.lastPosition, ids, day))
        if state.position >= result.lastPosition { queueImportedRuns() }
    }

    /// Queues the runs of the imported batches the read models now hold.
    func queueImportedRuns() {
        var settled = 0
        for batch in importsInFlight {
            guard batch.position <= state.position else { break }
            for id in batch.ids { enqueue(id, .batch) }
            releaseQuota(batch.ids.count, day: batch.day)
            settled += 1
        }
        importsInFlight.removeFirst(settled)
    }

    /// Waits until the runs of every imported batch recorded so far are in the read models and
    /// queued (or the engine stops): an importer calls it before it records that its run ended.
    public func importedRunsQueued() async {
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
        if configuration.clock() - event.occurredAt > maxAge {
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
