public import WorkflowModel
public import RunlogJSON
public import EventLog
import Crypto

/// One event of a batch about objects of one type, e.g. a profile created or updated by a batch
/// task, and whether the batch's workflow runs for the object.
public struct BatchObjectEvent: Sendable, Hashable {
    public var token: String
    /// nil when nothing is recorded about the object (it only gets a run).
    public var eventType: String?
    /// The event's data (an object); sealed under the object's key like every object event.
    public var data: JSONValue
    /// Start the batch's workflow for this object.
    public var startsRun: Bool
    /// Extra context of that run (`RunCreated.context`).
    public var runContext: JSONValue?

    public init(token: String, eventType: String?, data: JSONValue = [:], startsRun: Bool = true, runContext: JSONValue? = nil) {
        self.token = token
        self.eventType = eventType
        self.data = data
        self.startsRun = startsRun
        self.runContext = runContext
    }
}

/// What a batch recorded: per event, the run of the batch's workflow it started (nil when it
/// starts none), and the runs the events triggered.
public struct BatchOutcome: Sendable, Hashable {
    public var runIds: [String?]
    public var triggeredRunIds: [String]
}

extension WorkflowEngine {
    /// Records `events` about objects of `objectType` and, for each event that `startsRun`, runs
    /// the action workflow `workflowId` on its object (batch queue, source `source` with the
    /// event's index as row) — all in one atomic append with `extra(outcome)`. Unless
    /// `skipTriggers`, each event also starts the event-triggered workflows it matches, as a
    /// posted event does. Runs count against the quota; when it has no room for all of them, or
    /// any event is invalid, nothing is recorded.
    public func recordBatch(
        objectType: String,
        _ events: [BatchObjectEvent],
        workflowId: String?,
        source: RunSource,
        skipTriggers: Bool,
        actor: String?,
        extra: @Sendable (BatchOutcome) -> [StreamWrite] = { _ in [] }
    ) async throws(WorkflowError) -> BatchOutcome {
        try Self.validateObjectName("object_type", objectType)
        for (i, event) in events.enumerated() {
            try Self.validateObjectName("events[\(i)].token", event.token)
            if let type = event.eventType { try Self.validateObjectName("events[\(i)].type", type) }
            guard case .object = event.data else {
                throw .invalid(field: "events[\(i)].data", value: event.data, rule: "must be a JSON object")
            }
            if event.eventType == nil, state.objects[ObjectKey(type: objectType, token: event.token)] == nil {
                throw WorkflowError(.notFound, "\(objectType) \(event.token) does not exist")
            }
            if state.objects[ObjectKey(type: objectType, token: event.token)]?.redacted == true {
                throw WorkflowError(.conflict, "\(objectType) \(event.token) was redacted; it takes no more events")
            }
        }
        let workflow: WorkflowRecord?
        if let workflowId, events.contains(where: \.startsRun) {
            guard let found = state.workflows[workflowId] else { throw Self.workflowNotFound(workflowId) }
            workflow = found
        } else {
            workflow = nil
        }
        // Every object's key exists before anything is sealed; new keys are written concurrently,
        // so the store commits them together.
        let keys = try await objectKeys(objectType, Set(events.filter { $0.eventType != nil }.map(\.token)))
        let now = configuration.clock()
        var writes: [StreamWrite] = []
        var created: [RunCreated] = []
        var runIds: [String?] = []
        var triggered: [String] = []
        var pendingData: [String: [String: JSONValue]] = [:]
        let metadata = Self.metadata(actor, correlation: source.reference)
        func record(_ event: BatchObjectEvent, _ eventType: String, _ objectKey: ObjectKey) throws(WorkflowError) {
            let eventId = Ids.make("evt_")
            guard let key = keys[event.token], let sealed = try? vault.seal(event.data, with: key) else {
                throw WorkflowError(.storage, "cannot seal the data of \(objectType) \(event.token)")
            }
            writes.append(StreamWrite(stream: Streams.object(objectType, event.token), events: [
                DomainEvent.objectEventRecorded(ObjectEventRecorded(
                    eventId: eventId, objectType: objectType, objectToken: event.token, eventType: eventType,
                    occurredAt: now, data: sealed
                )).newEvent(metadata: metadata),
            ]))
            var objectData = pendingData[event.token] ?? objectFields(objectKey)
            if case .object(let new) = event.data { for (k, v) in new { objectData[k] = v } }
            pendingData[event.token] = objectData
            if !skipTriggers {
                let runs = triggeredRuns(objectKey, eventType: eventType, data: event.data, objectData: objectData,
                                         occurredAt: now, eventId: eventId, queue: .batch)
                created += runs
                triggered += runs.map(\.runId)
            }
        }
        for (i, event) in events.enumerated() {
            let key = ObjectKey(type: objectType, token: event.token)
            if let eventType = event.eventType {
                try record(event, eventType, key)
            }
            guard event.startsRun, let workflow else {
                runIds.append(nil)
                continue
            }
            let choice = try choose(workflow) { _, _ in event.token }
            guard case .action(let type, let schema) = choice.definition.trigger, type == objectType else {
                throw WorkflowError(.conflict, "workflow \(workflow.id) version \(choice.version) is triggered by "
                                    + "\(Self.describe(choice.definition.trigger)), not an action on \(objectType) objects")
            }
            let issues = schema.validate([:])
            guard issues.isEmpty else {
                throw .invalid(issues, "the action of workflow \(workflow.id) needs inputs a batch cannot give")
            }
            let run = RunCreated(
                runId: Ids.make("run_"), workflowId: workflow.id, version: choice.version, arm: choice.arm,
                rolloutId: choice.rolloutId, source: RunSource(kind: source.kind, reference: source.reference, row: i),
                parameters: [:], objectType: objectType, objectToken: event.token, eventType: nil, queue: .batch,
                quotaDay: "", context: event.runContext
            )
            created.append(run)
            runIds.append(run.runId)
        }
        let day = try reserveQuota(created.count)
        defer { releaseQuota(created.count, day: day) }
        for var run in created {
            run.quotaDay = day
            writes.append(StreamWrite(stream: Streams.run(run.runId), expected: .noStream,
                                      events: [DomainEvent.runCreated(run).newEvent(metadata: metadata)]))
        }
        let outcome = BatchOutcome(runIds: runIds, triggeredRunIds: triggered)
        writes += extra(outcome)
        try await append(writes)
        for run in created { enqueue(run.runId, .batch) }
        return outcome
    }

    private static func describe(_ trigger: WorkflowDefinition.Trigger) -> String {
        switch trigger {
        case .event(let type, _): "the event \(type)"
        case .api: "the API"
        case .action(let type, _): "an action on \(type) objects"
        }
    }

    /// The keys of the objects `tokens` of `objectType`, creating the missing ones.
    private func objectKeys(_ objectType: String, _ tokens: Set<String>) async throws(WorkflowError) -> [String: SymmetricKey] {
        let vault = self.vault
        do {
            return try await withThrowingTaskGroup(of: (String, SymmetricKey).self) { group in
                var keys: [String: SymmetricKey] = [:]
                var iterator = tokens.makeIterator()
                var running = 0
                while true {
                    while running < 64, let token = iterator.next() {
                        group.addTask { (token, try await vault.key(for: ObjectKey(type: objectType, token: token))) }
                        running += 1
                    }
                    guard let (token, key) = try await group.next() else { break }
                    running -= 1
                    keys[token] = key
                }
                return keys
            }
        } catch {
            throw WorkflowError(.storage, "cannot make the objects' keys: \(error)")
        }
    }

    /// The revision of every object of `type`, by token (see `ObjectRecord.revision`).
    public func objectRevisions(type: String) -> [String: Int] {
        var revisions: [String: Int] = [:]
        for (key, object) in state.objects where key.type == type { revisions[key.token] = object.revision }
        return revisions
    }

    /// The data of objects of `type` as steps see it (nil for a missing or redacted object).
    public func objectData(type: String, tokens: [String]) -> [String: JSONValue?] {
        var data: [String: JSONValue?] = [:]
        for token in tokens {
            let key = ObjectKey(type: type, token: token)
            guard let object = state.objects[key], !object.redacted else {
                data[token] = .some(nil)
                continue
            }
            data[token] = .object(objectFields(key))
        }
        return data
    }

    /// The status of each run (nil for an unknown id).
    public nonisolated func runStatuses(_ ids: [String]) throws(WorkflowError) -> [RunRecord.Status?] {
        try runs.statuses(ids)
    }

    /// The runs `ids` name, from the run table (nil for an id it does not hold), in that order.
    public nonisolated func runRecords(_ ids: [String]) throws(WorkflowError) -> [RunRecord?] {
        try runs.runs(ids)
    }
}
