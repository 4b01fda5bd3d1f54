import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RunlogTestSupport
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

@Suite("HTTP API: importers")
struct ImporterAPITests {
    @Test("upload a CSV, save an importer, dry run, Activate & Run, activity, errored rows, summary, runs")
    func importOverHTTP() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                var csv = "email,amount\r\n"
                for i in 1...30 { csv += i % 10 == 0 ? "user\(i)@example.com,lots\r\n" : "user\(i)@example.com,\(i)\r\n" }
                let uploaded = try await client.call(.post, "/v1/data-sources/csv?name=signups", key: key, body: csv)
                #expect(uploaded.status == .created, "\(uploaded.json)")
                #expect(uploaded.json["columns"] == ["email", "amount"])
                let sourceId = try #require(uploaded.json["id"]?.stringValue)
                #expect(try await client.call(.post, "/v1/data-sources/csv", key: key, body: csv).status == .badRequest)
                #expect(try await client.call(.post, "/v1/data-sources/csv?name=x", key: server.auditor, body: csv).status
                        == .forbidden)

                let bad = try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "signups", "data_source_id": .string(sourceId), "workflow_id": .string(wf),
                    "mapping": ["columns": ["amount": "amount"]],
                ])
                #expect(bad.status == .unprocessableContent)
                #expect(bad.json["error"]?["issues"]?[0]?["rule"] == "required parameter email is not mapped")
                let importer = try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "signups", "data_source_id": .string(sourceId), "workflow_id": .string(wf),
                    "mapping": ["columns": ["email": "email", "amount": "amount"]],
                ])
                #expect(importer.status == .created, "\(importer.json)")
                #expect(importer.json["version"] == 1)
                let importerId = try #require(importer.json["id"]?.stringValue)

                let dry = try await client.call(.post, "/v1/importers/\(importerId)/runs", key: key, json: ["dry_run": true])
                #expect(dry.status == .created)
                let dryDone = try await Self.finished(client, key, try #require(dry.json["id"]?.stringValue))
                #expect(dryDone["progress"]?["runs_to_create"] == 27)
                #expect(dryDone["progress"]?["runs_created"] == 0)
                #expect(try await client.call(.get, "/v1/workflows/\(wf)/runs", key: key).json["runs"]?.arrayValue?.isEmpty == true)

                let started = try await client.call(.post, "/v1/importers/\(importerId)/runs", key: key)
                let runId = try #require(started.json["id"]?.stringValue)
                // The upload's size is the total from the start; bytes read reach it at the end.
                let size = JSONValue.integer(Int64(csv.utf8.count))
                #expect(uploaded.json["bytes"] == size)
                #expect(started.json["progress"]?["bytes_total"] == size, "\(started.json)")
                #expect(started.json["progress"]?["bytes_read"]?.intValue.map { $0 <= csv.utf8.count } == true)
                let done = try await Self.finished(client, key, runId)
                #expect(done["progress"]?["bytes_total"] == size)
                #expect(done["progress"]?["bytes_read"] == size)
                #expect(done["status"] == "completed")
                #expect(done["progress"]?["rows_read"] == 30)
                #expect(done["progress"]?["runs_created"] == 27)
                #expect(done["progress"]?["runs_to_create"] == .null)
                #expect(done["progress"]?["rows_errored"] == 3)
                #expect(done["errors_by_reason"]?[0]?["rows"] == 3)
                #expect(done["errors"]?[0]?["field"] == "amount")
                let activity = try await client.call(.get, "/v1/importers/\(importerId)/runs", key: server.auditor)
                #expect(activity.json["runs"]?.arrayValue?.count == 2)
                let errored = try await client.execute(uri: "/v1/import-runs/\(runId)/errored-rows", method: .get,
                                                       headers: [.authorization: "Bearer \(key)"]) { response in
                    (response.headers[.contentType], String(buffer: response.body))
                }
                #expect(errored.0 == "text/csv; charset=utf-8")
                #expect(errored.1.hasPrefix("email,amount,row,field,value,error\r\nuser10@example.com,lots,10,amount,lots,"))
                let summary = try await client.execute(uri: "/v1/import-runs/\(runId)/summary", method: .get,
                                                       headers: [.authorization: "Bearer \(key)"]) { String(buffer: $0.body) }
                #expect(summary.split(separator: "\r\n").count == 31)
                let runs = try await client.call(.get, "/v1/import-runs/\(runId)/runs?limit=5", key: key)
                #expect(runs.json["runs"]?.arrayValue?.count == 5)
                #expect(runs.json["runs"]?[0]?["row"] == 1)
                #expect(runs.json["next_after_row"] == 5)
                let runLink = try #require(runs.json["runs"]?[0]?["href"]?.stringValue)
                #expect(try await client.call(.get, runLink, key: key).json["source"]?["kind"] == "importer")
                #expect(try await client.call(.post, "/v1/import-runs/\(runId)/cancel", key: key).status == .conflict)
                #expect(try await client.call(.post, "/v1/import-runs/\(runId)/resume", key: key).status == .conflict)
                let rerun = try await client.call(.post, "/v1/import-runs/\(runId)/rerun-errored", key: key)
                #expect(rerun.status == .created)
                #expect(try await client.call(.get, "/v1/import-runs/irun_none", key: key).status == .notFound)
            }
        }
    }

    @Test("S3 data sources keep their credentials out of answers and out of the log")
    func s3Secrets() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let secret = "wJalrXUtnFEMI-secret-value"
                let made = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                    "name": "bucket", "kind": "s3",
                    "s3": ["bucket": "b", "prefix": "exports/", "region": "eu-west-1", "endpoint": "http://127.0.0.1:9"],
                    "credentials": ["access_key_id": "AKID", "secret_access_key": .string(secret)],
                ])
                #expect(made.status == .created, "\(made.json)")
                #expect(!made.json.jsonText.contains(secret))
                #expect(made.json["s3"]?["prefix"] == "exports/")
                let log = try await client.call(.get, "/v1/log?limit=1000", key: server.auditor)
                #expect(!log.json.jsonText.contains(secret))
                let both = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                    "name": "x", "kind": "s3", "s3": ["bucket": "b"],
                    "credentials": ["access_key_id": "a", "secret_access_key": "s"],
                ])
                #expect(both.status == .unprocessableContent)
                let head = try server.store.head().position
                for (s3, field) in [(["bucket": "", "key": "k"] as JSONValue, "s3.bucket"),
                                    (["bucket": "b", "key": "k", "endpoint": "ftp://x/y"], "s3.endpoint")] {
                    let refused = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                        "name": "x", "kind": "s3", "s3": s3, "credentials": ["access_key_id": "a", "secret_access_key": "s"],
                    ])
                    #expect(refused.status == .unprocessableContent)
                    #expect(refused.json["error"]?["field"] == .string(field))
                }
                #expect(try server.store.head().position == head)
            }
        }
    }

    @Test("DELETE a data source: 204 when no importer uses it, 409 while one does, 404 when unknown, 403 for an auditor")
    func deleteDataSource() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                let csv = "email,amount\r\na@example.com,1\r\n"
                let unused = try #require(try await client.call(.post, "/v1/data-sources/csv?name=a", key: key, body: csv)
                    .json["id"]?.stringValue)
                let used = try #require(try await client.call(.post, "/v1/data-sources/csv?name=b", key: key, body: csv)
                    .json["id"]?.stringValue)
                let importer = try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "b", "data_source_id": .string(used), "workflow_id": .string(wf),
                    "mapping": ["columns": ["email": "email", "amount": "amount"]],
                ])
                #expect(importer.status == .created)
                #expect(try await client.call(.delete, "/v1/data-sources/\(unused)", key: server.auditor).status == .forbidden)
                let deleted = try await client.call(.delete, "/v1/data-sources/\(unused)", key: key)
                #expect(deleted.status == .noContent)
                #expect(try await client.call(.get, "/v1/data-sources/\(unused)", key: key).status == .notFound)
                let head = try server.store.head().position
                let refused = try await client.call(.delete, "/v1/data-sources/\(used)", key: key)
                #expect(refused.status == .conflict)
                #expect(refused.json["error"]?["message"]?.stringValue?.contains("used by importer") == true, "\(refused.json)")
                #expect(try await client.call(.delete, "/v1/data-sources/\(unused)", key: key).status == .notFound)
                #expect(try server.store.head().position == head)
                let listed = try await client.call(.get, "/v1/data-sources", key: key)
                #expect(listed.json["data_sources"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [used])
            }
        }
    }

    @Test("an importer run on an S3 endpoint nobody listens on fails within seconds, naming the endpoint and the cause")
    func unreachableS3() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                let endpoint = "http://127.0.0.1:\(try closedPort())"
                let made = try await client.call(.post, "/v1/data-sources", key: key, json: [
                    "name": "down", "kind": "s3", "s3": ["bucket": "b", "prefix": "exports/", "endpoint": .string(endpoint)],
                    "credentials": ["access_key_id": "AKID", "secret_access_key": "secret"],
                ])
                #expect(made.status == .created, "\(made.json)")
                let importer = try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "down", "data_source_id": made.json["id"] ?? .null, "workflow_id": .string(wf),
                    "mapping": ["columns": ["email": "email", "amount": "amount"]],
                ])
                let importerId = try #require(importer.json["id"]?.stringValue, "\(importer.json)")
                let clock = ContinuousClock()
                let start = clock.now
                let started = try await client.call(.post, "/v1/importers/\(importerId)/runs", key: key)
                #expect(started.status == .created)
                let done = try await Self.finished(client, key, try #require(started.json["id"]?.stringValue))
                #expect(clock.now - start < .seconds(15))
                #expect(done["status"] == "failed")
                let reason = done["reason"]?.stringValue ?? ""
                #expect(reason.hasPrefix("cannot connect to S3 endpoint \(endpoint) (connection refused)"), "\(reason)")
            }
        }
    }

    static func finished(_ client: any TestClientProtocol, _ key: String, _ runId: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let run = try await client.call(.get, "/v1/import-runs/\(runId)", key: key).json
            if run["status"] != "running" { return run }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }
}
