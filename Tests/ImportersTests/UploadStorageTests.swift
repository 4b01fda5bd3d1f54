import RunlogTestSupport
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import Testing
@testable import Importers
import WorkflowModel
import Workflows

@Suite("Importers: upload files and sealed credentials")
struct UploadStorageTests {
    /// Chunks that end in an error, as a dropped connection's body does.
    struct BrokenUpload: AsyncSequence, Sendable {
        typealias Element = [UInt8]
        struct Dropped: Error {}
        struct AsyncIterator: AsyncIteratorProtocol {
            var sent = 0
            mutating func next() async throws -> [UInt8]? {
                sent += 1
                guard sent <= 3 else { throw Dropped() }
                return Array((sent == 1 ? "ip,score\n" : "10.0.0.\(sent),\(sent)\n").utf8)
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator() }
    }

    @Test("a failed upload leaves no file: a dropped body, a bad header, a header too large to record")
    func failedUploadsLeaveNothing() async throws {
        try await ImportFixture.with { f throws in
            await #expect(throws: BrokenUpload.Dropped.self) {
                try await f.service.createCSVDataSource(name: "dropped", chunks: BrokenUpload(), actor: "test")
            }
            await #expect(throws: WorkflowError.self) { try await f.upload("a,a\n1,2\n") }
            let wide = String(repeating: "x", count: 1_100_000) + "\n1\n"
            await #expect(throws: WorkflowError.self) { try await f.upload(wide) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: f.path + "/uploads") == [])
            #expect(await f.service.snapshot.dataSources.isEmpty)
        }
    }

    @Test("an upload whose body ends before the bytes announced (a cut connection) is refused, naming Content-Length")
    func truncatedUploadRefused() async throws {
        try await ImportFixture.with { f in
            let body = Array("ip,score\n10.0.0.1,1\n10.0.".utf8)
            do {
                _ = try await f.service.createCSVDataSource(name: "cut", chunks: ChunkList([body]), expectedBytes: 4_096,
                                                            actor: "test")
                Issue.record("a cut upload was accepted")
            } catch let error as WorkflowError {
                #expect(error.issues.first?.field == "Content-Length")
                #expect(error.description.contains("ended after \(body.count) of the 4096 bytes"), "\(error)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: f.path + "/uploads") == [])
            let whole = try await f.service.createCSVDataSource(name: "whole", chunks: ChunkList([body]),
                                                                expectedBytes: body.count, actor: "test")
            #expect(whole.bytes == body.count)
        }
    }

    @Test("S3 credentials kept in clear by an earlier version still read, and are sealed at the next start")
    func clearCredentialsStillReadAndAreSealed() async throws {
        let given = Mutex<[S3Secret]>([])
        try await ImportFixture.with(s3: { _, secret in
            given.withLock { $0.append(secret) }
            return OneObject(text: "ip\n10.0.0.1\n")
        }) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let secret = S3Secret(accessKeyId: "AKID", secretAccessKey: "clear-secret-from-before", sessionToken: "tok")
            let settings = S3Settings(bucket: "b", key: "k.csv", prefix: nil, region: "us-east-1", endpoint: nil)
            let source = try await f.service.createS3DataSource(name: "old", settings: settings, secret: secret, actor: "test")
            let entry = "datasource/\(source.id)"
            let sealed = try #require(try f.store.vaultEntry(entry))
            #expect(!String(decoding: sealed, as: UTF8.self).contains("clear-secret-from-before"))
            // As versions before sealing wrote it.
            let clear: JSONValue = ["accessKeyId": "AKID", "secretAccessKey": "clear-secret-from-before",
                                    "sessionToken": "tok"]
            try await f.store.putVaultEntry(entry, clear.jsonBytes)
            let importer = try await f.service.saveImporter(id: nil, name: "old", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip"]),
                                                            query: ImporterQuery(), actor: "test")
            #expect(try await f.run(importer.id).runsCreated == 1)

            try await f.restart()
            let resealed = try #require(try f.store.vaultEntry(entry))
            #expect(!String(decoding: resealed, as: UTF8.self).contains("clear-secret-from-before"))
            #expect(try JSONValue(parsing: resealed)["sealed"]?.stringValue != nil)
            #expect(try await f.run(importer.id).runsCreated == 1)
            #expect(given.withLock { $0 } == [secret, secret])
        }
    }

    @Test("sealed S3 credentials do not open under another secret key: the run fails saying so")
    func otherKeyCannotOpen() async throws {
        try await ImportFixture.with(s3: { _, _ in OneObject(text: "ip\n10.0.0.1\n") }) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.service.createS3DataSource(
                name: "s", settings: S3Settings(bucket: "b", key: "k.csv", prefix: nil, region: "us-east-1", endpoint: nil),
                secret: S3Secret(accessKeyId: "AKID", secretAccessKey: "s3cr3t"), actor: "test")
            let other = try ImporterService(engine: f.engine, uploads: f.path + "/uploads", secrets: SecretBox.random(),
                                            s3: { _, _ in OneObject(text: "ip\n10.0.0.1\n") })
            let importer = try await other.saveImporter(id: nil, name: "s", dataSourceId: source.id, workflowId: wf,
                                                        mapping: ImporterMapping(columns: ["ip": "ip"]),
                                                        query: ImporterQuery(), actor: "test")
            let started = try await other.startRun(importerId: importer.id, actor: "test")
            await other.waitUntilIdle()
            let run = try #require(await other.snapshot.runs[started.id])
            #expect(run.status == .failed)
            #expect(run.reason?.contains("cannot be decrypted with this server's secret key") == true,
                    "\(run.reason ?? "")")
            #expect(run.reason?.contains("s3cr3t") == false)
        }
    }
}

/// An S3 data source of one object.
struct OneObject: S3ObjectSource {
    let text: String
    func keys() async throws -> [String] { ["k.csv"] }
    func chunks(of key: String) -> ObjectChunks {
        let bytes = Array(text.utf8)
        return AsyncThrowingStream<[UInt8], any Error> { continuation in
            continuation.yield(bytes)
            continuation.finish()
        }
    }
}
