import EventLog
import Hummingbird
public import RunlogJSON
public import WorkflowModel
public import Workflows

/// Previews of a draft, a definition or a published version against the runs a workflow had.
extension RunlogAPI {
    func addPreviewRoutes(to router: RouterGroup<Context>) {
        router.post("workflows/{id}/draft/preview") { request, context in
            try await command(request, context, .read, allowed: ["runs", "since", "examples", "sample", "definition"]) { body in
                let workflow = try await self.workflow(context)
                let candidate: WorkflowDefinition
                let label: String
                if let given = body.value("definition") {
                    candidate = try Self.definition(given, field: "definition")
                    label = "definition"
                } else {
                    guard let draft = workflow.draft else {
                        throw APIError.notFound("workflow \(workflow.id) has no draft: save one, or send a \"definition\"")
                    }
                    candidate = try Self.definition(draft.definition, field: nil)
                    label = "draft"
                }
                let scope = try Self.previewScope(body)
                let report = try await oneAtATime {
                    try await engine.preview(workflowId: workflow.id, candidate: candidate, label: label, scope: scope)
                }
                return Answer(Representation.preview(report))
            }
        }
        router.post("workflows/{id}/versions/{version}/preview") { request, context in
            try await command(request, context, .read, allowed: ["runs", "since", "examples", "sample"]) { body in
                let workflow = try await self.workflow(context)
                let version = try Self.versionParameter(context)
                guard version <= workflow.latestVersion else {
                    throw APIError.notFound("workflow \(workflow.id) has no version \(version)")
                }
                let candidate = try Self.definition(workflow.versions[version - 1].definition, field: nil)
                let scope = try Self.previewScope(body)
                let report = try await oneAtATime {
                    try await engine.preview(workflowId: workflow.id, candidate: candidate, label: "version \(version)", scope: scope)
                }
                return Answer(Representation.preview(report))
            }
        }
    }

    /// Runs a preview, one at a time on this server (each reads the whole log): another meanwhile
    /// gets 429 with Retry-After.
    func oneAtATime(_ preview: () async throws -> PreviewReport) async throws -> PreviewReport {
        guard previewGate.take() else {
            throw APIError(.tooManyRequests, "busy", "a preview is already running on this server; try again when it has finished",
                           headers: [.retryAfter: "2"])
        }
        defer { previewGate.release() }
        return try await preview()
    }

    /// The definition in `json`; its issues are named under `field` when one was given with the
    /// request (`definition.trigger.kind`).
    static func definition(_ json: JSONValue, field: String?) throws -> WorkflowDefinition {
        do {
            return try WorkflowDefinition(json: json)
        } catch {
            var error = error
            if let field, error.issues.first?.field != "definition" {
                error.issues = error.issues.map { FieldIssue(field: field + "." + $0.field, value: $0.value, rule: $0.rule) }
                error.message = "\(field): \(error.message)"
            }
            throw APIError(error)
        }
    }

    /// `runs` (1…100,000, default 1,000), `since` (RFC 3339 or UTC ms), `examples` (0…50, default 3)
    /// and `sample` (runs spread over all, instead of the latest).
    static func previewScope(_ body: BodyFields) throws -> PreviewScope {
        var scope = PreviewScope()
        if let runs = try body.int("runs") {
            guard (1...PreviewScope.maxRuns).contains(runs) else {
                throw APIError.invalid(field: "runs", value: .integer(Int64(runs)),
                                       rule: "must be between 1 and \(PreviewScope.maxRuns)")
            }
            scope.runs = runs
        }
        if let since = body.value("since") {
            guard let ms = milliseconds(since), ms >= 0 else {
                throw APIError.invalid(field: "since", value: since,
                                       rule: "must be an RFC 3339 time (e.g. 2026-11-22T10:00:00Z) or UTC milliseconds, "
                                           + "not before 1970-01-01")
            }
            scope.since = ms
        }
        if let examples = try body.int("examples") {
            guard (0...PreviewScope.maxExamples).contains(examples) else {
                throw APIError.invalid(field: "examples", value: .integer(Int64(examples)),
                                       rule: "must be between 0 and \(PreviewScope.maxExamples)")
            }
            scope.examples = examples
        }
        scope.sample = try body.bool("sample") ?? false
        return scope
    }
}

extension Representation {
    public static func preview(_ r: PreviewReport) -> JSONValue {
        let parts = ["route", "decision", "tags", "lists", "fields", "calls", "starts", "redaction", "failure"]
        return [
            "workflow_id": .string(r.workflowId),
            "candidate": .string(r.candidate),
            "position": .integer(Int64(r.position)),
            "runs": .integer(Int64(r.runs)),
            "evaluated": .integer(Int64(r.evaluated)),
            "unchanged": .integer(Int64(r.unchanged)),
            "changed": .integer(Int64(r.changed)),
            "changes": .object(Dictionary(uniqueKeysWithValues: parts.map { ($0, .integer(Int64(r.changes[$0] ?? 0))) })),
            "matrix": .array(r.cells.map { cell in
                [
                    "before": .string(cell.before), "after": .string(cell.after), "runs": .integer(Int64(cell.runs)),
                    "examples": .array(cell.examples.map { e in
                        [
                            "run_id": .string(e.runId), "position": .integer(Int64(e.position)),
                            "changed": .array(e.differences.map(JSONValue.string)),
                            "before": plan(e.before), "after": plan(e.after),
                        ]
                    }),
                ]
            }),
            "not_evaluated": .array(r.notEvaluated.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
                ["reason": .string($0.key), "runs": .integer(Int64($0.value))]
            }),
            "with_unknown_steps": .integer(Int64(r.withUnknownSteps)),
            "drift": .integer(Int64(r.drift)),
        ]
    }

    public static func plan(_ p: RunPlan) -> JSONValue {
        [
            "route": string(p.route),
            "condition": p.condition ?? .null,
            "decision": string(p.decision),
            "outcome": .string(p.outcome),
            "tags": .array(p.tags.map(JSONValue.string)),
            "list_changes": .array(p.listChanges.map {
                ["list": .string($0.list), "value": $0.value, "change": .string($0.added ? "add" : "remove")]
            }),
            "fields": .array(p.fields.map { ["field": .string($0.field), "value": $0.value] }),
            "calls": .array(p.calls.map { call in
                var o: [String: JSONValue] = [
                    "step_uid": .string(call.step), "would_call": .string("\(call.method) \(call.url)"),
                    "body": call.body ?? .null,
                ]
                if let account = call.account { o["account"] = .string(account) }
                return .object(o)
            }),
            "starts": .array(p.starts.map { ["workflow_id": .string($0.workflowId), "parameters": $0.parameters] }),
            "redacts": .bool(p.redacts),
            "failure": string(p.failure),
            "unknown_steps": .array(p.unknownSteps.map(JSONValue.string)),
        ]
    }
}
