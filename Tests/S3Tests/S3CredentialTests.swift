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

/// S3 credentials at rest: sealed with the server's key, yet they sign requests moto accepts.
@Suite("S3 credentials at rest", .serialized)
struct S3CredentialTests {
    @Test("credentials are sealed in data.mdb and still read from moto; a clear entry from before is sealed at start")
    func sealedCredentialsRead() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try moto.client()
        try await client.createBucket("sealed")
        try await client.putObject(bucket: "sealed", key: "rows.csv", body: Array("ip,n\n1.1.1.1,1\n2.2.2.2,2\n".utf8))

        let path = TemporaryDirectory.uniquePath("runlog-s3seal")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let box = SecretBox.random()
        var store = try LMDBEventStore(directory: path)
        var engine = try await WorkflowEngine(store: store)
        await engine.start()
        var service = try ImporterService(engine: engine, uploads: path + "/uploads", secrets: box)
        await service.start()
        let wf = try await engine.createWorkflow(name: "s3", actor: "test")
        _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: S3ImportTests.definition),
                                       expectedDraftVersion: nil, actor: "test")
        _ = try await engine.publish(workflowId: wf.id, description: "v1", activate: true, actor: "test")
        let secretKey = moto.credentials.secretAccessKey
        let settings = S3Settings(bucket: "sealed", key: "rows.csv", prefix: nil, region: "us-east-1",
                                  endpoint: moto.endpoint)
        let source = try await service.createS3DataSource(
            name: "s3", settings: settings,
            secret: S3Secret(accessKeyId: moto.credentials.accessKeyId, secretAccessKey: secretKey), actor: "test")
        let importer = try await service.saveImporter(id: nil, name: "s3", dataSourceId: source.id, workflowId: wf.id,
                                                      mapping: ImporterMapping(columns: ["ip": "ip", "n": "n"]),
                                                      query: ImporterQuery(), actor: "test")
        func importRows(_ service: ImporterService) async throws -> ImportRunRecord {
            let started = try await service.startRun(importerId: importer.id, actor: "test")
            await service.waitUntilIdle()
            return try #require(await service.snapshot.runs[started.id])
        }
        let first = try await importRows(service)
        #expect(first.status == .completed, "\(first.reason ?? "")")
        #expect(first.runsCreated == 2)
        func fileHoldsSecret() throws -> Bool {
            try Data(contentsOf: URL(fileURLWithPath: path + "/data.mdb")).range(of: Data(secretKey.utf8)) != nil
        }
        #expect(try !fileHoldsSecret())

        // A vault entry in clear, as versions before sealing wrote it: still read, then sealed.
        let clear: JSONValue = ["accessKeyId": .string(moto.credentials.accessKeyId),
                                "secretAccessKey": .string(secretKey)]
        try await store.putVaultEntry("datasource/\(source.id)", clear.jsonBytes)
        let second = try await importRows(service)
        #expect(second.status == .completed, "\(second.reason ?? "")")
        await service.shutdown()
        await engine.shutdown()
        store.close()

        store = try LMDBEventStore(directory: path)
        engine = try await WorkflowEngine(store: store)
        await engine.start()
        service = try ImporterService(engine: engine, uploads: path + "/uploads", secrets: box)
        await service.start()
        let entry = try #require(try store.vaultEntry("datasource/\(source.id)"))
        #expect(!String(decoding: entry, as: UTF8.self).contains(secretKey))
        let third = try await importRows(service)
        #expect(third.status == .completed, "\(third.reason ?? "")")
        await service.shutdown()
        await engine.shutdown()
        store.close()
    }
}
