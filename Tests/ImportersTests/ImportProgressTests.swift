import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Testing
@testable import Importers
import WorkflowModel
import Workflows

@Suite("Importers: progress in bytes, the terminal bar, deleting data sources")
struct ImportProgressTests {
    @Test("the bar: percent, bytes of the total, rows, rows/s, errors and ETA, within the width")
    func barLine() {
        let half = ImportProgressBar.line(bytesRead: 1_572_864, bytesTotal: 3_145_728, rows: 12_000, errors: 3,
                                          elapsed: 3, width: 100)
        // The bar takes the width the text leaves (at most 40 columns): 31 here.
        #expect(half == "[===============>               ]  50% 1.5/3.0 MiB · 12000 rows · 4000 rows/s · "
                + "3 errors · ETA 0:03")
        #expect(half.count <= 99)
        let done = ImportProgressBar.line(bytesRead: 2048, bytesTotal: 2048, rows: 10, errors: 1, elapsed: 2, width: 80)
        #expect(done.hasPrefix("[" + String(repeating: "=", count: done.count - done.drop { $0 != "]" }.count - 1) + "] 100% "))
        #expect(done.hasSuffix("2.0/2.0 KiB · 10 rows · 5 rows/s · 1 error · ETA 0:00"))
        #expect(done.count <= 79)
        // Nothing read yet: no ETA to give.
        let start = ImportProgressBar.line(bytesRead: 0, bytesTotal: 500, rows: 0, errors: 0, elapsed: 0, width: 80)
        #expect(start.hasSuffix("  0% 0/500 B · 0 rows · 0 rows/s · 0 errors · ETA --:--"), "\(start)")
        #expect(start.hasPrefix("[>"))
        // An hour and more to go.
        let slow = ImportProgressBar.line(bytesRead: 1, bytesTotal: 10_000, rows: 1, errors: 0, elapsed: 1, width: 120)
        #expect(slow.hasSuffix("ETA 2:46:39"), "\(slow)")
        // A narrow terminal: no bar, and the text cut to fit.
        let narrow = ImportProgressBar.line(bytesRead: 50, bytesTotal: 100, rows: 5, errors: 0, elapsed: 1, width: 30)
        #expect(!narrow.hasPrefix("[") && narrow.count == 29, "\(narrow)")
        // Without a total: rows, rows/s and errors only.
        let unknown = ImportProgressBar.line(bytesRead: 10, bytesTotal: nil, rows: 7, errors: 2, elapsed: 0.5, width: 80)
        #expect(unknown == "7 rows · 14 rows/s · 2 errors")
    }

    @Test("the upload's bar: percent, bytes of the file, bytes/s and ETA")
    func uploadLine() {
        let line = ImportProgressBar.uploadLine(bytesSent: 1 << 20, bytesTotal: 4 << 20, elapsed: 2, width: 100)
        #expect(line.hasSuffix("]  25% 1.0/4.0 MiB · uploading · 512.0 KiB/s · ETA 0:06"), "\(line)")
        #expect(line.hasPrefix("[==========>" + String(repeating: " ", count: 29) + "]") && line.count <= 99, "\(line)")
        let done = ImportProgressBar.uploadLine(bytesSent: 300, bytesTotal: 300, elapsed: 1, width: 80)
        #expect(done.hasSuffix("] 100% 300/300 B · uploading · 300 B/s · ETA 0:00"), "\(done)")
    }

    @Test("an importer run reports the source's size at the start and bytes read with each checkpoint")
    func bytesProgress() async throws {
        try await ImportFixture.with(batchSize: 50) { fixture in
            let wf = try await fixture.activeWorkflow(apiWorkflow)
            var csv = "ip,score\n"
            for i in 1...1_000 { csv += "10.0.\(i / 256).\(i % 256),\(i)\n" }
            let source = try await fixture.upload(csv)
            let importer = try await fixture.service.saveImporter(
                id: nil, name: "b", dataSourceId: source.id, workflowId: wf,
                mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]), query: ImporterQuery(), actor: "test")
            let started = try await fixture.service.startRun(importerId: importer.id, actor: "test")
            #expect(started.bytesTotal == csv.utf8.count)
            let run = try await fixture.finished(started.id)
            #expect(run.status == .completed)
            #expect(run.bytesRead == csv.utf8.count)
            #expect(run.bytesTotal == csv.utf8.count)
            // Each checkpoint carries the bytes read so far: growing, never past the size.
            let checkpoints = try fixture.store.readAll(filter: EventFilter(types: [ImporterEvent.rowsProcessed]), limit: .max)
                .compactMap { try? JSONValue(parsing: $0.payload) }.filter { $0["importerRunId"] == .string(started.id) }
            let read = checkpoints.compactMap { $0["bytesRead"]?.intValue }
            #expect(read.count == checkpoints.count && read.count >= 20)
            #expect(read == read.sorted() && read.allSatisfy { $0 > 0 && $0 <= csv.utf8.count })
            #expect(checkpoints.allSatisfy { $0["bytesTotal"]?.intValue == csv.utf8.count })

            // An S3 source whose sizes are known from the listing: the total is their sum.
            try await ImportFixture.with(s3: { _, _ in SizedObjects(objects: ["a.csv": "ip\n1.1.1.1\n", "b.csv": "ip\n2.2.2.2\n"]) }) { sized in
                let wf2 = try await sized.activeWorkflow(apiWorkflow)
                let s3 = try await sized.service.createS3DataSource(
                    name: "s3", settings: S3Settings(bucket: "b", key: nil, prefix: "", region: "us-east-1", endpoint: nil),
                    secret: S3Secret(accessKeyId: "a", secretAccessKey: "s"), actor: "test")
                let s3Importer = try await sized.service.saveImporter(
                    id: nil, name: "s3", dataSourceId: s3.id, workflowId: wf2, mapping: ImporterMapping(columns: ["ip": "ip"]),
                    query: ImporterQuery(), actor: "test")
                let s3Started = try await sized.service.startRun(importerId: s3Importer.id, actor: "test")
                #expect(s3Started.bytesTotal == nil)
                let s3Run = try await sized.finished(s3Started.id)
                #expect(s3Run.status == .completed, "\(s3Run.reason ?? "")")
                #expect(s3Run.bytesTotal == 22 && s3Run.bytesRead == 22)
            }
        }
    }

    @Test("a data source no importer uses is deleted with its file; one in use, or unknown, is refused and kept")
    func deleteDataSource() async throws {
        try await ImportFixture.with { fixture in
            let wf = try await fixture.activeWorkflow(apiWorkflow)
            let unused = try await fixture.upload("ip\n1.1.1.1\n")
            let used = try await fixture.upload("ip\n2.2.2.2\n")
            let importer = try await fixture.service.saveImporter(
                id: nil, name: "u", dataSourceId: used.id, workflowId: wf, mapping: ImporterMapping(columns: ["ip": "ip"]),
                query: ImporterQuery(), actor: "test")
            let uploads = fixture.path + "/uploads/"
            #expect(FileManager.default.fileExists(atPath: uploads + unused.file!))

            try await fixture.service.deleteDataSource(unused.id, actor: "test")
            #expect(await fixture.service.snapshot.dataSources[unused.id] == nil)
            #expect(!FileManager.default.fileExists(atPath: uploads + unused.file!))

            let head = try fixture.store.head().position
            let inUse = await #expect(throws: WorkflowError.self) {
                try await fixture.service.deleteDataSource(used.id, actor: "test")
            }
            #expect(inUse?.code == .conflict)
            #expect(inUse?.message.contains(importer.id) == true, "\(inUse?.message ?? "")")
            let unknown = await #expect(throws: WorkflowError.self) {
                try await fixture.service.deleteDataSource(unused.id, actor: "test")
            }
            #expect(unknown?.code == .notFound)
            #expect(try fixture.store.head().position == head)
            #expect(FileManager.default.fileExists(atPath: uploads + used.file!))

            // After a restart (the state rebuilt from the log) the deleted one stays deleted.
            try await fixture.restart()
            #expect(await fixture.service.snapshot.dataSources[unused.id] == nil)
            #expect(await fixture.service.snapshot.dataSources[used.id] != nil)
        }
    }
}

/// An S3 data source whose objects' sizes are known, as from a listing.
struct SizedObjects: S3ObjectSource {
    let objects: [String: String]
    func keys() async throws -> [String] { objects.keys.sorted() }
    func objects() async throws -> [S3SourceObject] {
        objects.keys.sorted().map { S3SourceObject(key: $0, size: objects[$0]!.utf8.count) }
    }
    func chunks(of key: String) -> ObjectChunks {
        let bytes = Array(objects[key]!.utf8)
        return AsyncThrowingStream<[UInt8], any Error> { continuation in
            continuation.yield(bytes)
            continuation.finish()
        }
    }
}
