import WorkflowModel
import RunlogJSON
import EventLog
import Foundation

extension WorkflowEngine {
    /// The context conditions and steps see for a run: `run`, `parameters` (API) or `inputs`
    /// (action), `event` (event triggers) and `object` (event and action triggers).
    func context(for run: RunRecord) -> JSONValue {
        Self.context(for: run.created, in: state, vault: vault)
    }

    /// The context of a run created as `c`, with objects as `state` holds them (the engine's
    /// live state, or a state folded up to a position for a preview), their data opened with `vault`.
    static func context(for c: RunCreated, in state: WorkflowsState, vault: ObjectVault) -> JSONValue {
        var context: [String: JSONValue] = [
            "run": ["id": .string(c.runId), "workflow_id": .string(c.workflowId), "version": .integer(Int64(c.version)),
                    "arm": .string(c.arm.rawValue)],
        ]
        if c.objectType == nil {
            context["parameters"] = c.parameters
        } else {
            context["inputs"] = c.parameters
        }
        if case .object(let extra)? = c.context {
            for (name, value) in extra where context[name] == nil && !Self.engineContextKeys.contains(name) {
                context[name] = value
            }
        }
        if let type = c.objectType, let token = c.objectToken {
            let key = ObjectKey(type: type, token: token)
            let object = state.objects[key]
            context["object"] = [
                "type": .string(type), "token": .string(token), "data": .object(Self.objectFields(key, in: state, vault: vault)),
                "tags": .array((object?.tags ?? []).map(JSONValue.string)),
                "decision": object?.decision.map(JSONValue.string) ?? .null,
            ]
            // The triggering event: the one posted (event runs), or for importer-created runs of an
            // event-triggered workflow the object's latest event of the trigger's type.
            let entry = object?.events.first { $0.eventId == c.source.reference }
                ?? (c.source.kind == "importer" ? object?.events.last { $0.eventType == c.eventType } : nil)
            if let eventType = c.eventType, let entry {
                context["event"] = [
                    "type": .string(eventType), "occurred_at": .integer(entry.occurredAt),
                    "data": (try? vault.open(entry.data, for: key)) ?? .null,
                ]
            }
        }
        return .object(context)
    }

    /// The context keys the engine sets; a run's extra context cannot replace them.
    public static let engineContextKeys: Set<String> = ["run", "parameters", "inputs", "object", "event"]

    /// The step as this run executes it: the run's overrides for the step applied.
    static func effective(_ step: WorkflowDefinition.Step, in run: RunRecord) -> WorkflowDefinition.Step {
        step.overridden(by: run.created.stepOverrides)
    }

    /// Events decided for a run and not yet appended, grouped by stream in order.
    final class PendingWrites {
        let runId: String
        let metadata: EventMetadata
        /// Whether the run is on the batch queue (see `flush`).
        let isBatch: Bool
        var runEvents: [DomainEvent] = []
        var other: [(stream: String, event: DomainEvent)] = []
        /// The version of the run's stream its next events must follow (nil: any). A second
        /// executor of the run (another node that took it over) cannot then record a step twice.
        var runVersion: UInt64?
        var isEmpty: Bool { runEvents.isEmpty && other.isEmpty }

        init(runId: String, metadata: EventMetadata, isBatch: Bool) {
            self.runId = runId
            self.metadata = metadata
            self.isBatch = isBatch
        }

        func clear() {
            runEvents.removeAll()
            other.removeAll()
        }

        /// The object and list events first, the run's own events last: a reader that sees a
        /// step or the run completed also sees what it did.
        func writes() -> [StreamWrite] {
            var writes: [StreamWrite] = []
            var order: [String] = []
            var byStream: [String: [NewEvent]] = [:]
            for (stream, event) in other {
                if byStream[stream] == nil { order.append(stream) }
                byStream[stream, default: []].append(event.newEvent(metadata: metadata))
            }
            for stream in order { writes.append(StreamWrite(stream: stream, events: byStream[stream]!)) }
            if !runEvents.isEmpty {
                writes.append(StreamWrite(stream: Streams.run(runId), expected: runVersion.map { .exact($0) } ?? .any,
                                          events: runEvents.map { $0.newEvent(metadata: metadata) }))
            }
            return writes
        }
    }

    /// Executes a run from where its recorded history ends. Steps that only change Runlog's own
    /// state are decided and appended together; a step with an outside effect (`http_request`,
    /// `redact`, `run_workflow`) is recorded as started before the effect and completed after,
    /// so after a crash a completed effect is never repeated, and a started one is retried with
    /// the same idempotency key.
    func executeRun(_ runId: String) async {
        // The history this execution continues, read before the status: a run cancelled after the
        // read is cancelled in a later version, and this execution's appends fail on it.
        guard let version = try? store.streamVersion(Streams.run(runId)) else { return }
        guard var run = runRecord(runId), run.status == .queued || run.status == .running else { return }
        // The read models keep a summary of each run; its parameters, context and step
        // overrides are read back from its run.created event. Unreadable: the run stays queued
        // and resumes from its history on the next start.
        guard let created = try? createdEvent(of: run) else { return }
        run.created = created
        let c = run.created
        let pending = PendingWrites(runId: runId, metadata: Self.metadata(nil, correlation: runId, causation: runId),
                                    isBatch: c.queue == .batch)
        pending.runVersion = version
        let definition: WorkflowDefinition
        do {
            definition = try self.definition(c.workflowId, version: c.version)
        } catch {
            pending.runEvents.append(.runFailed(RunFailed(runId: runId, stepUid: nil, reason: error.description)))
            _ = await flush(pending)
            return
        }
        let route: WorkflowDefinition.Route?
        if run.routeDecided {
            route = run.route.flatMap { name in definition.routes.first { $0.name == name } }
        } else {
            route = definition.route(for: context(for: run), lists: state.listMembership)
            pending.runEvents.append(.routeMatched(RouteMatched(runId: runId, route: route?.name)))
        }
        var decision = run.decision
        for step in route?.steps ?? [] {
            let latest = runRecord(runId)
            if let record = latest?.steps.first(where: { $0.uid == step.uid }), record.status == .completed {
                if step.type == .approve { decision = "approved" }
                if step.type == .decline { decision = "declined" }
                continue
            }
            var current = latest ?? run
            current.created = created
            let outcome = await perform(step, run: current, pending: pending)
            switch outcome {
            case .completed(let stepDecision):
                if let stepDecision { decision = stepDecision }
            case .failed(let reason):
                pending.runEvents.append(.runFailed(RunFailed(runId: runId, stepUid: step.uid, reason: reason)))
                _ = await flush(pending)
                return
            case .interrupted:
                return
            }
        }
        pending.runEvents.append(.runCompleted(RunCompleted(runId: runId, decision: decision)))
        _ = await flush(pending)
    }

    /// Appends what is pending; false when storage failed (the run resumes later from its history).
    ///
    /// While real-time work is in flight, a batch run's appends are background work in the
    /// store: they ride along with real-time commits instead of making a real-time append wait
    /// for a commit of theirs. Otherwise they are normal appends, which the writer groups with
    /// the other workers' appends (a drain of batch runs is bound by commits).
    func flush(_ pending: PendingWrites) async -> Bool {
        guard !pending.isEmpty else { return true }
        do {
            try await append(pending.writes(), priority: pending.isBatch && deferringBackground ? .background : .normal)
            pending.runVersion = pending.runVersion.map { $0 + UInt64(pending.runEvents.count) }
            pending.clear()
            return true
        } catch {
            return false
        }
    }

    enum StepOutcome {
        case completed(decision: String?)
        case failed(String)
        /// Storage failed or the engine is stopping; the run resumes later from its history.
        case interrupted
    }

    private func perform(
        _ step: WorkflowDefinition.Step,
        run: RunRecord,
        pending: PendingWrites
    ) async -> StepOutcome {
        let runId = run.id
        let step = Self.effective(step, in: run)
        let p = step.parameters
        let started = DomainEvent.stepStarted(StepStarted(runId: runId, stepUid: step.uid, stepType: step.type.rawValue,
                                                          attempt: 1, idempotencyKey: nil))
        func complete(_ output: JSONValue) {
            pending.runEvents.append(.stepCompleted(StepCompleted(runId: runId, stepUid: step.uid, output: output)))
        }
        func fail(_ reason: String) -> StepOutcome {
            pending.runEvents.append(.stepFailed(StepFailed(runId: runId, stepUid: step.uid, attempt: 1,
                                                            error: reason, willRetry: false)))
            return .failed("step \(step.uid) (\(step.type.rawValue)) failed: \(reason)")
        }
        let objectKey = run.created.objectType.flatMap { type in run.created.objectToken.map { ObjectKey(type: type, token: $0) } }
        switch step.type {
        case .approve, .decline:
            pending.runEvents.append(started)
            let decision = step.type == .approve ? "approved" : "declined"
            if let objectKey {
                pending.other.append((Streams.object(objectKey.type, objectKey.token), .objectDecided(ObjectDecided(
                    objectType: objectKey.type, objectToken: objectKey.token, decision: decision,
                    reason: p["reason"]?.stringValue, runId: runId))))
            }
            complete(["decision": .string(decision)])
            return .completed(decision: decision)
        case .tag:
            pending.runEvents.append(started)
            guard let objectKey else { return fail("tag needs an object; this run has none") }
            let tags = (p["tags"]?.arrayValue ?? []).compactMap(\.stringValue)
            pending.other.append((Streams.object(objectKey.type, objectKey.token), .objectTagged(ObjectTagged(
                objectType: objectKey.type, objectToken: objectKey.token, tags: tags, runId: runId))))
            complete(["tags": .array(tags.map(JSONValue.string))])
            return .completed(decision: nil)
        case .addToList, .removeFromList:
            pending.runEvents.append(started)
            let list = p["list"]?.stringValue ?? ""
            let path = p["path"]?.stringValue ?? ""
            guard let value = value(at: path, in: run) else { return fail("the context has no value at \"\(path)\"") }
            let change = ListItemChanged(listId: list, value: value, runId: runId)
            pending.other.append((Streams.list(list), step.type == .addToList ? .listItemAdded(change) : .listItemRemoved(change)))
            complete(["list": .string(list), "value": value])
            return .completed(decision: nil)
        case .setField:
            pending.runEvents.append(started)
            guard let objectKey else { return fail("set_field needs an object; this run has none") }
            let field = p["field"]?.stringValue ?? ""
            let value: JSONValue
            if let literal = p["value"] {
                value = literal
            } else {
                let path = p["path"]?.stringValue ?? ""
                guard let found = self.value(at: path, in: run) else { return fail("the context has no value at \"\(path)\"") }
                value = found
            }
            guard let sealed = try? await vault.seal(value, for: objectKey) else { return .interrupted }
            pending.other.append((Streams.object(objectKey.type, objectKey.token), .objectFieldSet(ObjectFieldSet(
                objectType: objectKey.type, objectToken: objectKey.token, field: field, value: sealed, runId: runId))))
            complete(["field": .string(field)])
            return .completed(decision: nil)
        case .redact:
            guard let objectKey else {
                pending.runEvents.append(started)
                return fail("redact needs an object; this run has none")
            }
            // Record the intent first: if the process dies after the key is gone, the retry
            // finds nothing to destroy and completes.
            pending.runEvents.append(started)
            guard await flush(pending) else { return .interrupted }
            do {
                try await vault.destroyKey(for: objectKey)
            } catch {
                return .interrupted
            }
            pending.other.append((Streams.object(objectKey.type, objectKey.token), .objectRedacted(ObjectRedacted(
                objectType: objectKey.type, objectToken: objectKey.token, runId: runId))))
            complete([:])
            return .completed(decision: nil)
        case .runWorkflow:
            pending.runEvents.append(started)
            guard await flush(pending) else { return .interrupted }
            let child = p["workflow_id"]?.stringValue ?? ""
            // A child already started by an earlier attempt of this step is found by its source.
            if let existing = try? runs.runIds(source: "workflow", reference: "\(runId)/\(step.uid)", limit: 1).first {
                complete(["run_id": .string(existing)])
                return .completed(decision: nil)
            }
            // A chain of runs started by run_workflow steps (a workflow that starts itself, or a
            // cycle) ends at a fixed depth instead of starting runs without end.
            var depth = 1
            var source = run.created.source
            while source.kind == "workflow", depth < Self.maxRunWorkflowDepth,
                  let parent = source.reference?.split(separator: "/").first.map(String.init),
                  let record = runRecord(parent) {
                depth += 1
                source = record.created.source
            }
            guard depth < Self.maxRunWorkflowDepth else {
                return fail("run_workflow chains are at most \(Self.maxRunWorkflowDepth) runs deep; "
                            + "run \(runId) is the last of one (does a workflow start itself?)")
            }
            do {
                let started = try await startRun(workflowId: child, parameters: p["parameters"] ?? [:],
                                                  source: RunSource(kind: "workflow", reference: "\(runId)/\(step.uid)"),
                                                  queue: run.created.queue)
                complete(["run_id": .string(started.id)])
                return .completed(decision: nil)
            } catch {
                return fail(error.description)
            }
        case .httpRequest:
            return await performHTTP(step, run: run, pending: pending)
        }
    }

    /// How many runs deep a chain of `run_workflow` steps may go.
    static let maxRunWorkflowDepth = 16

    /// The first value a dotted path reaches in the run's context.
    func value(at path: String, in run: RunRecord) -> JSONValue? {
        let parts = path.split(separator: ".").map(String.init)
        guard !parts.isEmpty else { return nil }
        return Evaluator(lists: NoLists()).values(at: parts[...], in: context(for: run)).first
    }

    /// An outbound call: recorded as started (with its idempotency key) before it is made, its
    /// response recorded after; a completed call is never made again, on replay or resume.
    private func performHTTP(
        _ step: WorkflowDefinition.Step,
        run: RunRecord,
        pending: PendingWrites
    ) async -> StepOutcome {
        let runId = run.id
        let p = step.parameters
        let key = "\(runId)/\(step.uid)"
        let retries = Int(p["retries"].flatMap { if case .integer(let n) = $0 { n } else { nil } } ?? Int64(2))
        let timeout = Int(p["timeout_ms"].flatMap { if case .integer(let n) = $0 { n } else { nil } } ?? Int64(10_000))
        var body: [UInt8]?
        if let literal = p["body"] {
            body = literal.jsonBytes
        } else if let path = p["body_path"]?.stringValue {
            body = (value(at: path, in: run) ?? .null).jsonBytes
        }
        var headers = (p["headers"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        let previousAttempts = runRecord(runId)?.steps.first { $0.uid == step.uid }?.attempts ?? 0
        if let account = p["account"]?.stringValue {
            // The account's credentials go into this request only: never into an event.
            do throws(CredentialError) {
                guard let provider = configuration.credentials else {
                    throw CredentialError("account \(account) cannot be used: this server has no account store")
                }
                Self.addCredentials(try await provider.headers(forAccount: account, project: project(of: run)), to: &headers)
            } catch {
                pending.runEvents.append(.stepStarted(StepStarted(runId: runId, stepUid: step.uid, stepType: step.type.rawValue,
                                                                  attempt: previousAttempts + 1, idempotencyKey: key)))
                pending.runEvents.append(.stepFailed(StepFailed(runId: runId, stepUid: step.uid, attempt: previousAttempts + 1,
                                                                error: error.reason, willRetry: false)))
                return .failed("step \(step.uid) (http_request) failed: \(error.reason)")
            }
        }
        headers["Idempotency-Key"] = key
        if body != nil && headers["Content-Type"] == nil { headers["Content-Type"] = "application/json" }
        let request = OutboundRequest(url: p["url"]?.stringValue ?? "", method: p["method"]?.stringValue ?? "POST",
                                      headers: headers, body: body, timeout: .milliseconds(timeout))
        var attempt = previousAttempts
        while true {
            attempt += 1
            pending.runEvents.append(.stepStarted(StepStarted(runId: runId, stepUid: step.uid, stepType: step.type.rawValue,
                                                              attempt: attempt, idempotencyKey: key)))
            guard await flush(pending) else { return .interrupted }
            let result: Result<OutboundResponse, any Error>
            do {
                result = .success(try await configuration.http.perform(request))
            } catch {
                result = .failure(error)
            }
            let error: String
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                let text = String(decoding: response.body, as: UTF8.self)
                let bodyValue = (try? JSONValue(parsingForeign: response.body)) ?? .string(text)
                pending.runEvents.append(.stepCompleted(StepCompleted(runId: runId, stepUid: step.uid, output: [
                    "status": .integer(Int64(response.status)), "body": bodyValue,
                ])))
                return .completed(decision: nil)
            case .success(let response):
                error = "HTTP \(response.status) from \(request.method) \(request.url)"
            case .failure(let failure):
                error = "\(request.method) \(request.url) failed: \(failure)"
            }
            let willRetry = attempt - previousAttempts <= retries && !Task.isCancelled
            pending.runEvents.append(.stepFailed(StepFailed(runId: runId, stepUid: step.uid, attempt: attempt,
                                                            error: error, willRetry: willRetry)))
            if !willRetry { return .failed("step \(step.uid) (http_request) failed: \(error)") }
            try? await Task.sleep(for: .milliseconds(min(2_000, 50 << min(attempt, 6))))
        }
    }
}

// MARK: Outbound HTTP

public struct OutboundRequest: Sendable, Hashable {
    public var url: String
    public var method: String
    public var headers: [String: String]
    public var body: [UInt8]?
    public var timeout: Duration
}

public struct OutboundResponse: Sendable, Hashable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Makes the outbound calls of `http_request` steps.
public protocol HTTPPerformer: Sendable {
    func perform(_ request: OutboundRequest) async throws -> OutboundResponse
}
