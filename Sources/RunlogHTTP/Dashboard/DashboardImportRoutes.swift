import Access
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import Importers
import RunlogJSON
import ServiceLifecycle
import WorkflowModel
import Workflows

/// Data > Imports (seed 000): upload a CSV file (or define an S3 source), make an importer with a
/// mapping form drawn from the workflow's trigger and the file's columns, dry-run and run it, and
/// follow each importer run on its Activity page, live, with its errored rows and summary to
/// download and the runs it created.
extension RunlogAPI {
    func addDashboardImportRoutes(to pages: RouterGroup<Context>, _ importers: ImporterService) {
        pages.get("imports") { _, context in
            try context.require(.read)
            let state = await importers.snapshot
            let workflows = await engine.read { $0.workflows }
            return DashboardPages.page("Data › Imports", context, template: "imports", [
                "sources": state.dataSources.values.sorted { $0.createdAt > $1.createdAt }.map(DashboardPages.sourceRow),
                "importers": state.importers.values.sorted { $0.savedAt > $1.savedAt }.map { importer in
                    DashboardPages.importerRow(importer, workflow: workflows[importer.workflowId]?.name,
                                               source: state.dataSources[importer.dataSourceId]?.name)
                },
                "activity": state.runs.values.sorted { $0.startedAt > $1.startedAt }.prefix(DashboardRoutes.activityRows)
                    .map(DashboardPages.importRunRow),
                "active_workflows": workflows.values.filter { $0.active != nil }.sorted { $0.number < $1.number }
                    .map { ["id": $0.id, "name": $0.name] },
            ])
        }
        // The upload: the file as the body or a form's file part; the CSRF token in X-CSRF-Token (the
        // page's script) or in the query (a form without script).
        pages.post("data-sources/csv") { request, context in
            try context.require(.write)
            let token = request.headers[HTTPField.Name("X-CSRF-Token")!] ?? request.query("csrf")
            guard let session = context.session, let token, DashboardSessions.same(token, session.csrf) else {
                throw APIError(.forbidden, "csrf", "the upload's CSRF token does not match this session: reload the page",
                               field: "csrf")
            }
            // The page's script names the upload (the file's name by default); a form sent without
            // the script cannot, and gets the time of the upload.
            let given = request.query("name") ?? ""
            let name = given.isEmpty ? "upload " + DashboardPages.time(Int64(Date().timeIntervalSince1970 * 1000)) : given
            _ = try await Self.uploadCSV(importers, request, context, name: name)
            return Self.seeOther("/ui/imports")
        }
        pages.post("data-sources/s3") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let settings = S3Settings(bucket: try form.required("bucket"), key: form["key"].flatMap { $0.isEmpty ? nil : $0 },
                                          prefix: form["prefix"].flatMap { $0.isEmpty ? nil : $0 },
                                          region: form["region"].flatMap { $0.isEmpty ? nil : $0 } ?? "us-east-1",
                                          endpoint: form["endpoint"].flatMap { $0.isEmpty ? nil : $0 })
                let secret = S3Secret(accessKeyId: try form.required("access_key_id"),
                                      secretAccessKey: try form.required("secret_access_key"), sessionToken: nil)
                _ = try await importers.createS3DataSource(name: try form.required("name"), settings: settings, secret: secret,
                                                           actor: context.actor)
                return Self.seeOther("/ui/imports")
            }
        }
        // Step two of a new importer: the mapping form for a data source and an active workflow.
        pages.get("importers/new") { request, context in
            try context.require(.write)
            let state = await importers.snapshot
            guard let sourceId = request.query("data_source_id"), let source = state.dataSources[sourceId] else {
                throw APIError.invalid(field: "data_source_id", value: request.query("data_source_id").map(JSONValue.string),
                                       rule: "must name a data source")
            }
            guard let workflowId = request.query("workflow_id"),
                  let workflow = await engine.read({ $0.workflows[workflowId] }), let active = workflow.active else {
                throw APIError.invalid(field: "workflow_id", value: request.query("workflow_id").map(JSONValue.string),
                                       rule: "must name a workflow with an active version")
            }
            let definition = try? WorkflowDefinition(json: workflow.versions[active - 1].definition)
            return DashboardPages.page("New importer", context, template: "importer_new",
                                       DashboardPages.mappingForm(source: source, workflow: workflow, definition: definition,
                                                                  name: request.query("name") ?? ""))
        }
        pages.post("importers") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let mapping: JSONValue
                if let text = form["mapping_json"], !text.isEmpty {
                    mapping = try Self.formJSON(text, field: "mapping_json")
                } else {
                    var columns: [String: JSONValue] = [:]
                    var index = 0
                    while let column = form["column_\(index)"] {
                        if let target = form["target_\(index)"], !target.isEmpty { columns[column] = .string(target) }
                        index += 1
                    }
                    mapping = ["columns": .object(columns)]
                }
                let queryText = form["query"] ?? ""
                let query = queryText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                    ? nil : try Self.formJSON(queryText, field: "query")
                let importer = try await importers.saveImporter(
                    id: nil, name: try form.required("name"), dataSourceId: try form.required("data_source_id"),
                    workflowId: try form.required("workflow_id"), mapping: try ImporterMapping(json: mapping),
                    query: try ImporterQuery(json: query), actor: context.actor)
                return Self.seeOther("/ui/importers/\(importer.id)")
            }
        }
        pages.get("importers/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let state = await importers.snapshot
            guard let importer = state.importers[id] else { throw APIError.notFound("importer \(id) does not exist") }
            let workflow = await engine.read { $0.workflows[importer.workflowId]?.name }
            var data = DashboardPages.importerRow(importer, workflow: workflow,
                                                  source: state.dataSources[importer.dataSourceId]?.name)
            data["mapping"] = DashboardPages.html(importer.mapping.json)
            data["query"] = DashboardPages.html(importer.query.json)
            data["activity"] = state.runs.values.filter { $0.importerId == id }.sorted { $0.startedAt > $1.startedAt }
                .map(DashboardPages.importRunRow)
            return DashboardPages.page("Importer \(importer.name)", context, template: "importer", data)
        }
        pages.post("importers/{id}/runs") { request, context in
            try await dashboardCommand(request, context, .write) { form in
                let run = try await importers.startRun(importerId: try context.parameters.require("id"),
                                                       dryRun: form["dry_run"] == "true", actor: context.actor)
                return Self.seeOther("/ui/import-runs/\(run.id)")
            }
        }
        pages.get("import-runs/{id}") { _, context in
            try context.require(.read)
            let run = try await Self.importRunRecord(importers, context)
            var data = DashboardPages.importRunPage(run)
            if !run.dryRun {
                // The first runs created only: an import of a million rows has a million runs.
                let created = (try? await importers.createdRuns(run.id, limit: DashboardRoutes.createdRunsShown)) ?? []
                data["created"] = created.map { run in
                    ["row": run.created.source.row ?? 0, "id": run.id, "status": run.status.rawValue] as [String: Any]
                }
                data["more_created"] = run.runsCreated > created.count ? run.runsCreated : nil
            }
            return DashboardPages.page("Importer run \(run.id)", context, template: "import_run", data)
        }
        pages.get("import-runs/{id}/live") { _, context in
            try context.require(.read)
            let id = try await Self.importRunRecord(importers, context).id
            let events = store.subscribe(from: try store.head().position + 1, filter: EventFilter()).cancelOnGracefulShutdown()
            let body = ResponseBody { writer in
                var last = ""
                var iterator = events.makeAsyncIterator()
                while let run = await Self.importRun(importers, id) {
                    let text = DashboardPages.progressJSON(run)
                    if text != last {
                        last = text
                        try await writer.write(ByteBuffer(string: "event: progress\ndata: \(text)\n\n"))
                    }
                    guard run.status == .running, try await iterator.next() != nil,
                          DashboardDialect.stillSignedIn(context, sessions, keys) else { break }
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        pages.get("import-runs/{id}/errored-rows") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            return Self.csvFile(try await Self.domain { () async throws(WorkflowError) in try await importers.erroredRowsCSV(id) },
                                name: "\(id)-errored-rows.csv")
        }
        pages.get("import-runs/{id}/summary") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            return Self.csvFile(try await Self.domain { () async throws(WorkflowError) in try await importers.summaryCSV(id) },
                                name: "\(id)-summary.csv")
        }
    }

    static func importRun(_ importers: ImporterService, _ id: String) async -> ImportRunRecord? {
        await importers.snapshot.runs[id]
    }

    static func csvFile(_ csv: String, name: String) -> Answer {
        Answer(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                      .contentDisposition: "attachment; filename=\"\(name)\""], body: csv)
    }

    static func formJSON(_ text: String, field: String) throws -> JSONValue {
        do {
            return try JSONValue(parsing: Array(text.utf8))
        } catch {
            throw APIError.invalid(field: field, value: nil, rule: "must be JSON: \(error)")
        }
    }
}
