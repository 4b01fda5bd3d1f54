import Access
import Foundation
import Hummingbird
import Profiles
import RunlogJSON
import WorkflowModel
import Workflows

/// Launch jobs and tasks (seeds 001 and 003): the jobs with their status, counts and results, the
/// integration accounts with their secrets masked, and a batch task's status by its id.
extension RunlogAPI {
    func addDashboardLaunchRoutes(to pages: RouterGroup<Context>) {
        pages.get("launch") { _, context in
            try context.require(.read)
            let jobs = await engine.jobViews(limit: DashboardRoutes.jobsShown)
            return DashboardPages.page("Launch jobs and tasks", context, template: "launch", [
                "jobs": jobs.map(DashboardPages.jobRow),
                "accounts": (accounts?.all ?? []).map(DashboardPages.accountRow),
                "tasks": tasks != nil,
            ])
        }
        pages.get("jobs/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            guard let view = await engine.jobView(id) else { throw APIError.notFound("job \(id) does not exist") }
            let runs = try await Self.domain { () async throws(WorkflowError) in
                try await engine.jobRuns(id, from: 0, limit: DashboardRoutes.jobResultsShown)
            }
            var data = DashboardPages.jobRow(view)
            data["steps"] = view.record.scheduled.steps.map { step in
                ["uid": step.stepUid, "accounts": step.accounts.joined(separator: ", "),
                 "output_column": step.outputColumn as Any] as [String: Any]
            }
            data["has_steps"] = !view.record.scheduled.steps.isEmpty
            data["results"] = runs.map { run in
                ["index": run.created.source.row ?? 0, "id": run.id, "status": run.status.rawValue,
                 "input": DashboardPages.html(run.created.parameters), "decision": run.decision as Any,
                 "failure": run.failure as Any] as [String: Any]
            }
            data["more"] = view.counts.total > DashboardRoutes.jobResultsShown ? view.counts.total : nil
            return DashboardPages.page("Job \(view.record.scheduled.jobName)", context, template: "job", data)
        }
        if let tasks {
            pages.get("tasks") { request, context in
                try context.require(.read)
                guard let id = request.query("task_id")?.trimmingCharacters(in: .whitespaces), !id.isEmpty else {
                    throw APIError.invalid(field: "task_id", value: nil, rule: "is required")
                }
                let status: JSONValue
                do {
                    status = try await tasks.status(id)
                } catch {
                    throw APIError(.notFound, "not_found", "no task has the id \(id)", field: "task_id", value: id)
                }
                let data = status["data"] ?? [:]
                return DashboardPages.page("Task \(id)", context, template: "task", [
                    "id": id, "status": data["status"]?.stringValue ?? "", "progress": data["progress"]?.intValue ?? 0,
                    "succeeded": data["succeeded"]?.intValue ?? 0, "failed": data["failed"]?.intValue ?? 0,
                    "result": DashboardPages.html(data["result"] ?? .null),
                ])
            }
        }
    }
}
