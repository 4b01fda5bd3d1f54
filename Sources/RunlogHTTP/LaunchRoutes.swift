import RunlogJSON
import Access
import HTTPTypes
import EventLog
import Foundation
import Hummingbird
import WorkflowModel
import Workflows

/// The launch API (seed 001, `/v3/`): schedule a job of a workflow (one run per input), the
/// playground payload, jobs and their results, and integration accounts. Requests authenticate
/// with `x-api-key` and name their project in `x-project-id` (see `LaunchAuth.swift`); jobs and
/// accounts belong to the project they were made in. `docs/launch-api.md` shows a session.
extension RunlogAPI {
    func addLaunchRoutes(to router: RouterGroup<Context>, accounts: AccountBook) {
        router.post("workflows/{workflow_uid}/schedule") { request, context in
            try await launchCommand(request, context, .write,
                                    allowed: ["job_name", "inputs", "steps", "input_keys"]) { body in
                let project = try context.requireProject()
                let workflowId = try context.parameters.require("workflow_uid")
                guard let workflow = await engine.read({ $0.workflows[workflowId] }) else {
                    throw APIError.notFound("workflow \(workflowId) does not exist")
                }
                let jobName = try body.string("job_name") ?? workflow.name
                guard case .array(let inputs)? = body.value("inputs") else {
                    if let given = body.value("inputs") {
                        throw APIError.invalid(field: "inputs", value: given, rule: "must be an array of inputs (objects)")
                    }
                    throw BodyFields.missing("inputs", "an array of inputs, each an object of input keys to values")
                }
                let steps = try Self.stepSettings(body.value("steps"))
                let view = try await engine.scheduleJob(
                    JobRequest(projectId: project, workflowId: workflowId, jobName: jobName, inputs: inputs, steps: steps),
                    accountExists: { accounts.account($0, project: project) != nil }, actor: context.actor)
                return Answer(["job_uid": .string(view.record.id)], status: .created,
                              headers: [.location: "/v3/jobs/\(view.record.id)"])
            }
        }
        router.get("workflows/{workflow_uid}/playground") { _, context in
            try context.require(.read)
            _ = try context.requireProject()
            let workflowId = try context.parameters.require("workflow_uid")
            guard let workflow = await engine.read({ $0.workflows[workflowId] }) else {
                throw APIError.notFound("workflow \(workflowId) does not exist")
            }
            guard let version = workflow.active else {
                throw APIError(.conflict, "conflict", "workflow \(workflowId) has no active version; activate a version first")
            }
            let definition = try await engine.publishedDefinition(workflowId, version: version)
            guard case .api(let schema, _) = definition.trigger else {
                throw APIError(.conflict, "conflict", "workflow \(workflowId) version \(version) is triggered by "
                               + "\(definition.trigger.kind), not the API; a job needs an API-triggered workflow")
            }
            return Answer(Self.playground(workflow, schema: schema, definition: definition),
                          headers: [HTTPField.Name("x-workflow-version")!: String(version)])
        }

        router.get("jobs/{job_uid}") { _, context in
            try context.require(.read)
            return Answer(Self.job(try await projectJob(context)))
        }
        router.get("jobs/{job_uid}/results") { request, context in
            try context.require(.read)
            let view = try await projectJob(context)
            let limit = try request.queryInt("limit", Int.self, in: 1...1000) ?? 100
            let from: Int
            if let cursor = request.query("cursor") {
                guard let index = Int(cursor), index >= 0 else {
                    throw APIError.badRequest("cursor must be a next_cursor this server gave (an input index)",
                                              field: "cursor", value: cursor)
                }
                from = index
            } else {
                from = 0
            }
            let runs = try await engine.jobRuns(view.record.id, from: from, limit: limit)
            let results = runs.map { Self.result($0, steps: view.record.scheduled.steps) }
            let next = from + runs.count < view.counts.total ? JSONValue.string(String(from + runs.count)) : .null
            return Answer(["job_uid": .string(view.record.id), "status": .string(view.status.rawValue),
                           "results": .array(results), "next_cursor": next])
        }
        for action in ["pause", "resume", "stop"] {
            router.post("jobs/{job_uid}/\(action)") { request, context in
                try await launchCommand(request, context, .write, allowed: []) { _ in
                    let id = try await projectJob(context).record.id
                    let view: JobView
                    switch action {
                    case "pause": view = try await engine.pauseJob(id, actor: context.actor)
                    case "resume": view = try await engine.resumeJob(id, actor: context.actor)
                    default: view = try await engine.stopJob(id, actor: context.actor)
                    }
                    return Answer(Self.job(view))
                }
            }
        }

        router.post("integrations/{integration_uid}/accounts") { request, context in
            try await launchCommand(request, context, .write, allowed: ["account"]) { body in
                let project = try context.requireProject()
                let integration = try context.parameters.require("integration_uid")
                let change = try Self.accountChange(body.value("account"))
                let saved = try await accounts.save(change, integration: integration, project: project, actor: context.actor)
                return Answer(["account": Self.account(saved)], status: change.uid == nil ? .created : .ok)
            }
        }
        router.get("integrations/{integration_uid}/accounts") { _, context in
            try context.require(.read)
            let project = try context.requireProject()
            let integration = try context.parameters.require("integration_uid")
            return Answer(["accounts": .array(accounts.accounts(integration: integration, project: project).map(Self.account))])
        }
    }

    /// The job of the path in the request's project (404 for another project's job).
    func projectJob(_ context: Context) async throws -> JobView {
        let project = try context.requireProject()
        let id = try context.parameters.require("job_uid")
        guard let view = await engine.jobView(id), view.record.scheduled.projectId == project else {
            throw APIError.notFound("job \(id) does not exist in project \(project)")
        }
        return view
    }

    /// `command` for `/v3/` bodies: parsed strictly, else after `LenientJSON.normalize`.
    func launchCommand(
        _ request: Request,
        _ context: Context,
        _ permission: Permission,
        allowed: Set<String>?,
        _ body: @escaping (BodyFields) async throws -> Answer
    ) async throws -> Answer {
        try await command(request, context, permission, allowed: allowed, lenient: true, body)
    }

    // MARK: Reading requests

    static let resultKeys: Set<String> = ["index", "input", "run_id", "status", "decision", "error"]

    /// The `steps` of a schedule request; each field is named as `steps[0].accounts[1]`.
    static func stepSettings(_ value: JSONValue?) throws -> [JobStepSettings] {
        guard let value else { return [] }
        guard case .array(let items) = value else {
            throw APIError.invalid(field: "steps", value: value, rule: "must be an array of step settings")
        }
        let allowed: Set<String> = ["step_uid", "type", "accounts", "accounts_rotation_enabled", "parameters", "output_column"]
        var settings: [JobStepSettings] = []
        var columns = Set<String>()
        for (i, item) in items.enumerated() {
            let at = "steps[\(i)]"
            guard case .object(let o) = item else { throw APIError.invalid(field: at, value: item, rule: "must be an object") }
            if let extra = o.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw APIError.invalid(field: "\(at).\(extra)", value: o[extra],
                                       rule: "is not a field of a step (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard case .string(let uid)? = o["step_uid"], !uid.isEmpty else {
                throw APIError.invalid(field: at + ".step_uid", value: o["step_uid"],
                                       rule: "is required: the uid of a step of the workflow (see the playground)")
            }
            var setting = JobStepSettings(stepUid: uid)
            switch o["accounts"] {
            case nil, .null?: break
            case .array(let accounts)?:
                for (j, account) in accounts.enumerated() {
                    guard case .string(let text) = account, !text.isEmpty else {
                        throw APIError.invalid(field: "\(at).accounts[\(j)]", value: account, rule: "must be an account uid (a string)")
                    }
                    setting.accounts.append(text)
                }
            case let other?:
                throw APIError.invalid(field: at + ".accounts", value: other, rule: "must be an array of account uids")
            }
            switch o["accounts_rotation_enabled"] {
            case nil, .null?: break
            case .bool(let flag)?: setting.accountsRotationEnabled = flag
            case let other?: throw APIError.invalid(field: at + ".accounts_rotation_enabled", value: other, rule: "must be true or false")
            }
            switch o["parameters"] {
            case nil, .null?: break
            case .object(let p)?: setting.parameters = .object(p)
            case let other?: throw APIError.invalid(field: at + ".parameters", value: other, rule: "must be an object")
            }
            switch o["output_column"] {
            case nil, .null?: break
            case .string(let column)? where !column.isEmpty && column.utf8.count <= 128:
                guard !resultKeys.contains(column) else {
                    throw APIError.invalid(field: at + ".output_column", value: .string(column),
                                           rule: "must not be one of the result's own keys: " + resultKeys.sorted().joined(separator: ", "))
                }
                guard columns.insert(column).inserted else {
                    throw APIError.invalid(field: at + ".output_column", value: .string(column), rule: "is used by another step")
                }
                setting.outputColumn = column
            case let other?:
                throw APIError.invalid(field: at + ".output_column", value: other, rule: "must be a string of 1 to 128 bytes")
            }
            if let type = o["type"], type != .null {
                // Informational (the playground shows it); ignored.
                if type.stringValue == nil {
                    throw APIError.invalid(field: at + ".type", value: type, rule: "must be a string (the step's type)")
                }
            }
            settings.append(setting)
        }
        return settings
    }

    /// The `account` of an accounts request.
    static func accountChange(_ value: JSONValue?) throws -> AccountChange {
        guard let value else { throw BodyFields.missing("account", "an object with name, api_key, username, password or cookies") }
        guard case .object(let o) = value else { throw APIError.invalid(field: "account", value: value, rule: "must be an object") }
        let allowed: Set<String> = ["uid", "name", "api_key", "username", "password", "cookies"]
        if let extra = o.keys.sorted().first(where: { !allowed.contains($0) }) {
            let secret = ["api_key", "password", "cookies"].contains(extra)
            throw APIError.invalid(field: "account.\(extra)", value: secret ? nil : o[extra],
                                   rule: "is not a field of an account (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        /// nil: not given; .some(nil): null (clear); the value of a secret is never repeated.
        func text(_ name: String, secret: Bool) throws -> String?? {
            guard let v = o[name] else { return nil }
            if v == .null { return .some(nil) }
            guard case .string(let s) = v else {
                throw APIError.invalid(field: "account.\(name)", value: secret ? nil : v, rule: "must be a string or null")
            }
            return .some(s)
        }
        var change = AccountChange()
        if let uid = try text("uid", secret: false) { change.uid = uid }
        if let name = try text("name", secret: false) {
            guard let name else { throw APIError.invalid(field: "account.name", value: .null, rule: "must be a string") }
            change.name = name
        }
        change.username = try text("username", secret: false)
        change.apiKey = try text("api_key", secret: true)
        change.password = try text("password", secret: true)
        switch o["cookies"] {
        case nil, .null?: break
        case .object(let cookies)?:
            for (name, v) in cookies {
                switch v {
                case .null: change.cookies[name] = .some(nil)
                case .string(let s): change.cookies[name] = .some(s)
                default: throw APIError.invalid(field: "account.cookies.\(name)", value: nil, rule: "must be a string or null")
                }
            }
        case _?: throw APIError.invalid(field: "account.cookies", value: nil, rule: "must be an object of cookie names to values")
        }
        return change
    }

    // MARK: Answers

    static func job(_ v: JobView) -> JSONValue {
        let s = v.record.scheduled
        return [
            "job_uid": .string(s.jobId), "job_name": .string(s.jobName), "project_id": .string(s.projectId),
            "workflow_uid": .string(s.workflowId), "workflow_version": .integer(Int64(s.version)),
            "status": .string(v.status.rawValue), "created_at": Representation.time(v.record.createdAt),
            "paused_at": Representation.time(v.record.pausedAt), "stopped_at": Representation.time(v.record.stoppedAt),
            "counts": [
                "total": .integer(Int64(v.counts.total)), "queued": .integer(Int64(v.counts.queued)),
                "running": .integer(Int64(v.counts.running)), "completed": .integer(Int64(v.counts.completed)),
                "failed": .integer(Int64(v.counts.failed)), "cancelled": .integer(Int64(v.counts.cancelled)),
            ],
            "steps": .array(s.steps.map(stepSetting)),
        ]
    }

    static func stepSetting(_ s: JobStepSettings) -> JSONValue {
        ["step_uid": .string(s.stepUid), "accounts": .array(s.accounts.map(JSONValue.string)),
         "accounts_rotation_enabled": .bool(s.accountsRotationEnabled), "parameters": s.parameters,
         "output_column": Representation.string(s.outputColumn)]
    }

    static func result(_ run: RunRecord, steps: [JobStepSettings]) -> JSONValue {
        var o: [String: JSONValue] = [
            "index": .integer(Int64(run.created.source.row ?? 0)), "input": run.created.parameters,
            "run_id": .string(run.id), "status": .string(run.status.rawValue),
            "decision": Representation.string(run.decision), "error": Representation.string(run.failure),
        ]
        for setting in steps {
            guard let column = setting.outputColumn else { continue }
            o[column] = run.steps.first { $0.uid == setting.stepUid }?.output ?? .null
        }
        return .object(o)
    }

    static let mask: JSONValue = "********"

    /// An account with its secrets masked: which ones are set, never their values.
    static func account(_ a: AccountRecord) -> JSONValue {
        [
            "uid": .string(a.uid), "integration_uid": .string(a.integrationUid), "name": .string(a.name),
            "username": Representation.string(a.username),
            "api_key": a.apiKey == nil ? .null : mask, "password": a.password == nil ? .null : mask,
            "has_api_key": .bool(a.apiKey != nil), "has_password": .bool(a.password != nil),
            "cookies": .object(a.cookies.mapValues { _ in mask }),
            "created_at": Representation.time(a.createdAt), "updated_at": Representation.time(a.updatedAt),
        ]
    }

    /// The default payload of the active version: every step with its uid and own parameters,
    /// one example input with a value of the right type for every input key, and the keys' types.
    /// Sent back as is, schedule accepts it (`input_keys` is informational).
    static func playground(_ workflow: WorkflowRecord, schema: ParameterSchema, definition: WorkflowDefinition) -> JSONValue {
        let today = String(JSONText.timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)).prefix(10))
        func example(_ type: ParameterSchema.FieldType) -> JSONValue {
            switch type {
            case .scalar(.string): ""
            case .scalar(.date): .string(today)
            case .scalar(.boolean): false
            case .scalar(.number), .scalar(.integer): 0
            case .array, .arrayOfObjects: []
            case .object(let fields): .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, example($0.type)) }))
            }
        }
        let keys = schema.json["fields"] ?? []
        var inputKeys: [String: JSONValue] = [:]
        for (field, json) in zip(schema.fields, keys.arrayValue ?? []) {
            var entry = json.objectValue ?? [:]
            entry["name"] = nil
            inputKeys[field.name] = .object(entry)
        }
        let steps = definition.routes.flatMap(\.steps).map { step -> JSONValue in
            ["step_uid": .string(step.uid), "type": .string(step.type.rawValue), "accounts": [],
             "accounts_rotation_enabled": false, "parameters": step.parameters, "output_column": .null]
        }
        return [
            "job_name": .string(workflow.name),
            "inputs": [.object(Dictionary(uniqueKeysWithValues: schema.fields.map { ($0.name, example($0.type)) }))],
            "steps": .array(steps),
            "input_keys": .object(inputKeys),
        ]
    }
}

extension RunlogRequestContext {
    func requireProject() throws -> String {
        guard let projectId else {
            throw APIError.badRequest("the x-project-id header is required", field: "x-project-id")
        }
        return projectId
    }
}
