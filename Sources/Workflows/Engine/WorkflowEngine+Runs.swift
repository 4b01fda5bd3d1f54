public import WorkflowModel
public import RunlogJSON
public import EventLog
import Foundation

/// What posting an object event did.
public struct PostedEvent: Sendable, Hashable {
    public var eventId: String
    /// The runs it started, one per matching active workflow.
    public var runIds: [String]
    /// True when this event id had been posted before: nothing new was recorded.
    public var duplicate: Bool
}

extension WorkflowEngine {
    // MARK: Creating runs

    /// Starts a run of an API-triggered workflow. The parameters are validated against the
    /// chosen version's schema; every bad field is named with its value and rule, and nothing is
    /// created then.
    public func startRun(
        workflowId: String,
        parameters: JSONValue,
        source: RunSource = RunSource(kind: "api"),
        queue: RunQueue = .realtime,
        actor: String? = nil
    ) async throws(WorkflowError) -> RunRecord {
        guard let workflow = state.workflows[workflowId] else { throw Self.workflowNotFound(workflowId) }
        let runId = Ids.make("run_")
        // The sticky key: the parameter chosen when the rollout was staged (or in the trigger),
        // else the run id.
        let choice = try choose(workflow) { definition, rollout in
            var field = rollout.stickyField
            if field == nil, case .api(_, let sticky) = definition.trigger { field = sticky }
            if let field, let value = parameters[field], value != .null {
                return value.stringValue ?? value.jsonText
            }
            return runId
        }
        guard case .api(let schema, _) = choice.definition.trigger else {
            throw WorkflowError(.conflict, "workflow \(workflowId) version \(choice.version) is triggered by "
                                + "\(choice.definition.trigger.kind), not the API")
        }
        let issues = schema.validate(parameters)
        guard issues.isEmpty else { throw .invalid(issues, "the parameters do not match the schema of \(workflowId)") }
        return try await createRun(RunCreated(
            runId: runId, workflowId: workflowId, version: choice.version, arm: choice.arm, rolloutId: choice.rolloutId,
            source: source, parameters: parameters, objectType: nil, objectToken: nil, eventType: nil,
            queue: queue, quotaDay: ""
        ), actor: actor)
    }

    /// Counts `created` against today's quota, appends it and queues the run.
    private func createRun(_ created: RunCreated, actor: String?) async throws(WorkflowError) -> RunRecord {
        var created = created
        created.quotaDay = try reserveQuota(1)
        defer { releaseQuota(1, day: created.quotaDay) }
        if created.queue == .realtime {
            realtimeCreating += 1
            realtimeBegan()
        }
        defer {
            if created.queue == .realtime {
                realtimeCreating -= 1
                realtimeRunLeft()
            }
        }
        try await append([StreamWrite(stream: Streams.run(created.runId), expected: .noStream,
                                      events: [DomainEvent.runCreated(created).newEvent(metadata: Self.metadata(actor))])])
        enqueue(created.runId, created.queue)
        guard var run = try runs.run(created.runId) else {
            throw WorkflowError(.storage, "run \(created.runId) was recorded but is not in the run table")
        }
        run.fill(created)
        return run
    }

    /// Runs an action workflow on an existing object with `inputs`.
    public func runAction(
        workflowId: String,
        objectToken: String,
        inputs: JSONValue,
        source: RunSource = RunSource(kind: "action"),
        queue: RunQueue = .realtime,
        actor: String? = nil
    ) async throws(WorkflowError) -> RunRecord {
        guard let workflow = state.workflows[workflowId] else { throw Self.workflowNotFound(workflowId) }
        let choice = try choose(workflow) { _, _ in objectToken }
        guard case .action(let objectType, let schema) = choice.definition.trigger else {
            throw WorkflowError(.conflict, "workflow \(workflowId) version \(choice.version) is triggered by "
                                + "\(choice.definition.trigger.kind), not an action")
        }
        guard state.objects[ObjectKey(type: objectType, token: objectToken)] != nil else {
            throw WorkflowError(.notFound, "\(objectType) \(objectToken) does not exist")
        }
        let issues = schema.validate(inputs)
        guard issues.isEmpty else { throw .invalid(issues, "the inputs do not match the action of \(workflowId)") }
        return try await createRun(RunCreated(
            runId: Ids.make("run_"), workflowId: workflowId, version: choice.version, arm: choice.arm,
            rolloutId: choice.rolloutId, source: source, parameters: inputs, objectType: objectType,
            objectToken: objectToken, eventType: nil, queue: queue, quotaDay: ""
        ), actor: actor)
    }

    /// Records an event about an object (creating the object on its first event) and starts a run
    /// of every active workflow whose trigger is this event type and whose criteria hold — in one
    /// atomic append. Posting the same `eventId` again records nothing and answers as before.
    public func postEvent(
        objectType: String,
        objectToken: String,
        eventType: String,
        data: JSONValue,
        occurredAt: Int64? = nil,
        eventId: String? = nil,
        queue: RunQueue = .realtime,
        actor: String? = nil
    ) async throws(WorkflowError) -> PostedEvent {
        try Self.validateObjectName("object_type", objectType)
        try Self.validateObjectName("object_token", objectToken)
        try Self.validateObjectName("type", eventType)
        guard case .object = data else { throw .invalid(field: "data", value: data, rule: "must be a JSON object") }
        if let occurredAt, !JSONText.timestampRange.contains(occurredAt) {
            throw .invalid(field: "occurred_at", value: .integer(occurredAt),
                           rule: "must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z")
        }
        if let eventId, eventId.isEmpty || eventId.utf8.count > 255
            || eventId.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .invalid(field: "id", value: .string(eventId), rule: "must be 1 to 255 bytes without control characters")
        }
        let key = ObjectKey(type: objectType, token: objectToken)
        let eventId = eventId ?? Ids.make("evt_")
        if state.objects[key]?.events.contains(where: { $0.eventId == eventId }) == true {
            let runs = try self.runs.runIds(source: "event", reference: eventId).sorted()
            return PostedEvent(eventId: eventId, runIds: runs, duplicate: true)
        }
        if state.objects[key]?.redacted == true {
            throw WorkflowError(.conflict, "\(objectType) \(objectToken) was redacted; it takes no more events")
        }
        let sealed: SealedData
        do {
            sealed = try await vault.seal(data, for: key)
        } catch {
            throw WorkflowError(.storage, "cannot seal the event data: \(error)")
        }
        let occurred = occurredAt ?? configuration.clock()
        // The context the trigger criteria see: the object with this event's data merged in.
        var objectData = objectFields(key)
        if case .object(let new) = data { for (k, v) in new { objectData[k] = v } }
        let runs = triggeredRuns(key, eventType: eventType, data: data, objectData: objectData, occurredAt: occurred,
                                 eventId: eventId, queue: queue)
        let day = try reserveQuota(runs.count)
        defer { releaseQuota(runs.count, day: day) }
        let metadata = Self.metadata(actor, correlation: eventId)
        var writes = [StreamWrite(stream: Streams.object(objectType, objectToken), events: [
            DomainEvent.objectEventRecorded(ObjectEventRecorded(
                eventId: eventId, objectType: objectType, objectToken: objectToken, eventType: eventType,
                occurredAt: occurred, data: sealed
            )).newEvent(metadata: metadata),
        ])]
        for var run in runs {
            run.quotaDay = day
            writes.append(StreamWrite(stream: Streams.run(run.runId), expected: .noStream,
                                      events: [DomainEvent.runCreated(run).newEvent(metadata: metadata)]))
        }
        try await append(writes)
        for run in runs { enqueue(run.runId, queue) }
        return PostedEvent(eventId: eventId, runIds: runs.map(\.runId), duplicate: false)
    }

    /// The runs an object event starts: one per active workflow triggered by `eventType` whose
    /// criteria hold, with the object's data as `objectData` (this event's data merged in).
    func triggeredRuns(
        _ key: ObjectKey, eventType: String, data: JSONValue, objectData: [String: JSONValue], occurredAt: Int64,
        eventId: String, queue: RunQueue
    ) -> [RunCreated] {
        var runs: [RunCreated] = []
        for workflow in state.workflows.values.sorted(by: { $0.number < $1.number }) where workflow.active != nil {
            guard let choice = try? choose(workflow, stickyKey: { _, _ in key.token }),
                  case .event(let type, let criteria) = choice.definition.trigger, type == eventType else { continue }
            let context: JSONValue = [
                "event": ["type": .string(eventType), "data": data, "occurred_at": .integer(occurredAt)],
                "object": ["type": .string(key.type), "token": .string(key.token), "data": .object(objectData),
                           "tags": .array((state.objects[key]?.tags ?? []).map(JSONValue.string))],
            ]
            if let criteria, !criteria.matches(context, lists: state.listMembership) { continue }
            runs.append(RunCreated(
                runId: Ids.make("run_"), workflowId: workflow.id, version: choice.version, arm: choice.arm,
                rolloutId: choice.rolloutId, source: RunSource(kind: "event", reference: eventId), parameters: [:],
                objectType: key.type, objectToken: key.token, eventType: eventType, queue: queue, quotaDay: ""
            ))
        }
        return runs
    }

    static func validateObjectName(_ field: String, _ value: String) throws(WorkflowError) {
        guard !value.isEmpty, value.utf8.count <= 128,
              value.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._:-".unicodeScalars.contains($0) })
        else {
            throw .invalid(field: field, value: .string(value),
                           rule: "must be 1 to 128 letters, digits or . _ : -")
        }
    }

    /// Which version a new run of `workflow` uses, and on which arm of a rollout.
    struct VersionChoice {
        var version: Int
        var arm: Arm
        var rolloutId: String?
        var definition: WorkflowDefinition
    }

    func choose(_ workflow: WorkflowRecord,
                stickyKey: (WorkflowDefinition, RolloutRecord) -> String) throws(WorkflowError) -> VersionChoice {
        guard let active = workflow.active else {
            throw WorkflowError(.conflict, "workflow \(workflow.id) is not active; activate a version first")
        }
        guard let rollout = workflow.rollout else {
            return VersionChoice(version: active, arm: .none, rolloutId: nil,
                                 definition: try definition(workflow.id, version: active))
        }
        // The sticky key comes from the treatment's trigger (the version being rolled out).
        let treatment = try definition(workflow.id, version: rollout.treatmentVersion)
        let key = stickyKey(treatment, rollout)
        if RolloutBucket.inTreatment(seed: rollout.id, key: key, percentage: rollout.percentage) {
            return VersionChoice(version: rollout.treatmentVersion, arm: .treatment, rolloutId: rollout.id, definition: treatment)
        }
        return VersionChoice(version: rollout.controlVersion, arm: .control, rolloutId: rollout.id,
                             definition: try definition(workflow.id, version: rollout.controlVersion))
    }

    // MARK: Objects

    /// An object's data as steps and conditions see it: every event's data merged in order, then
    /// the fields steps set. Empty after redaction.
    func objectFields(_ key: ObjectKey) -> [String: JSONValue] {
        Self.objectFields(key, in: state, vault: vault)
    }

    /// The object's data merged from its events and fields, as `state` holds them (empty once
    /// the object is redacted).
    static func objectFields(_ key: ObjectKey, in state: WorkflowsState, vault: ObjectVault) -> [String: JSONValue] {
        guard let object = state.objects[key], !object.redacted else { return [:] }
        var merged: [String: JSONValue] = [:]
        for event in object.events {
            if case .object(let data)? = try? vault.open(event.data, for: key) {
                for (k, v) in data { merged[k] = v }
            }
        }
        for (field, sealed) in object.fields.sorted(by: { $0.key < $1.key }) {
            if let value = try? vault.open(sealed, for: key) { merged[field] = value }
        }
        return merged
    }

    /// An object with its data opened (nil data after redaction).
    public func objectView(type: String, token: String) -> ObjectView? {
        let key = ObjectKey(type: type, token: token)
        guard let object = state.objects[key] else { return nil }
        return ObjectView(
            type: type, token: token, data: object.redacted ? nil : .object(objectFields(key)), tags: object.tags,
            decision: object.decision, redacted: object.redacted,
            events: object.events.map { e in
                ObjectView.Event(eventId: e.eventId, type: e.eventType, occurredAt: e.occurredAt,
                                 data: object.redacted ? nil : (try? vault.open(e.data, for: key)) ?? nil)
            }
        )
    }
}

/// An object as readers see it.
public struct ObjectView: Sendable, Hashable {
    public struct Event: Sendable, Hashable {
        public var eventId: String
        public var type: String
        public var occurredAt: Int64
        /// nil once the object is redacted.
        public var data: JSONValue?
    }
    public var type: String
    public var token: String
    public var data: JSONValue?
    public var tags: [String]
    public var decision: String?
    public var redacted: Bool
    public var events: [Event]
}

extension WorkflowEngine {
    // MARK: Run details

    /// `run` with its details read back from the log (`RunRecord.withDetails(from:)`).
    public nonisolated func detailed(_ run: RunRecord) throws(WorkflowError) -> RunRecord {
        try run.withDetails(from: store)
    }

    /// `detailed` of each run, in order.
    public nonisolated func detailed(_ runs: [RunRecord]) throws(WorkflowError) -> [RunRecord] {
        var result: [RunRecord] = []
        result.reserveCapacity(runs.count)
        for run in runs { result.append(try detailed(run)) }
        return result
    }

    /// The `run.created` event of `run`, whole: from the record when it holds its details, else
    /// from the log at `createdPosition` (one read, for the executor; the runs of an imported
    /// batch share one read of their `run.batch_imported`).
    func createdEvent(of run: RunRecord) throws(WorkflowError) -> RunCreated {
        if run.detailed { return run.created }
        if let index = run.createdIndex {
            let batch: RunsImported
            if let last = lastImportedBatch, last.position == run.createdPosition {
                batch = last.batch
            } else {
                batch = try run.importedBatch(from: store)
                lastImportedBatch = (run.createdPosition, batch)
            }
            return try run.created(in: batch, at: index)
        }
        let event: RecordedEvent?
        do {
            event = try store.event(at: run.createdPosition)
        } catch {
            throw WorkflowError(storage: error, "cannot read run.created of \(run.id)")
        }
        guard let event, case .runCreated(let created)? = try? DomainEvent.decode(type: event.type, payload: event.payload),
              created.runId == run.id else {
            throw WorkflowError(.storage, "the log has no run.created of \(run.id) at position \(run.createdPosition)")
        }
        return created
    }
}

extension RunRecord {
    /// This run with its details, read back from its stream in the log: the parameters, extra
    /// context and step overrides of its `run.created` event, and its steps with their outputs.
    /// A run that has ended gets its whole step history from the stream (the summary keeps none:
    /// nothing changes after the end). A run still queued or executing keeps the steps the
    /// record shows, with their outputs filled in, so it never shows a step the read models do
    /// not have yet.
    public func withDetails(from store: any EventStore) throws(WorkflowError) -> RunRecord {
        guard !detailed else { return self }
        let events: [RecordedEvent]
        do {
            events = try store.readStream(Streams.run(id), limit: 1_000_000)
        } catch {
            throw WorkflowError(storage: error, "cannot read the history of run \(id)")
        }
        let whole: RunRecord
        if let index = createdIndex {
            // An imported run's stream starts after its creation, which is in its batch's event.
            let created = try self.created(in: try importedBatch(from: store), at: index)
            var record = RunRecord(created: created, createdAt: createdAt, createdPosition: createdPosition,
                                   createdIndex: index, detailed: true)
            for event in events {
                guard let decoded = try? DomainEvent.decode(type: event.type, payload: event.payload) else { continue }
                record.fold(decoded, at: event.recordedAt, keepsDetails: true)
            }
            whole = record
        } else {
            var history = WorkflowsState(keepsRunDetails: true)
            for event in events { history.apply(event) }
            guard let record = history.runs[id] else {
                throw WorkflowError(.storage, "the stream of run \(id) has no run.created")
            }
            whole = record
        }
        var run = self
        run.created = whole.created
        if status.hasEnded {
            run.steps = whole.steps
        } else {
            for i in run.steps.indices where run.steps[i].status == .completed {
                run.steps[i].output = whole.steps.first { $0.uid == run.steps[i].uid }?.output
            }
        }
        run.detailed = true
        return run
    }

    /// The `run.batch_imported` this imported run was created by, read from the log.
    func importedBatch(from store: any EventStore) throws(WorkflowError) -> RunsImported {
        let event: RecordedEvent?
        do {
            event = try store.event(at: createdPosition)
        } catch {
            throw WorkflowError(storage: error, "cannot read the batch of run \(id)")
        }
        guard let event, case .runsImported(let batch)? = try? DomainEvent.decode(type: event.type, payload: event.payload) else {
            throw WorkflowError(.storage, "the log has no run.batch_imported of \(id) at position \(createdPosition)")
        }
        return batch
    }

    /// This run's `run.created` as its batch gives it, checked against the run's id.
    func created(in batch: RunsImported, at index: Int) throws(WorkflowError) -> RunCreated {
        guard batch.rows.indices.contains(index), batch.runId(at: index) == id else {
            throw WorkflowError(.storage, "the batch at position \(createdPosition) has no run \(id)")
        }
        return batch.created(at: index)
    }

    /// Puts the whole `run.created` back, as the one who created the run has it; the record then
    /// holds its details when it has not ended and no step has completed yet (no output or step
    /// is missing).
    mutating func fill(_ whole: RunCreated) {
        guard !detailed else { return }
        created = whole
        detailed = !status.hasEnded && !steps.contains { $0.status == .completed }
    }
}
