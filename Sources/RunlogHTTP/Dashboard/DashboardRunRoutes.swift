import EventLog
import Foundation
import Hummingbird
import RunlogJSON
import WorkflowModel
import Workflows

/// The dashboard's runs: a workflow's runs filtered as the API filters them (status, arm,
/// version), a page at a time, and a run with its inputs, route, steps and log positions.
extension RunlogAPI {
    func addDashboardRunRoutes(to pages: RouterGroup<Context>) {
        pages.get("workflows/{id}/runs") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            var status: RunRecord.Status?
            if let text = request.query("status"), !text.isEmpty {
                guard let value = RunRecord.Status(rawValue: text) else {
                    throw APIError.badRequest("status must be one of " + RunRecord.Status.allCases.map(\.rawValue)
                        .joined(separator: ", "), field: "status", value: text)
                }
                status = value
            }
            var arm: Arm?
            if let text = request.query("arm"), !text.isEmpty {
                guard let value = Arm(rawValue: text) else {
                    throw APIError.badRequest("arm must be one of treatment, control, none", field: "arm", value: text)
                }
                arm = value
            }
            let versionText = request.query("version") ?? ""
            let version = versionText.isEmpty ? nil : try request.queryInt("version", Int.self, in: 1...Int(Int32.max))
            let source = request.query("source").flatMap { $0.isEmpty ? nil : $0 }
            if let source, !DashboardRoutes.runSources.contains(source) {
                throw APIError.badRequest("source must be one of " + DashboardRoutes.runSources.joined(separator: ", "),
                                          field: "source", value: source)
            }
            let sinceText = request.query("since") ?? ""
            var since: Int64?
            if !sinceText.isEmpty {
                guard let date = DashboardRoutes.minuteFormat.date(from: sinceText) ?? DashboardRoutes.dayFormat.date(from: sinceText)
                else {
                    throw APIError.badRequest("since must be a UTC time written YYYY-MM-DDTHH:MM (or a day, YYYY-MM-DD)",
                                              field: "since", value: sinceText)
                }
                since = Int64(date.timeIntervalSince1970 * 1000)
            }
            let after = request.query("after").flatMap { $0.isEmpty ? nil : $0 }
            let limit = DashboardRoutes.runPage
            let page: [RunRecord]
            do {
                page = try engine.detailed(Array(try await engine.listRuns(of: workflow.id, status: status, arm: arm,
                                                                          version: version, source: source, since: since,
                                                                          after: after, limit: limit + 1)))
            } catch let error as WorkflowError {
                throw APIError(error)
            }
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "status", value: status?.rawValue ?? ""),
                                URLQueryItem(name: "arm", value: arm?.rawValue ?? ""),
                                URLQueryItem(name: "version", value: version.map(String.init) ?? ""),
                                URLQueryItem(name: "source", value: source ?? ""), URLQueryItem(name: "since", value: sinceText)]
            var data: [String: Any] = [
                "id": workflow.id, "name": workflow.name,
                "runs": page.prefix(limit).map(DashboardPages.runRow),
                "statuses": RunRecord.Status.allCases.map { ["value": $0.rawValue, "selected": $0 == status] },
                "arms": [Arm.treatment, .control, .none].map { ["value": $0.rawValue, "selected": $0 == arm] },
                "version_filter": version.map(String.init) as Any, "since": sinceText,
                "sources": DashboardRoutes.runSources.map { ["value": $0, "selected": $0 == source] },
            ]
            if page.count > limit, let last = page.prefix(limit).last {
                query.queryItems?.append(URLQueryItem(name: "after", value: last.id))
                data["next"] = "/ui/workflows/\(workflow.id)/runs?" + (query.percentEncodedQuery ?? "")
            }
            return DashboardPages.page("Runs of \(workflow.name)", context, template: "runs", data)
        }
        pages.get("runs/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let run: RunRecord
            do {
                guard let found = try await engine.run(id) else { throw APIError.notFound("run \(id) does not exist") }
                run = try engine.detailed(found)
            } catch let error as WorkflowError {
                throw APIError(error)
            }
            let events = try store.readStream(Streams.run(id), limit: DashboardRoutes.runEvents)
            return DashboardPages.page("Run \(id)", context, template: "run", DashboardPages.runPage(run, events: events))
        }
    }
}
