import EventLog
import Foundation
import HTTPTypes
import Hummingbird
public import RunlogJSON
public import Importers
import WorkflowModel
import Workflows

/// Data sources, importers and importer runs (seed 000).
extension RunlogAPI {
    /// Uploaded CSV files may be larger than JSON bodies: up to this many bytes.
    static let uploadLimit = 4 << 30

    func addImporterRoutes(to router: RouterGroup<Context>, _ importers: ImporterService) {
        router.post("data-sources/csv") { request, context in
            try context.require(.write)
            guard let name = request.query("name") else {
                throw APIError.badRequest("name the data source: ?name=…", field: "name")
            }
            let source = try await Self.uploadCSV(importers, request, context, name: name)
            return Answer(Self.dataSource(source), status: .created, headers: [.location: "/v1/data-sources/\(source.id)"])
        }
        router.post("data-sources") { request, context in
            try await command(request, context, .write, allowed: ["name", "kind", "s3", "credentials"]) { body in
                let kind = try body.requiredString("kind")
                guard kind == "s3" else {
                    throw APIError.invalid(field: "kind", value: .string(kind),
                                           rule: "must be s3 (upload CSV files to POST /v1/data-sources/csv)")
                }
                let s3 = try BodyFields(body.value("s3") ?? [:], allowed: ["bucket", "key", "prefix", "region", "endpoint"])
                let credentials = try Self.maskingSecrets {
                    try BodyFields(body.value("credentials") ?? [:],
                                   allowed: ["access_key_id", "secret_access_key", "session_token"])
                }
                let settings = S3Settings(bucket: try s3.requiredString("bucket"), key: try s3.string("key"),
                                          prefix: try s3.string("prefix"), region: try s3.string("region") ?? "us-east-1",
                                          endpoint: try s3.string("endpoint"))
                let secret = try Self.maskingSecrets {
                    S3Secret(accessKeyId: try credentials.requiredString("access_key_id"),
                             secretAccessKey: try credentials.requiredString("secret_access_key"),
                             sessionToken: try credentials.string("session_token"))
                }
                let source = try await importers.createS3DataSource(name: try body.requiredString("name"), settings: settings,
                                                                    secret: secret, actor: context.actor)
                return Answer(Self.dataSource(source), status: .created, headers: [.location: "/v1/data-sources/\(source.id)"])
            }
        }
        router.get("data-sources") { _, context in
            try context.require(.read)
            let sources = await importers.snapshot.dataSources.values.sorted { $0.createdAt < $1.createdAt }
            return Answer(["data_sources": .array(sources.map(Self.dataSource))])
        }
        router.get("data-sources/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            guard let source = await importers.snapshot.dataSources[id] else {
                throw APIError.notFound("data source \(id) does not exist")
            }
            return Answer(Self.dataSource(source))
        }

        router.delete("data-sources/{id}") { request, context in
            try await command(request, context, .write, allowed: []) { _ in
                try await importers.deleteDataSource(try context.parameters.require("id"), actor: context.actor)
                return Answer(status: .noContent, body: "")
            }
        }

        let importerFields: Set<String> = ["name", "data_source_id", "workflow_id", "mapping", "query"]
        router.post("importers") { request, context in
            try await command(request, context, .write, allowed: importerFields) { body in
                let importer = try await Self.saveImporter(importers, id: nil, body, context)
                return Answer(Self.importer(importer), status: .created, headers: [.location: "/v1/importers/\(importer.id)"])
            }
        }
        router.put("importers/{id}") { request, context in
            try await command(request, context, .write, allowed: importerFields) { body in
                Answer(Self.importer(try await Self.saveImporter(importers, id: try context.parameters.require("id"), body,
                                                                 context)))
            }
        }
        router.get("importers") { _, context in
            try context.require(.read)
            let list = await importers.snapshot.importers.values.sorted { $0.savedAt < $1.savedAt }
            return Answer(["importers": .array(list.map(Self.importer))])
        }
        router.get("importers/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            guard let importer = await importers.snapshot.importers[id] else {
                throw APIError.notFound("importer \(id) does not exist")
            }
            return Answer(Self.importer(importer))
        }
        router.post("importers/{id}/runs") { request, context in
            try await command(request, context, .write, allowed: ["dry_run"]) { body in
                let run = try await importers.startRun(importerId: try context.parameters.require("id"),
                                                       dryRun: try body.bool("dry_run") ?? false, actor: context.actor)
                return Answer(Self.importRun(run), status: .created, headers: [.location: "/v1/import-runs/\(run.id)"])
            }
        }
        router.get("importers/{id}/runs") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let state = await importers.snapshot
            guard state.importers[id] != nil else { throw APIError.notFound("importer \(id) does not exist") }
            let runs = state.runs.values.filter { $0.importerId == id }.sorted { $0.startedAt > $1.startedAt }
            return Answer(["runs": .array(runs.map(Self.importRun))])
        }

        router.get("import-runs/{id}") { _, context in
            try context.require(.read)
            return Answer(Self.importRun(try await Self.importRunRecord(importers, context)))
        }
        router.post("import-runs/{id}/cancel") { request, context in
            try await command(request, context, .write, allowed: []) { _ in
                Answer(Self.importRun(try await importers.cancel(try context.parameters.require("id"), actor: context.actor)))
            }
        }
        router.post("import-runs/{id}/resume") { request, context in
            try await command(request, context, .write, allowed: []) { _ in
                Answer(Self.importRun(try await importers.resume(try context.parameters.require("id"), actor: context.actor)))
            }
        }
        router.post("import-runs/{id}/rerun-errored") { request, context in
            try await command(request, context, .write, allowed: []) { _ in
                let run = try await importers.rerunErrored(try context.parameters.require("id"), actor: context.actor)
                return Answer(Self.importRun(run), status: .created, headers: [.location: "/v1/import-runs/\(run.id)"])
            }
        }
        router.get("import-runs/{id}/errored-rows") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let csv = try await Self.domain { () async throws(WorkflowError) in try await importers.erroredRowsCSV(id) }
            return Answer(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                 .contentDisposition: "attachment; filename=\"\(id)-errored-rows.csv\""],
                          body: csv)
        }
        router.get("import-runs/{id}/summary") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let csv = try await Self.domain { () async throws(WorkflowError) in try await importers.summaryCSV(id) }
            return Answer(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                 .contentDisposition: "attachment; filename=\"\(id)-summary.csv\""],
                          body: csv)
        }
        router.get("import-runs/{id}/runs") { request, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            let limit = try request.queryInt("limit", Int.self, in: 1...1000) ?? 100
            let after = try request.queryInt("after_row", Int.self, in: 0...Int.max) ?? 0
            let runs = try await Self.domain { () async throws(WorkflowError) in try await importers.createdRuns(id) }
            let page = runs.filter { ($0.created.source.row ?? 0) > after }.prefix(limit + 1)
            let shown = page.prefix(limit)
            let items: [JSONValue] = shown.map { run in
                ["row": .integer(Int64(run.created.source.row ?? 0)), "run_id": .string(run.id),
                 "status": .string(run.status.rawValue), "href": .string("/v1/runs/\(run.id)")]
            }
            let next: JSONValue = page.count > limit ? .integer(Int64(shown.last?.created.source.row ?? 0)) : .null
            return Answer(["runs": .array(items), "next_after_row": next])
        }
    }

    /// Stores the request's CSV file as a data source named `name`: the file as the body (text/csv,
    /// octet-stream, …), or as the file part of a form (the API's upload and the dashboard's).
    static func uploadCSV(_ importers: ImporterService, _ request: Request, _ context: Context,
                          name: String) async throws -> DataSourceRecord {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.uploadLimit {
            throw APIError(.contentTooLarge, "body_too_large", "the upload is larger than the limit of \(Self.uploadLimit) bytes")
        }
        let chunks = request.body.map { Array($0.readableBytesView) }
        let length = request.headers[.contentLength].flatMap(Int.init)
        do {
            if let boundary = try MultipartFileReader.boundary(contentType: request.headers[.contentType]) {
                // A form that ends early ends before its closing boundary: the reader refuses it.
                return try await importers.createCSVDataSource(
                    name: name, chunks: MultipartFileChunks(base: chunks, boundary: boundary), actor: context.actor)
            }
            return try await importers.createCSVDataSource(name: name, chunks: chunks, expectedBytes: length,
                                                           actor: context.actor)
        } catch let error as WorkflowError {
            throw APIError(error)
        } catch let error as UploadIOError {
            throw Self.uploadFailed(error)
        } catch let error as MultipartError {
            throw error.apiError
        }
    }

    /// Reads the `credentials` of an S3 data source: an error names the field as
    /// `credentials.<name>` and shows no value (a misspelled field may hold the secret).
    static func maskingSecrets<T>(_ read: () throws -> T) throws -> T {
        do {
            return try read()
        } catch var error as APIError {
            let field = error.field.map { "credentials." + $0 }
            let shown = error.value != nil || error.issues.contains { $0.value != nil }
            let note = shown ? " (the value is not shown)" : ""
            let rules = error.issues.map { $0.rule + note }
            error.field = field
            error.value = nil
            error.issues = rules.map { FieldIssue(field: field ?? "credentials", value: nil, rule: $0) }
            if let field, let rule = rules.first { error.message = "\(field) \(rule)" }
            throw error
        }
    }

    /// 507 when the disk holding the uploads is full (or the quota on it is used up), 503 for any
    /// other failure to write the file; nothing of the upload is kept either way.
    static func uploadFailed(_ error: UploadIOError) -> APIError {
        if error.isDiskFull {
            let status = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
            return APIError(status, "insufficient_storage",
                            "the upload was not stored: the server's disk for uploads is full (\(error)); nothing "
                            + "of it was kept. Free space on the server, or upload a smaller file, then try again")
        }
        return APIError(.serviceUnavailable, "storage",
                        "the upload was not stored: writing it to the server's disk failed (\(error)); nothing "
                        + "of it was kept. Try again later")
    }

    /// Runs a domain call, answering its error in the API's shape.
    static func domain<T>(_ make: () async throws(WorkflowError) -> T) async throws -> T {
        do {
            return try await make()
        } catch {
            throw APIError(error)
        }
    }

    static func importRunRecord(_ importers: ImporterService, _ context: Context) async throws -> ImportRunRecord {
        let id = try context.parameters.require("id")
        guard let run = await importers.snapshot.runs[id] else { throw APIError.notFound("importer run \(id) does not exist") }
        return run
    }

    static func saveImporter(_ importers: ImporterService, id: String?, _ body: BodyFields,
                             _ context: Context) async throws -> ImporterRecord {
        let mapping = try ImporterMapping(json: body.value("mapping"))
        let query = try ImporterQuery(json: body.value("query"))
        return try await importers.saveImporter(
            id: id, name: try body.requiredString("name"), dataSourceId: try body.requiredString("data_source_id"),
            workflowId: try body.requiredString("workflow_id"), mapping: mapping, query: query, actor: context.actor)
    }

    // MARK: Representations

    public static func dataSource(_ s: DataSourceRecord) -> JSONValue {
        var json: [String: JSONValue] = [
            "id": .string(s.id), "name": .string(s.name), "kind": .string(s.kind.rawValue),
            "created_at": Representation.time(s.createdAt), "created_by": Representation.string(s.createdBy),
        ]
        if let header = s.header { json["columns"] = .array(header.map(JSONValue.string)) }
        if let bytes = s.bytes { json["bytes"] = .integer(Int64(bytes)) }
        if let sha = s.sha256 { json["sha256"] = .string(sha) }
        if let s3 = s.s3 {
            json["s3"] = ["bucket": .string(s3.bucket), "key": Representation.string(s3.key),
                          "prefix": Representation.string(s3.prefix), "region": .string(s3.region),
                          "endpoint": Representation.string(s3.endpoint)]
        }
        return .object(json)
    }

    public static func importer(_ i: ImporterRecord) -> JSONValue {
        ["id": .string(i.id), "name": .string(i.name), "data_source_id": .string(i.dataSourceId),
         "workflow_id": .string(i.workflowId), "version": .integer(Int64(i.version)), "mapping": i.mapping.json,
         "query": i.query.json, "revision": .integer(Int64(i.revision)), "saved_at": Representation.time(i.savedAt),
         "saved_by": Representation.string(i.savedBy)]
    }

    public static func importRun(_ r: ImportRunRecord) -> JSONValue {
        [
            "id": .string(r.id), "importer_id": .string(r.importerId), "workflow_id": .string(r.workflowId),
            "version": .integer(Int64(r.version)), "dry_run": .bool(r.dryRun), "status": .string(r.status.rawValue),
            "reason": Representation.string(r.reason), "started_at": Representation.time(r.startedAt),
            "started_by": Representation.string(r.startedBy), "finished_at": Representation.time(r.finishedAt),
            "rerun_of": Representation.string(r.rerunOf),
            "progress": [
                // A dry run creates nothing: what it counts is the runs a real run would create.
                "rows_read": .integer(Int64(r.rowsRead)), "runs_created": .integer(r.dryRun ? 0 : Int64(r.runsCreated)),
                "runs_to_create": r.dryRun ? .integer(Int64(r.runsCreated)) : .null,
                "rows_skipped": .integer(Int64(r.rowsSkipped)), "rows_errored": .integer(Int64(r.rowsErrored)),
                "last_row": .integer(Int64(r.lastRow)), "rows_left": Representation.int(r.rowsLeft),
                "bytes_read": .integer(Int64(r.bytesRead)), "bytes_total": Representation.int(r.bytesTotal),
            ],
            "errors_by_reason": .array(r.errorsByReason.map { ["error": .string($0.error), "rows": .integer(Int64($0.count))] }),
            "errors": .array(r.errors.prefix(100).map { e in
                ["row": .integer(Int64(e.row)), "line": .integer(Int64(e.line)), "field": .string(e.field),
                 "value": .string(e.value), "error": .string(e.error)]
            }),
            "links": ["errored_rows": .string("/v1/import-runs/\(r.id)/errored-rows"),
                      "summary": .string("/v1/import-runs/\(r.id)/summary"), "runs": .string("/v1/import-runs/\(r.id)/runs")],
        ]
    }
}
