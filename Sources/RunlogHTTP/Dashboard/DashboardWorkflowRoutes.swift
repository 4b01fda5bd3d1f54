import Access
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import RunlogJSON
import ServiceLifecycle
import Synchronization
import WorkflowModel
import Workflows

/// The dashboard's workflow actions: create, save the draft, publish, describe, activate, revert,
/// compare versions, and the rollout (stage, change, promote, end, its arms live). Each form
/// carries the workflow's version as the page showed it (`If-Match` on the API): a change made
/// meanwhile by someone else fails with 412 instead of being overwritten.
extension RunlogAPI {
    func addDashboardWorkflowRoutes(to pages: RouterGroup<Context>) {
        pages.post("workflows") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let workflow = try await engine.createWorkflow(name: try form.required("name"), actor: context.actor)
                return Self.seeOther("/ui/workflows/\(workflow.id)")
            }
        }
        pages.post("workflows/{id}/draft") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let id = try context.parameters.require("id")
                let text = try form.required("definition")
                let definition: JSONValue
                do {
                    definition = try JSONValue(parsing: Array(text.utf8))
                } catch {
                    throw APIError.invalid(field: "definition", value: nil, rule: "must be JSON: \(error)")
                }
                _ = try await engine.saveDraft(workflowId: id, definition: definition,
                                               expectedDraftVersion: try form.int("draft_version"), actor: context.actor)
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        pages.post("workflows/{id}/publish") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let id = try context.parameters.require("id")
                _ = try await engine.publish(workflowId: id, description: form["description"] ?? "",
                                             activate: form["activate"] == "on", actor: context.actor,
                                             ifMatch: try form.version())
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        pages.post("workflows/{id}/versions/{version}/description") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let id = try context.parameters.require("id")
                _ = try await engine.editDescription(workflowId: id, version: try Self.versionParameter(context),
                                                     description: form["description"] ?? "", actor: context.actor,
                                                     ifMatch: try form.version())
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        pages.post("workflows/{id}/versions/{version}/activate") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let id = try context.parameters.require("id")
                _ = try await engine.activate(workflowId: id, version: try Self.versionParameter(context),
                                              actor: context.actor, ifMatch: try form.version())
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        pages.get("workflows/{id}/revert") { request, context in
            try context.require(.admin)
            let workflow = try await self.workflow(context)
            let to = try request.queryInt("to", Int.self, in: 1...Int(Int32.max)) ?? 0
            guard to >= 1, to <= workflow.latestVersion else {
                throw APIError.invalid(field: "to", value: .integer(Int64(to)),
                                       rule: "must be a published version of \(workflow.id) (1 to \(workflow.latestVersion))")
            }
            return DashboardPages.page("Revert \(workflow.name)", context, template: "revert", [
                "id": workflow.id, "to": to, "next": workflow.latestVersion + 1, "version": workflow.streamVersion,
                "active": workflow.active.map { "v\($0)" } ?? "no version", "rollout": workflow.rollout != nil,
                "description": workflow.versions[to - 1].description,
            ])
        }
        pages.post("workflows/{id}/revert") { request, context in
            try await dashboardCommand(request, context, .admin) { form in
                let id = try context.parameters.require("id")
                _ = try await engine.revert(workflowId: id, to: try form.requiredInt("to"), activate: form["activate"] == "on",
                                            actor: context.actor, ifMatch: try form.version())
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        pages.get("workflows/{id}/diff") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            let range = 1...max(1, workflow.latestVersion)
            guard let from = try request.queryInt("from", Int.self, in: range),
                  let to = try request.queryInt("to", Int.self, in: range), workflow.latestVersion >= 1 else {
                throw APIError.badRequest("from and to must be published versions (1 to \(workflow.latestVersion))",
                                          field: "from")
            }
            let lines = DashboardDiff.lines(DashboardPages.pretty(workflow.versions[from - 1].definition),
                                            DashboardPages.pretty(workflow.versions[to - 1].definition))
            return DashboardPages.page("\(workflow.name): v\(from) → v\(to)", context, template: "diff", [
                "id": workflow.id, "from": from, "to": to, "same": lines.allSatisfy { $0.kind == .same },
                "lines": lines.map { ["text": $0.text, "kind": $0.kind.rawValue] },
            ])
        }

        // What the draft (or a version) would have decided for past runs: read-only, so a GET.
        pages.get("workflows/{id}/preview") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            let version = try request.queryInt("version", Int.self, in: 1...Int(Int32.max))
            if let version, version > workflow.latestVersion {
                throw APIError.notFound("workflow \(workflow.id) has no version \(version)")
            }
            let runs = try request.queryInt("runs", Int.self, in: 1...PreviewScope.maxRuns) ?? 1_000
            let candidate: WorkflowDefinition
            let label: String
            if let version {
                candidate = try Self.definition(workflow.versions[version - 1].definition, field: nil)
                label = "v\(version)"
            } else if let draft = workflow.draft {
                candidate = try Self.definition(draft.definition, field: nil)
                label = "The draft (draft \(draft.version))"
            } else {
                throw APIError.notFound("workflow \(workflow.id) has no draft to preview: save one, or choose a version")
            }
            let report = try await oneAtATime {
                try await engine.preview(workflowId: workflow.id, candidate: candidate, label: label,
                                         scope: PreviewScope(runs: runs, examples: 5))
            }
            func describe(_ plan: RunPlan) -> String {
                var parts = [plan.route.map { name in
                    "route \(name)" + (plan.condition.map { " \($0.jsonText)" } ?? "")
                } ?? "no route", plan.outcome]
                if !plan.tags.isEmpty { parts.append("tags " + plan.tags.joined(separator: ", ")) }
                for change in plan.listChanges {
                    parts.append("\(change.added ? "adds" : "removes") \(change.value.jsonText) \(change.added ? "to" : "from") \(change.list)")
                }
                for field in plan.fields { parts.append("sets \(field.field) = \(field.value.jsonText)") }
                for call in plan.calls { parts.append("would call \(call.method) \(call.url)") }
                for start in plan.starts { parts.append("would start \(start.workflowId)") }
                if plan.redacts { parts.append("redacts the object") }
                if let failure = plan.failure { parts.append(failure) }
                return parts.joined(separator: " · ")
            }
            return DashboardPages.page("\(workflow.name): preview", context, template: "preview", [
                "id": workflow.id, "runs": runs, "candidate": label, "total": report.runs, "position": report.position,
                "changed": report.changed, "unchanged": report.unchanged,
                // Mustache shows a section for any number: a count of 0 is left out.
                "not_evaluated_total": Self.nonZero(report.notEvaluated.values.reduce(0, +)),
                "unknown": Self.nonZero(report.withUnknownSteps), "drift": Self.nonZero(report.drift),
                "published": workflow.versions.map { ["number": $0.version, "selected": $0.version == version] },
                "has_cells": !report.cells.isEmpty,
                "cells": report.cells.map { cell in
                    [
                        "before": cell.before, "after": cell.after, "runs": cell.runs,
                        "examples": cell.examples.map { e in
                            ["run_id": e.runId, "position": e.position, "changed": e.differences.joined(separator: ", "),
                             "before": describe(e.before), "after": describe(e.after)] as [String: Any]
                        },
                    ] as [String: Any]
                },
                "not_evaluated": report.notEvaluated.sorted { $0.key < $1.key }.map { ["reason": $0.key, "runs": $0.value] },
            ])
        }

        pages.post("workflows/{id}/rollout") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let id = try context.parameters.require("id")
                let sticky = form["sticky_field"].flatMap { $0.isEmpty ? nil : $0 }
                _ = try await engine.stageRollout(workflowId: id, version: try form.requiredInt("rollout_version"),
                                                  percentage: try form.requiredNumber("percentage"), stickyField: sticky,
                                                  actor: context.actor, ifMatch: try form.version())
                return Self.seeOther("/ui/workflows/\(id)")
            }
        }
        for (action, fixed) in [("percentage", nil), ("promote", 100.0), ("end", 0.0)] as [(String, Double?)] {
            pages.post("workflows/{id}/rollout/\(action)") { request, context in
                try await dashboardCommand(request, context, .write) { form in
                    let id = try context.parameters.require("id")
                    _ = try await engine.setRolloutPercentage(workflowId: id,
                                                              percentage: try fixed ?? form.requiredNumber("percentage"),
                                                              actor: context.actor, ifMatch: try form.version())
                    return Self.seeOther("/ui/workflows/\(id)")
                }
            }
        }
        // The rollout's arms as they change: an event each time the counts move (the page's script
        // shows them), read after each batch of new events in the log.
        pages.get("workflows/{id}/rollout/live") { request, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            _ = try await self.workflow(context)
            let events = store.subscribe(from: try store.head().position + 1, filter: EventFilter()).cancelOnGracefulShutdown()
            let (engine, sessions, keys) = (self.engine, self.sessions, self.keys)
            let body = ResponseBody { writer in
                var last = ""
                func send() async throws {
                    let rollout = await engine.read { state in state.workflows[id]?.rollout }
                    var text = "null"
                    if let rollout {
                        let outcomes = (try? engine.runs.rolloutOutcomes(rollout.id)) ?? [:]
                        let fields: [String: JSONValue] = [
                            "treatment": .integer(Int64(rollout.treatmentRuns)), "control": .integer(Int64(rollout.controlRuns)),
                            "treatment_outcomes": .string(DashboardPages.outcomeText(outcomes["treatment"])),
                            "control_outcomes": .string(DashboardPages.outcomeText(outcomes["control"])),
                        ]
                        text = JSONValue.object(fields).jsonText
                    }
                    guard text != last else { return }
                    last = text
                    try await writer.write(ByteBuffer(string: "event: arms\ndata: \(text)\n\n"))
                }
                try await send()
                // The log is followed by a task of its own that only marks a change; the counts are
                // read at most every `liveInterval`, not once per event of a busy log.
                let mark = ChangeMark()
                let follower = Task {
                    do {
                        for try await _ in events { mark.set() }
                    } catch {}
                    mark.end()
                }
                defer { follower.cancel() }
                while true {
                    try await Task.sleep(for: DashboardRoutes.liveInterval)
                    let (changed, ended) = mark.take()
                    guard DashboardDialect.stillSignedIn(context, sessions, keys) else { break }
                    if changed { try await send() }
                    if ended { break }
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
    }

    /// Runs a dashboard form's command: the role, the CSRF token, then `body`, its domain errors
    /// answered as the API answers them (a page with the status, field and rule).
    func dashboardCommand(_ request: Request, _ context: Context, _ permission: Permission,
                          _ body: (FormFields) async throws -> Answer) async throws -> Answer {
        try context.require(permission)
        let form = try await dashboardForm(request, context)
        do {
            return try await body(form)
        } catch let error as WorkflowError {
            throw APIError(error)
        } catch let error as EventStoreError {
            throw APIError(error)
        }
    }

    static func seeOther(_ location: String) -> Answer {
        Answer(status: .seeOther, headers: [.location: location], body: "")
    }

    /// `n`, or false for 0 (a Mustache section shows for any number, 0 too).
    static func nonZero(_ n: Int) -> Any { n == 0 ? false : n }
}

extension FormFields {
    func required(_ name: String) throws -> String {
        guard let value = self[name], !value.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIError.invalid(field: name, value: nil, rule: "is required")
        }
        return value
    }

    func int(_ name: String) throws -> Int? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard let value = Int(text) else { throw APIError.invalid(field: name, value: .string(text), rule: "must be an integer") }
        return value
    }

    func requiredInt(_ name: String) throws -> Int {
        guard let value = try int(name) else { throw APIError.invalid(field: name, value: nil, rule: "is required") }
        return value
    }

    func requiredNumber(_ name: String) throws -> Double {
        let text = try required(name)
        guard let value = Double(text), value.isFinite else {
            throw APIError.invalid(field: name, value: .string(text), rule: "must be a number")
        }
        return value
    }

    /// The workflow's version the form was made from (`If-Match`).
    func version() throws -> UInt64? {
        guard let text = self["version"], !text.isEmpty else { return nil }
        guard let value = UInt64(text) else {
            throw APIError.invalid(field: "version", value: .string(text), rule: "must be the workflow's version")
        }
        return value
    }
}

/// Whether the log moved since the last look, set by a task that follows it.
final class ChangeMark: Sendable {
    private let state = Mutex((changed: false, ended: false))

    func set() { state.withLock { $0.changed = true } }
    func end() { state.withLock { $0.ended = true } }

    /// Whether it changed since the last call, and whether the following ended.
    func take() -> (changed: Bool, ended: Bool) {
        state.withLock { state in
            defer { state.changed = false }
            return (state.changed, state.ended)
        }
    }
}
