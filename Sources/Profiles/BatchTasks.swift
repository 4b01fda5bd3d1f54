import EventLog
import Foundation
public import RunlogJSON
import WorkflowModel
public import Workflows

/// The batch import-and-start task API's domain: upserts profiles by a matching key and starts a
/// workflow for each, as one atomic append (profile events, runs, and the task's own
/// `task.accepted.v1`), then reports the task's progress from its runs.
///
/// Tasks are decided one at a time, so two tasks inserting the same new email make one profile.
public actor BatchTasks {
    public nonisolated let engine: WorkflowEngine
    /// Data objects a request may carry.
    public nonisolated let maxProfiles: Int
    private var index = ProfileIndex()
    /// Tasks read from the log, by id: `tasks/status` is polled, and a task never changes.
    private var recorded: [String: RecordedTask] = [:]
    private struct RecordedTask {
        var profileIds: [JSONValue]
        var runIds: [String]
        /// Set once every run ended: the answer cannot change any more.
        var finalAnswer: JSONValue?
    }
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public static let acceptedEvent = "task.accepted.v1"
    public static func stream(_ taskId: String) -> String { "task-" + taskId }

    public init(engine: WorkflowEngine, maxProfiles: Int = 10_000) {
        self.engine = engine
        self.maxProfiles = maxProfiles
    }

    /// Checks and records a task; returns its id. Nothing is recorded when anything is invalid.
    public func submit(_ request: BatchTaskRequest, actor: String?) async throws(TaskAPIError) -> String {
        await lock()
        defer { unlock() }
        guard let workflowId = await engine.read({ $0.workflowNumbers[request.workflowNumber] }) else {
            throw .invalid("workflow_id", .integer(Int64(request.workflowNumber)), "no workflow has this number")
        }
        var refreshed = index
        await refreshed.refresh(from: engine)
        index = refreshed
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var events: [BatchObjectEvent] = []
        var pending = index
        var started = Set<String>()
        var inserted = 0
        var updated = 0
        func context(_ content: [String: JSONValue], _ customData: [String: JSONValue]) -> JSONValue {
            ["apicontent": .object(content), "custom_data": .object(customData)]
        }
        if let query = request.customRequest {
            for token in pending.query(query) {
                events.append(BatchObjectEvent(token: token, eventType: nil, startsRun: true,
                                               runContext: context(request.content, request.customData)))
            }
        } else if let mode = request.matching {
            if mode == .custom, let name = request.fieldName { pending.indexCustom(name) }
            for item in request.items {
                let key = item.key ?? ""
                var tokens = pending.find(mode, key, fieldName: request.fieldName)
                let runContext = context(item.content, item.customData)
                if tokens.isEmpty {
                    // Insert: the profile keeps the value it was matched by.
                    let token = mode == .profileId ? key : Profile.newId(now: now)
                    var fields = item.fields
                    switch mode {
                    case .email, .emailProfile: if fields["email"] == nil { fields["email"] = .string(key) }
                    case .phone: if fields["phone"] == nil && fields["phones"] == nil { fields["phone"] = .string(key) }
                    case .custom: if let name = request.fieldName, fields[name] == nil { fields[name] = .string(key) }
                    case .profileId: break
                    }
                    pending.put(token, fields)
                    tokens = [token]
                    inserted += 1
                    events.append(BatchObjectEvent(token: token, eventType: Profile.createdEvent, data: .object(fields),
                                                   startsRun: started.insert(token).inserted, runContext: runContext))
                    continue
                }
                for token in tokens {
                    var merged = pending.fields[token] ?? [:]
                    for (k, v) in item.fields { merged[k] = v }
                    pending.put(token, merged)
                    updated += 1
                    events.append(BatchObjectEvent(token: token, eventType: item.fields.isEmpty ? nil : Profile.updatedEvent,
                                                   data: .object(item.fields), startsRun: started.insert(token).inserted,
                                                   runContext: runContext))
                }
            }
        }
        let taskId = UUID().uuidString.lowercased()
        let tokens = events.map(\.token)
        let matching = request.matching?.rawValue ?? "custom_request"
        let (created, changed) = (inserted, updated)
        let outcome: BatchOutcome
        do {
            outcome = try await engine.recordBatch(
                objectType: Profile.objectType, events, workflowId: workflowId,
                source: RunSource(kind: "task", reference: taskId), skipTriggers: request.skipTriggers, actor: actor
            ) { outcome in
                var profileIds: [JSONValue] = []
                var runIds: [JSONValue] = []
                for (token, run) in zip(tokens, outcome.runIds) {
                    guard let run else { continue }
                    profileIds.append(.string(token))
                    runIds.append(.string(run))
                }
                let payload: JSONValue = [
                    "taskId": .string(taskId), "workflowId": .string(workflowId), "matching": .string(matching),
                    "profileIds": .array(profileIds), "runIds": .array(runIds),
                    "profilesCreated": .integer(Int64(created)), "profilesUpdated": .integer(Int64(changed)),
                    "triggeredRunIds": .array(outcome.triggeredRunIds.map(JSONValue.string)),
                    "skipTriggers": .bool(request.skipTriggers),
                ]
                return [StreamWrite(stream: Self.stream(taskId), expected: .noStream, events: [
                    NewEvent(type: Self.acceptedEvent, payload: payload.jsonBytes, metadata: EventMetadata(actor: actor)),
                ])]
            }
        } catch {
            throw Self.taskError(error)
        }
        _ = outcome
        index = pending
        return taskId
    }

    /// The task's status in the API's shape: `data.status` (`processing` while any of its runs
    /// is queued or running, else `completed`), `data.progress` (0–100, the share of its runs
    /// that ended) and `data.result.result`, one `{"profile_id"}` per profile it started.
    public func status(_ taskId: String) async throws(TaskAPIError) -> JSONValue {
        var task: RecordedTask
        if let known = recorded[taskId] {
            if let answer = known.finalAnswer { return answer }
            task = known
        } else {
            do {
                guard let event = try engine.store.readStream(Self.stream(taskId), limit: 1).first,
                      event.type == Self.acceptedEvent else { throw TaskAPIError(404, "") }
                let accepted = try JSONValue(parsing: event.payload)
                task = RecordedTask(profileIds: accepted["profileIds"]?.arrayValue ?? [],
                                    runIds: (accepted["runIds"]?.arrayValue ?? []).compactMap(\.stringValue))
            } catch {
                throw TaskAPIError(404, "task_id = \(JSONValue.string(taskId).jsonText): no task has this id")
            }
        }
        let records: [RunRecord?]
        do {
            records = try engine.runRecords(task.runIds)
        } catch {
            throw TaskAPIError(500, "the task's runs could not be read", debug: error.message)
        }
        let succeeded = records.filter { $0?.status == .completed }.count
        let failed = records.filter { $0?.status == .failed }.count
        let ended = succeeded + failed
        let total = task.runIds.count
        let progress = total == 0 ? 100 : ended * 100 / total
        // The seed's fields as it shapes them, plus each profile's run and outcome and the counts,
        // so that a task whose runs failed does not read as a plain success.
        let perProfile: [JSONValue] = task.profileIds.enumerated().map { i, profile in
            let record = i < records.count ? records[i] : nil
            return ["profile_id": profile,
                    "run_id": i < task.runIds.count ? .string(task.runIds[i]) : .null,
                    "run_status": record.map { .string($0.status.rawValue) } ?? .null,
                    "run_error": record?.failure.map(JSONValue.string) ?? .null]
        }
        let answer: JSONValue = [
            "data": [
                "status": .string(ended == total ? "completed" : "processing"),
                "progress": .integer(Int64(progress)),
                "succeeded": .integer(Int64(succeeded)),
                "failed": .integer(Int64(failed)),
                "result": [
                    "error": 0,
                    "error_text": .string(failed == 0 ? "" : "\(failed) of \(total) runs failed"),
                    "result": .array(perProfile),
                ],
            ],
            "error": 0,
            "error_text": "Successful operation",
        ]
        if ended == total { task.finalAnswer = answer }
        if recorded.count >= 1024 { recorded.removeAll(keepingCapacity: true) }
        recorded[taskId] = task
        return answer
    }

    static func taskError(_ error: WorkflowError) -> TaskAPIError {
        switch error.code {
        case .quotaExceeded:
            return TaskAPIError(429, error.message)
        case .notFound:
            return TaskAPIError(404, error.message)
        case .conflict:
            return TaskAPIError(409, error.message)
        case .storage:
            return TaskAPIError(500, "the task could not be recorded; nothing was changed", debug: error.message)
        default:
            let issues = error.issues.map(\.description).joined(separator: "; ")
            return TaskAPIError(400, issues.isEmpty ? error.message : error.message + ": " + issues)
        }
    }

    private func lock() async {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
    }

    private func unlock() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
