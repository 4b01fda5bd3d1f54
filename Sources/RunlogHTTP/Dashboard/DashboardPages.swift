import Access
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import Importers
import Mustache
import RunlogJSON
import WorkflowModel
import Workflows

/// The dashboard's pages: Mustache templates compiled into the binary (DashboardTemplates.swift),
/// rendered with dictionaries the routes build from the engine's and the log's state.
enum DashboardPages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in DashboardTemplates.all {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("the dashboard template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    static let htmlHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]

    static func render(_ template: String, _ data: [String: Any]) -> String {
        library.render(present(data) ?? [:], withTemplate: template) ?? ""
    }

    /// `value` without its nil members, optionals unwrapped: Mustache renders a nil kept in `Any`
    /// as the text "nil" and counts it as a value in sections.
    static func present(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else { return nil }
            return present(wrapped)
        }
        if let dictionary = value as? [String: Any] { return dictionary.compactMapValues(present) }
        if let array = value as? [Any] { return array.compactMap(present) }
        return value
    }

    /// A page of the signed-in dashboard: `template` rendered with `data`, in the layout (navigation,
    /// the signed-in key, the sign-out form).
    static func page(_ title: String, _ context: RunlogRequestContext, template: String, _ data: [String: Any],
                     status: HTTPResponse.Status = .ok) -> Answer {
        var data = data
        let role = context.key?.role
        data["csrf"] = context.session?.csrf ?? ""
        data["can_write"] = role?.allows(.write) ?? false
        data["is_admin"] = role?.allows(.admin) ?? false
        let layout: [String: Any] = [
            "title": title, "content": render(template, data), "csrf": context.session?.csrf ?? "",
            "key_name": context.key.map { $0.name.isEmpty ? $0.id : $0.name } ?? "", "role": role?.rawValue ?? "",
            "is_admin": role?.allows(.admin) ?? false,
        ]
        return Answer(status: status, headers: htmlHeaders, body: render("layout", layout))
    }

    static func signIn(message: String?, status: HTTPResponse.Status = .ok) -> Answer {
        Answer(status: status, headers: htmlHeaders, body: render("signin", ["title": "Sign in", "message": message as Any]))
    }

    static func errorPage(_ error: APIError) -> Answer {
        var headers = htmlHeaders
        for field in error.headers where field.name != .contentType { headers[field.name] = field.value }
        let body = render("error", ["title": "\(error.status.code) \(error.status.reasonPhrase)", "status": error.status.code, "reason": error.status.reasonPhrase, "code": error.code,
                                    "message": error.message, "field": error.field as Any])
        return Answer(status: error.status, headers: headers, body: body)
    }

    static func time(_ ms: Int64?) -> String {
        ms.map { JSONText.timestamp(milliseconds: $0) } ?? ""
    }

    static func workflowRow(_ w: WorkflowRecord) -> [String: Any] {
        [
            "id": w.id, "name": w.name, "number": w.number,
            "status": w.active != nil ? "active" : (w.versions.isEmpty ? "draft" : "inactive"),
            "active": w.active.map { "v\($0)" } ?? "—", "latest": w.latestVersion,
            "rollout": w.rollout.map { "v\($0.treatmentVersion) at \(formatted($0.percentage))% (\($0.status.rawValue))" } ?? "—",
        ]
    }

    /// What a new draft starts from: a trigger and one route that approves.
    static let starterDefinition: JSONValue = [
        "trigger": ["kind": "api", "schema": ["fields": [["name": "amount", "type": "number", "required": true]]]],
        "routes": [["name": "all", "steps": [["step_uid": "approve-1", "type": "approve"]]]],
    ]

    static func workflowPage(_ w: WorkflowRecord) -> [String: Any] {
        let editing = w.draft?.definition ?? w.active.map { w.versions[$0 - 1].definition } ?? starterDefinition
        var data: [String: Any] = [
            "id": w.id, "name": w.name, "created": time(w.createdAt), "created_by": w.createdBy as Any,
            "version": w.streamVersion, "draft_text": pretty(editing), "draft_version": w.draft?.version ?? 0,
            "publishable": w.draft != nil && w.publishedDraftVersion != w.draft?.version,
            "has_versions": !w.versions.isEmpty, "rollout_free": w.rollout == nil,
            "published": w.versions.reversed().map { ["number": $0.version] },
            "versions": w.versions.reversed().map { v in
                [
                    "number": v.version, "status": w.status(of: v.version), "description": v.description,
                    "published_at": time(v.publishedAt), "published_by": v.publishedBy as Any,
                    "reverted_from": v.revertedFrom.map { "reverted from v\($0)" } as Any,
                    "activatable": w.active != v.version && w.rollout == nil,
                ] as [String: Any]
            },
        ]
        if let active = w.active { data["active"] = ["number": active, "definition": html(w.versions[active - 1].definition)] }
        if let draft = w.draft {
            data["draft"] = ["number": draft.version, "saved_at": time(draft.savedAt), "definition": html(draft.definition)]
        }
        if let rollout = w.rollout {
            data["rollout"] = [
                "treatment": rollout.treatmentVersion, "control": rollout.controlVersion,
                "percentage": formatted(rollout.percentage), "status": rollout.status.rawValue,
                "sticky_field": rollout.stickyField as Any,
                "treatment_runs": rollout.treatmentRuns, "control_runs": rollout.controlRuns,
            ] as [String: Any]
        }
        return data
    }

    /// An arm's ended runs by outcome, as shares: "approved 60% (12) · declined 40% (8)".
    static func outcomeText(_ outcomes: [String: Int]?) -> String {
        guard let outcomes, !outcomes.isEmpty else { return "no run ended yet" }
        let total = outcomes.values.reduce(0, +)
        return outcomes.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { outcome, runs in
            "\(outcome) \(Int((Double(runs) * 100 / Double(total)).rounded()))% (\(runs))"
        }.joined(separator: " · ")
    }

    static func runRow(_ r: RunRecord) -> [String: Any] {
        [
            "id": r.id, "status": r.status.rawValue, "arm": r.created.arm.rawValue, "version": r.created.version,
            "source": r.created.source.kind, "route": (r.routeDecided ? r.route : nil) as Any,
            "decision": r.decision as Any, "created": time(r.createdAt),
        ]
    }

    static func runPage(_ r: RunRecord, events: [RecordedEvent]) -> [String: Any] {
        let c = r.created
        var source = c.source.kind
        if let reference = c.source.reference { source += " " + reference }
        if let row = c.source.row { source += ", row \(row)" }
        return [
            "id": r.id, "workflow_id": c.workflowId, "status": r.status.rawValue, "version": c.version,
            "arm": c.arm.rawValue, "source": source, "queue": c.queue.rawValue, "created": time(r.createdAt),
            "finished": r.finishedAt.map(time) as Any, "route": (r.routeDecided ? r.route : nil) as Any,
            "decision": r.decision as Any, "failure": r.failure as Any, "parameters": html(c.parameters),
            "object": c.objectToken.map { "\(c.objectType ?? "") \($0)" } as Any,
            "created_position": r.createdPosition,
            "steps": r.steps.map { s in
                [
                    "uid": s.uid, "type": s.type, "status": s.status.rawValue, "attempts": s.attempts,
                    "started": time(s.startedAt), "duration": s.finishedAt.map { "\($0 - s.startedAt) ms" } as Any,
                    "output": s.output.map(html) as Any, "error": s.error as Any,
                ] as [String: Any]
            },
            "events": events.map(eventRow),
        ]
    }

    static func sourceRow(_ d: DataSourceRecord) -> [String: Any?] {
        var location: String?
        if let s3 = d.s3 { location = "s3://\(s3.bucket)/" + (s3.key ?? s3.prefix ?? "") }
        return [
            "id": d.id, "name": d.name, "kind": d.kind.rawValue, "columns": d.header?.joined(separator: ", "),
            "bytes": d.bytes, "created": time(d.createdAt), "location": location,
        ]
    }

    static func importerRow(_ i: ImporterRecord, workflow: String?, source: String?) -> [String: Any] {
        ["id": i.id, "name": i.name, "workflow_id": i.workflowId, "workflow": workflow ?? i.workflowId, "version": i.version,
         "source_id": i.dataSourceId, "source": source ?? i.dataSourceId, "saved": time(i.savedAt), "revision": i.revision]
    }

    static func importRunRow(_ r: ImportRunRecord) -> [String: Any?] {
        [
            "id": r.id, "importer_id": r.importerId, "status": r.status.rawValue, "dry_run": r.dryRun,
            "running": r.status == .running,
            "started": time(r.startedAt), "finished": r.finishedAt.map(time), "rows_read": r.rowsRead,
            "runs_created": r.runsCreated, "rows_errored": r.rowsErrored, "rows_skipped": r.rowsSkipped,
            "reason": r.reason,
        ]
    }

    static func importRunPage(_ r: ImportRunRecord) -> [String: Any] {
        var data = (importRunRow(r).compactMapValues { $0 })
        data["version"] = r.version
        data["workflow_id"] = r.workflowId
        data["running"] = r.status == .running
        data["runs_label"] = r.dryRun ? "Runs it would create" : "Runs created"
        data["by_reason"] = r.errorsByReason.map { ["error": $0.error, "rows": $0.count] as [String: Any] }
        data["errors"] = r.errors.prefix(100).map { e in
            ["row": e.row, "line": e.line, "field": e.field, "value": e.value, "error": e.error] as [String: Any]
        }
        data["progress"] = progressJSON(r)
        data["percent"] = r.bytesTotal.map { $0 > 0 ? min(100, r.bytesRead * 100 / $0) : 100 } ?? (r.status == .running ? 0 : 100)
        return data
    }

    /// What an importer run's Activity page shows live (`import-runs/{id}/live`).
    static func progressJSON(_ r: ImportRunRecord) -> String {
        let percent = r.bytesTotal.map { $0 > 0 ? min(100, r.bytesRead * 100 / $0) : 100 } ?? (r.status == .running ? 0 : 100)
        let fields: [String: JSONValue] = [
            "status": .string(r.status.rawValue), "rows_read": .integer(Int64(r.rowsRead)),
            "runs_created": .integer(Int64(r.runsCreated)), "rows_errored": .integer(Int64(r.rowsErrored)),
            "rows_skipped": .integer(Int64(r.rowsSkipped)), "percent": .integer(Int64(percent)),
        ]
        return JSONValue.object(fields).jsonText
    }

    /// The new importer's form: for an API-triggered workflow, one "→ parameter" choice per column
    /// of the file (a column named as a parameter chosen for it); for an action or event trigger,
    /// the mapping as JSON, started with the token column.
    static func mappingForm(source: DataSourceRecord, workflow: WorkflowRecord, definition: WorkflowDefinition?,
                            name: String) -> [String: Any] {
        let columns = source.header ?? []
        var data: [String: Any] = [
            "name": name.isEmpty ? "\(source.name) → \(workflow.name)" : name, "data_source_id": source.id,
            "source": source.name, "workflow_id": workflow.id, "workflow": workflow.name, "active": workflow.active ?? 0,
        ]
        switch definition?.trigger {
        case .api(let schema, _):
            let targets = mappingTargets(schema.fields)
            data["api"] = true
            data["rows"] = columns.enumerated().map { index, column in
                [
                    "index": index, "column": column,
                    "targets": targets.map { ["path": $0.path, "label": $0.label, "selected": $0.path == column] as [String: Any] },
                ] as [String: Any]
            }
            data["parameters"] = targets.map { $0.label }.joined(separator: ", ")
        case .action(let objectType, _):
            data["kind"] = "an action on \(objectType)"
            data["mapping_json"] = pretty(["token_column": .string(columns.first ?? ""), "columns": [:]])
        case .event(let eventType, _):
            data["kind"] = "the event \(eventType)"
            data["mapping_json"] = pretty(["token_column": .string(columns.first ?? ""), "object_type": ""])
        case nil:
            data["mapping_json"] = pretty(["columns": [:]])
        }
        return data
    }

    /// The parameters a column can be mapped to: every field, an object's by the dotted paths of its
    /// terminal fields.
    static func mappingTargets(_ fields: [ParameterSchema.Field], prefix: String = "") -> [(path: String, label: String)] {
        fields.flatMap { field -> [(path: String, label: String)] in
            let path = prefix + field.name
            if case .object(let nested) = field.type { return mappingTargets(nested, prefix: path + ".") }
            return [(path, path + " (" + field.type.name + (field.required ? ", required" : "") + ")")]
        }
    }

    static func jobRow(_ v: JobView) -> [String: Any] {
        let s = v.record.scheduled
        return [
            "id": s.jobId, "name": s.jobName, "project": s.projectId, "workflow_id": s.workflowId, "version": s.version,
            "status": v.status.rawValue, "created": time(v.record.createdAt), "total": v.counts.total,
            "completed": v.counts.completed, "failed": v.counts.failed, "cancelled": v.counts.cancelled,
            "pending": v.counts.queued + v.counts.running,
        ]
    }

    /// An integration account, its secrets shown only as present (they are sealed at rest and
    /// never leave the server).
    static func accountRow(_ a: AccountRecord) -> [String: Any?] {
        var secrets: [String] = []
        if a.apiKey != nil { secrets.append("API key ••••") }
        if a.password != nil { secrets.append("password ••••") }
        if !a.cookies.isEmpty { secrets.append("cookies " + a.cookies.keys.sorted().map { "\($0) ••••" }.joined(separator: ", ")) }
        return ["uid": a.uid, "project": a.projectId, "integration": a.integrationUid, "name": a.name,
                "username": a.username, "secrets": secrets.isEmpty ? "none" : secrets.joined(separator: "; "),
                "updated": time(a.updatedAt)]
    }

    static func eventRow(_ e: RecordedEvent) -> [String: Any] {
        ["position": e.position, "time": time(e.recordedAt), "stream": e.stream, "type": e.type,
         "actor": e.metadata.actor ?? ""]
    }

    static func keysPage(_ keys: [APIKeyRecord], created: (text: String, key: APIKeyRecord?)?) -> [String: Any] {
        var data: [String: Any] = [
            "keys": keys.sorted { $0.createdAt > $1.createdAt }.map { k in
                ["id": k.id, "name": k.name, "role": k.role.rawValue, "created": time(k.createdAt),
                 "revoked": time(k.revokedAt), "live": k.revokedAt == nil] as [String: Any]
            },
        ]
        if let created {
            data["created"] = ["text": created.text, "id": created.key?.id ?? "", "role": created.key?.role.rawValue ?? ""]
        }
        return data
    }

    static func formatted(_ number: Double) -> String {
        number == number.rounded() ? String(Int64(number)) : String(number)
    }

    /// A JSON value as nested HTML lists, every text escaped: a definition read as a structure.
    static func html(_ value: JSONValue) -> String {
        switch value {
        case .object(let members):
            guard !members.isEmpty else { return "<span class=\"empty\">{}</span>" }
            return "<dl>" + members.sorted { $0.key < $1.key }.map { key, value in
                "<dt>\(escape(key))</dt><dd>\(html(value))</dd>"
            }.joined() + "</dl>"
        case .array(let items):
            guard !items.isEmpty else { return "<span class=\"empty\">none</span>" }
            return "<ol>" + items.map { "<li>\(html($0))</li>" }.joined() + "</ol>"
        case .string(let text): return "<span class=\"text\">\(escape(text))</span>"
        case .null: return "<span class=\"empty\">null</span>"
        default: return "<span class=\"scalar\">\(escape(value.jsonText))</span>"
        }
    }

    /// A JSON value as indented text (members sorted by name), for the draft editor and diffs.
    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .object(let members):
            guard !members.isEmpty else { return "{}" }
            return "{\n" + members.sorted { $0.key < $1.key }.map { key, value in
                inner + JSONValue.string(key).jsonText + ": " + pretty(value, indent: inner)
            }.joined(separator: ",\n") + "\n" + indent + "}"
        case .array(let items):
            guard !items.isEmpty else { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        default:
            return value.jsonText
        }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
