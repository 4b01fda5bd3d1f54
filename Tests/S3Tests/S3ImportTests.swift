import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Importers
import RunlogTestSupport
import S3
import Testing
import WorkflowModel
import Workflows

/// Importers reading S3 data sources from moto on loopback (signatures checked).
@Suite("Importers reading S3", .serialized)
struct S3ImportTests {
    static let definition = #"""
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true},
                                                          {"name": "n", "type": "integer", "required": true}]}},
         "routes": [{"name": "a", "steps": [{"step_uid": "a", "type": "approve"}]}]}
        """#

    @Test("an importer reads one S3 key, and every key under a prefix, creating one run per row")
    func importFromS3() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try moto.client()
        let bucket = "imports"
        try await client.createBucket(bucket)
        try await client.putObject(bucket: bucket, key: "single.csv", body: Array("ip,n\n1.1.1.1,1\n2.2.2.2,2\n".utf8))
        // Prefixes without "/": moto recomputes signatures over a decoded "%2F" and refuses
        // correctly signed listings of such prefixes (see S3ClientTests).
        for part in 1...3 {
            var text = "ip,n\n"
            for i in 1...100 { text += "10.0.\(part).\(i),\(part * 1000 + i)\n" }
            try await client.putObject(bucket: bucket, key: "daily-part-\(part).csv", body: Array(text.utf8))
        }

        let path = TemporaryDirectory.uniquePath("runlog-s3imp")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try LMDBEventStore(directory: path)
        let engine = try await WorkflowEngine(store: store)
        await engine.start()
        let service = try ImporterService(engine: engine, uploads: path + "/uploads", secrets: SecretBox.random())
        await service.start()
        try await Teardown { await service.shutdown(); await engine.shutdown(); store.close() }.closing { _ in
            let wf = try await engine.createWorkflow(name: "s3", actor: "test")
            _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: Self.definition),
                                           expectedDraftVersion: nil, actor: "test")
            _ = try await engine.publish(workflowId: wf.id, description: "v1", activate: true, actor: "test")
            let secret = S3Secret(accessKeyId: moto.credentials.accessKeyId, secretAccessKey: moto.credentials.secretAccessKey)
            let mapping = ImporterMapping(columns: ["ip": "ip", "n": "n"])

            for (settings, rows) in [
                (S3Settings(bucket: bucket, key: "single.csv", prefix: nil, region: "us-east-1", endpoint: moto.endpoint), 2),
                (S3Settings(bucket: bucket, key: nil, prefix: "daily-", region: "us-east-1", endpoint: moto.endpoint), 300),
            ] {
                let source = try await service.createS3DataSource(name: "s3", settings: settings, secret: secret, actor: "test")
                let importer = try await service.saveImporter(id: nil, name: "s3", dataSourceId: source.id, workflowId: wf.id,
                                                              mapping: mapping, query: ImporterQuery(), actor: "test")
                let started = try await service.startRun(importerId: importer.id, actor: "test")
                await service.waitUntilIdle()
                let run = try #require(await service.snapshot.runs[started.id])
                #expect(run.status == .completed, "\(run.reason ?? "")")
                #expect(run.runsCreated == rows)
                // The size from HEAD (one key) or the listing (a prefix), and all of it read.
                let objects = try await client.listObjects(bucket: bucket, prefix: settings.key ?? settings.prefix ?? "")
                #expect(run.bytesTotal == objects.reduce(0) { $0 + $1.size })
                #expect(run.bytesRead == run.bytesTotal)
                let created = try await service.createdRuns(started.id)
                #expect(Set(created.compactMap(\.created.source.row)) == Set(1...rows))
            }

            // A wrong secret: the run fails with S3's error, naming it.
            let wrong = S3Secret(accessKeyId: moto.credentials.accessKeyId, secretAccessKey: "not-the-secret")
            let bad = try await service.createS3DataSource(
                name: "bad", settings: S3Settings(bucket: bucket, key: "single.csv", prefix: nil, region: "us-east-1",
                                                  endpoint: moto.endpoint), secret: wrong, actor: "test")
            let importer = try await service.saveImporter(id: nil, name: "bad", dataSourceId: bad.id, workflowId: wf.id,
                                                          mapping: mapping, query: ImporterQuery(), actor: "test")
            let started = try await service.startRun(importerId: importer.id, actor: "test")
            await service.waitUntilIdle()
            let failed = try #require(await service.snapshot.runs[started.id])
            #expect(failed.status == .failed)
            #expect(failed.reason?.contains("SignatureDoesNotMatch") == true, "\(failed.reason ?? "")")
        }
    }
}
