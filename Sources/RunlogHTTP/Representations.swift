public import RunlogJSON
public import Access
import EventLog
public import WorkflowModel
public import Workflows

/// The JSON of each resource, in snake_case, timestamps as RFC 3339 UTC.
public enum Representation {
    public static func time(_ ms: Int64?) -> JSONValue {
        ms.map { .string(JSONText.timestamp(milliseconds: $0)) } ?? .null
    }

    public static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    public static func int(_ value: Int?) -> JSONValue { value.map { .integer(Int64($0)) } ?? .null }

    public static func workflow(_ w: WorkflowRecord) -> JSONValue {
        [
            "id": .string(w.id), "name": .string(w.name), "number": .integer(Int64(w.number)),
            "created_at": time(w.createdAt), "created_by": string(w.createdBy),
            "stream_version": .integer(Int64(w.streamVersion)),
            "active_version": int(w.active), "latest_version": .integer(Int64(w.latestVersion)),
            "draft_version": int(w.draft?.version),
            "rollout": w.rollout.map(rollout) ?? .null,
        ]
    }

    /// A draft, with a warning for each condition path known only at run time (object and event
    /// data, lists, a batch task's roots): saved, but not checked against the trigger.
    public static func draft(_ workflowId: String, _ d: Draft) -> JSONValue {
        let warnings = (try? WorkflowDefinition(json: d.definition).checkConditionPaths()) ?? []
        return ["workflow_id": .string(workflowId), "version": .integer(Int64(d.version)), "definition": d.definition,
                "saved_at": time(d.savedAt), "saved_by": string(d.savedBy),
                "warnings": .array(warnings.map { ["field": .string($0.field), "message": .string($0.rule)] })]
    }

    public static func version(_ w: WorkflowRecord, _ v: VersionRecord, definition: Bool) -> JSONValue {
        var json: [String: JSONValue] = [
            "workflow_id": .string(w.id), "version": .integer(Int64(v.version)), "status": .string(w.status(of: v.version)),
            "description": .string(v.description), "published_at": time(v.publishedAt),
            "published_by": string(v.publishedBy), "reverted_from": int(v.revertedFrom),
            "description_edited_at": time(v.descriptionEditedAt), "activated_at": time(v.activatedAt),
        ]
        if definition { json["definition"] = v.definition }
        return .object(json)
    }

    public static func rollout(_ r: RolloutRecord) -> JSONValue {
        [
            "id": .string(r.id), "treatment_version": .integer(Int64(r.treatmentVersion)),
            "control_version": .integer(Int64(r.controlVersion)), "percentage": .number(r.percentage),
            "sticky_field": string(r.stickyField), "staged_at": time(r.stagedAt), "staged_by": string(r.stagedBy),
            "status": .string(r.status.rawValue), "finished_at": time(r.finishedAt),
            "arms": ["treatment": .integer(Int64(r.treatmentRuns)), "control": .integer(Int64(r.controlRuns))],
            "history": .array(r.history.map { change in
                ["percentage": .number(change.percentage), "at": time(change.at), "by": string(change.by)]
            }),
        ]
    }

    public static func run(_ r: RunRecord) -> JSONValue {
        let c = r.created
        var source: [String: JSONValue] = ["kind": .string(c.source.kind)]
        if let reference = c.source.reference { source["reference"] = .string(reference) }
        if let row = c.source.row { source["row"] = .integer(Int64(row)) }
        var object: JSONValue = .null
        if let type = c.objectType, let token = c.objectToken { object = ["type": .string(type), "token": .string(token)] }
        return [
            "id": .string(r.id), "workflow_id": .string(c.workflowId), "version": .integer(Int64(c.version)),
            "arm": .string(c.arm.rawValue), "rollout_id": string(c.rolloutId), "source": .object(source),
            "parameters": c.parameters, "object": object, "event_type": string(c.eventType),
            "queue": .string(c.queue.rawValue), "status": .string(r.status.rawValue),
            "route": r.routeDecided ? string(r.route) : .null, "route_decided": .bool(r.routeDecided),
            "decision": string(r.decision), "failure": string(r.failure),
            "created_at": time(r.createdAt), "finished_at": time(r.finishedAt),
            "steps": .array(r.steps.map(step)),
        ]
    }

    public static func step(_ s: StepRecord) -> JSONValue {
        [
            "step_uid": .string(s.uid), "type": .string(s.type), "status": .string(s.status.rawValue),
            "attempts": .integer(Int64(s.attempts)), "idempotency_key": string(s.idempotencyKey),
            "output": s.output ?? .null, "error": string(s.error),
            "started_at": time(s.startedAt), "finished_at": time(s.finishedAt),
        ]
    }

    public static func object(_ o: ObjectView) -> JSONValue {
        [
            "type": .string(o.type), "token": .string(o.token), "data": o.data ?? .null,
            "tags": .array(o.tags.map(JSONValue.string)), "decision": string(o.decision), "redacted": .bool(o.redacted),
            "events": .array(o.events.map { e in
                ["event_id": .string(e.eventId), "type": .string(e.type), "occurred_at": time(e.occurredAt),
                 "data": e.data ?? .null]
            }),
        ]
    }

    public static func quota(_ q: QuotaStatus) -> JSONValue {
        ["day": .string(q.day), "used": .integer(Int64(q.used)), "limit": int(q.limit),
         "remaining": q.limit.map { .integer(Int64(max(0, $0 - q.used))) } ?? .null, "resets_at": time(q.resetsAt)]
    }

    public static func key(_ k: APIKeyRecord) -> JSONValue {
        ["id": .string(k.id), "role": .string(k.role.rawValue), "name": .string(k.name),
         "created_at": time(k.createdAt), "created_by": string(k.createdBy), "revoked_at": time(k.revokedAt)]
    }
}
