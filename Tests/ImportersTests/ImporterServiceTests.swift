import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import Testing
@testable import Importers
import WorkflowModel
import Workflows

@Suite("Importer runs")
struct ImporterServiceTests {
    /// `rows` rows of `ip,score`; every `badEvery`-th row has a score that is not an integer.
    static func csv(rows: Int, badEvery: Int = 0) -> String {
        var text = "ip,score\n"
        for i in 1...rows {
            let bad = badEvery > 0 && i % badEvery == 0
            text += "10.0.\(i / 256).\(i % 256),\(bad ? "high" : String(i))\n"
        }
        return text
    }

    @Test("an importer run started under a request mark does not carry it: its batches write no mark")
    func importerRunClearsRequestMark() async throws {
        try await ImportFixture.with(batchSize: 10) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 2_000, badEvery: 0))
            let importer = try await f.service.saveImporter(
                id: nil, name: "ips", dataSourceId: source.id, workflowId: wf,
                mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]), query: ImporterQuery(), actor: "test")
            let mark = RequestMark(name: "idem/k/start", value: Array("mark".utf8))
            let started = try await RequestMark.$current.withValue(mark) {
                try await f.service.startRun(importerId: importer.id, actor: "test")
            }
            // The command's own append wrote the mark; the record then goes (as the sweep deletes it).
            #expect(try f.store.requestRecord("idem/k/start") == Array("mark".utf8))
            try await f.store.deleteRequestRecords(["idem/k/start"])
            let run = try await f.finished(started.id)
            #expect(run.status == .completed && run.runsCreated == 2_000)
            #expect(try f.store.requestRecord("idem/k/start") == nil)
        }
    }

    @Test("one run per valid row through the batch queue; errored rows with field, value and error; activity counts")
    func apiImport() async throws {
        try await ImportFixture.with(batchSize: 1_000) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 2_500, badEvery: 100))
            #expect(source.header == ["ip", "score"])
            let importer = try await f.service.saveImporter(
                id: nil, name: "ips", dataSourceId: source.id, workflowId: wf,
                mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]), query: ImporterQuery(), actor: "test")
            #expect(importer.version == 1)
            let run = try await f.run(importer.id)
            #expect(run.status == .completed, "\(run.reason ?? "")")
            #expect(run.rowsRead == 2_500)
            #expect(run.runsCreated == 2_475)
            #expect(run.rowsErrored == 25)
            #expect(run.errors.first?.row == 100)
            #expect(run.errors.first?.field == "score")
            #expect(run.errors.first?.value == "high")
            #expect(run.errors.first?.error == "score must be an integer such as 123")
            #expect(run.errorsByReason.first?.count == 25)
            // Exactly one run per valid row, each linked to its importer run and row, on the batch queue.
            let runs = try await f.service.createdRuns(run.id)
            #expect(runs.count == 2_475)
            #expect(Set(runs.compactMap(\.created.source.row)) == Set((1...2_500).filter { $0 % 100 != 0 }))
            #expect(runs.allSatisfy { $0.created.queue == .batch && $0.created.source.kind == "importer" })
            #expect(try runs.first.map(f.engine.detailed)?.created.parameters == ["ip": "10.0.0.1", "score": 1])
            #expect(await f.engine.waitUntilIdle())
            #expect(await f.engine.snapshot.lists["ips"]?.count == 2_475)
        }
    }

    @Test("errored rows download as CSV, and once fixed they import")
    func erroredRoundTrip() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload("ip,score\n1.1.1.1,5\n2.2.2.2,x\n\"3.3.3.3\",7.5\n4.4.4.4\n")
            let mapping = ImporterMapping(columns: ["ip": "ip", "score": "score"])
            let importer = try await f.service.saveImporter(id: nil, name: "a", dataSourceId: source.id, workflowId: wf,
                                                            mapping: mapping, query: ImporterQuery(), actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.runsCreated == 1)
            #expect(run.errors.map(\.row) == [2, 3, 4])
            #expect(run.errors[2].error == "the row has 1 fields; the header has 2")
            let errored = try await f.service.erroredRowsCSV(run.id)
            #expect(errored == "ip,score,row,field,value,error\r\n2.2.2.2,x,2,score,x,score must be an integer such as 123\r\n"
                    + "3.3.3.3,7.5,3,score,7.5,score must be an integer such as 123\r\n"
                    + "4.4.4.4,,4,,,the row has 1 fields; the header has 2\r\n")
            // Fix the scores and import the file again: the extra columns are simply not mapped.
            let fixed = errored.replacingOccurrences(of: "2.2.2.2,x,", with: "2.2.2.2,2,")
                .replacingOccurrences(of: "3.3.3.3,7.5,", with: "3.3.3.3,7,").replacingOccurrences(of: "4.4.4.4,,", with: "4.4.4.4,4,")
            let again = try await f.upload(fixed, name: "fixed.csv")
            let second = try await f.service.saveImporter(id: importer.id, name: "a", dataSourceId: again.id, workflowId: wf,
                                                          mapping: mapping, query: ImporterQuery(), actor: "test")
            #expect(second.revision == 2)
            let rerun = try await f.run(second.id)
            #expect(rerun.runsCreated == 3)
            #expect(rerun.rowsErrored == 0)
            let summary = try await f.service.summaryCSV(rerun.id)
            #expect(summary.hasPrefix("row,outcome,run_id,run_status,error\r\n1,created,run_"))
        }
    }

    @Test("dry run validates every row and creates nothing")
    func dryRun() async throws {
        try await ImportFixture.with(batchSize: 50) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 120, badEvery: 10))
            let importer = try await f.service.saveImporter(id: nil, name: "d", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]),
                                                            query: ImporterQuery(), actor: "test")
            let head = try f.store.head().position
            let run = try await f.run(importer.id, dryRun: true)
            #expect(run.status == .completed)
            #expect(run.dryRun)
            #expect(run.runsCreated == 108)
            #expect(run.rowsErrored == 12)
            #expect(try f.engine.runs.count() == 0)
            let types = Set(try f.store.readAll(from: head + 1, limit: 1_000).map(\.type))
            #expect(types == [ImporterEvent.runStarted, ImporterEvent.rowsProcessed, ImporterEvent.runFinished])
        }
    }

    @Test("a version published after saving makes the run fail until the importer is saved again")
    func versionPin() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 3))
            let mapping = ImporterMapping(columns: ["ip": "ip"])
            let importer = try await f.service.saveImporter(id: nil, name: "p", dataSourceId: source.id, workflowId: wf,
                                                            mapping: mapping, query: ImporterQuery(), actor: "test")
            _ = try await f.engine.saveDraft(workflowId: wf, definition: try JSONValue(parsing: apiWorkflow),
                                             expectedDraftVersion: nil, actor: "test")
            _ = try await f.engine.publish(workflowId: wf, description: "v2", actor: "test")
            do throws(WorkflowError) {
                _ = try await f.service.startRun(importerId: importer.id, actor: "test")
                Issue.record("expected the version pin error")
            } catch {
                #expect(error.code == .conflict)
                #expect(error.message.contains("version 2 was published since; save the importer again"))
            }
            let resaved = try await f.service.saveImporter(id: importer.id, name: "p", dataSourceId: source.id, workflowId: wf,
                                                           mapping: mapping, query: ImporterQuery(), actor: "test")
            #expect(resaved.version == 2)
            #expect(try await f.run(importer.id).runsCreated == 3)
            // Only active workflows, and a mapping that fits.
            _ = try await f.engine.deactivate(workflowId: wf, actor: "test")
            await #expect(throws: WorkflowError.self) {
                try await f.service.saveImporter(id: nil, name: "q", dataSourceId: source.id, workflowId: wf,
                                                 mapping: mapping, query: ImporterQuery(), actor: "test")
            }
        }
    }

    @Test("saving names every mapping problem: unmapped required parameter, unknown parameter, missing column")
    func saveValidation() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload("ip,score\n1,2\n")
            do throws(WorkflowError) {
                _ = try await f.service.saveImporter(id: nil, name: "v", dataSourceId: source.id, workflowId: wf,
                                                     mapping: ImporterMapping(columns: ["score": "nope", "other": "score"]),
                                                     query: ImporterQuery(), actor: "test")
                Issue.record("expected invalid")
            } catch {
                #expect(error.code == .invalid)
                #expect(Set(error.issues.map(\.field)) == ["mapping.columns.score", "mapping.columns", "mapping.columns.other"])
            }
            await #expect(throws: WorkflowError.self) { try await f.upload("") }
            await #expect(throws: WorkflowError.self) { try await f.upload("a,a\n1,2\n") }
            // Header only: the run reads no rows.
            let headerOnly = try await f.upload("ip,score\n")
            let importer = try await f.service.saveImporter(id: nil, name: "h", dataSourceId: headerOnly.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip"]),
                                                            query: ImporterQuery(), actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.status == .completed)
            #expect(run.rowsRead == 0)
        }
    }

    @Test("the query box filters rows and adds computed columns before mapping")
    func queryBox() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload("host,net,country\n1,10.0.0,DE\n2,10.0.0,US\n3,10.9.9,FR\n")
            let query = try ImporterQuery(json: [
                "condition": ["country": ["$in": ["DE", "FR"]]],
                "computed_columns": [["name": "address", "template": "{net}.{host}"]],
            ])
            let importer = try await f.service.saveImporter(id: nil, name: "q", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["address": "ip"]), query: query,
                                                            actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.runsCreated == 2)
            #expect(run.rowsSkipped == 1)
            let ips = try f.engine.detailed(try await f.service.createdRuns(run.id)).map { $0.created.parameters["ip"] }
            #expect(ips == ["10.0.0.1", "10.9.9.3"])
        }
    }

    @Test("event-triggered: tokens must exist, satisfy the criteria and have an event no older than 3 months")
    func eventTriggered() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(#"""
                {"trigger": {"kind": "event", "event_type": "inquiry.completed", "criteria": {"event.data.country": "DE"}},
                 "routes": [{"name": "all", "steps": [{"step_uid": "t", "type": "tag", "parameters": {"tags": ["backfilled"]}}]}]}
                """#)
            let now = f.clock.value
            _ = try await f.engine.postEvent(objectType: "inquiry", objectToken: "inq_ok", eventType: "inquiry.completed",
                                             data: ["country": "DE"], occurredAt: now - 86_400_000)
            _ = try await f.engine.postEvent(objectType: "inquiry", objectToken: "inq_us", eventType: "inquiry.completed",
                                             data: ["country": "US"], occurredAt: now - 86_400_000)
            _ = try await f.engine.postEvent(objectType: "inquiry", objectToken: "inq_old", eventType: "inquiry.completed",
                                             data: ["country": "DE"], occurredAt: now - 100 * 86_400_000)
            #expect(await f.engine.waitUntilIdle())
            let before = try f.engine.runs.count()
            let source = try await f.upload("token\ninq_ok\ninq_us\ninq_old\ninq_none\n")
            let importer = try await f.service.saveImporter(
                id: nil, name: "e", dataSourceId: source.id, workflowId: wf,
                mapping: ImporterMapping(tokenColumn: "token", objectType: "inquiry"), query: ImporterQuery(), actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.runsCreated == 1)
            #expect(run.errors.map(\.error) == [
                "inquiry inq_us does not satisfy the trigger criteria",
                "the inquiry.completed event of inquiry inq_old is older than 3 months",
                "inquiry inq_none does not exist",
            ])
            #expect(await f.engine.waitUntilIdle())
            #expect(try f.engine.runs.count() == before + 1)
            #expect(await f.engine.objectView(type: "inquiry", token: "inq_ok")?.tags == ["backfilled"])
        }
    }

    @Test("case/account actions: the token column plus input fields; unknown tokens are errored rows")
    func actions() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(#"""
                {"trigger": {"kind": "action", "object_type": "case", "inputs": {"fields": [{"name": "note", "type": "string", "required": true}]}},
                 "routes": [{"name": "all", "steps": [{"step_uid": "d", "type": "decline"}]}]}
                """#)
            _ = try await f.engine.postEvent(objectType: "case", objectToken: "case_1", eventType: "case.opened", data: [:])
            let source = try await f.upload("case,note\ncase_1,fraud\ncase_2,x\ncase_1,\n")
            let importer = try await f.service.saveImporter(id: nil, name: "c", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["note": "note"], tokenColumn: "case"),
                                                            query: ImporterQuery(), actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.runsCreated == 1)
            #expect(run.errors.map(\.error) == ["case case_2 does not exist", "note is required"])
        }
    }

    @Test("the daily quota stops an importer run with the rows left; it resumes from its checkpoint")
    func quotaStopAndResume() async throws {
        try await ImportFixture.with(quota: 10, batchSize: 4) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 25))
            let importer = try await f.service.saveImporter(id: nil, name: "q", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip"]),
                                                            query: ImporterQuery(), actor: "test")
            var run = try await f.run(importer.id)
            #expect(run.status == .stopped)
            #expect(run.runsCreated == 10)
            #expect(run.rowsLeft == 15)
            #expect(run.reason?.contains("daily run quota of 10") == true)
            f.clock.advance(days: 1)
            _ = try await f.service.resume(run.id, actor: "test")
            run = try await f.finished(run.id)
            #expect(run.status == .stopped)
            #expect(run.runsCreated == 20)
            f.clock.advance(days: 1)
            _ = try await f.service.resume(run.id, actor: "test")
            run = try await f.finished(run.id)
            #expect(run.status == .completed)
            #expect(run.runsCreated == 25)
            #expect(Set(try await f.service.createdRuns(run.id).compactMap(\.created.source.row)) == Set(1...25))
        }
    }

    @Test("a run interrupted between batches resumes after its checkpoint on restart: exactly one run per row")
    func resumeAfterRestart() async throws {
        try await ImportFixture.with(batchSize: 100) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 5_000))
            let importer = try await f.service.saveImporter(id: nil, name: "r", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip"]),
                                                            query: ImporterQuery(), actor: "test")
            let started = try await f.service.startRun(importerId: importer.id, actor: "test")
            while await (f.service.snapshot.runs[started.id]?.runsCreated ?? 0) < 300 { try await Task.sleep(for: .milliseconds(1)) }
            try await f.restart()
            let reopened = try #require(await f.service.snapshot.runs[started.id])
            #expect(reopened.runsCreated < 5_000, "the restart must interrupt the run")
            let run = try await f.finished(started.id)
            #expect(run.status == .completed)
            let rows = try await f.service.createdRuns(started.id).compactMap(\.created.source.row)
            #expect(rows.count == 5_000)
            #expect(Set(rows) == Set(1...5_000))
        }
    }

    @Test("cancel stops a run at its next batch; re-run of errored rows processes only those rows")
    func cancelAndRerun() async throws {
        try await ImportFixture.with(batchSize: 10) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.upload(Self.csv(rows: 30, badEvery: 7))
            let importer = try await f.service.saveImporter(id: nil, name: "c", dataSourceId: source.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]),
                                                            query: ImporterQuery(), actor: "test")
            let run = try await f.run(importer.id)
            #expect(run.errors.map(\.row) == [7, 14, 21, 28])
            let rerun = try await f.service.rerunErrored(run.id, actor: "test")
            let done = try await f.finished(rerun.id)
            #expect(done.rerunOf == run.id)
            #expect(done.rowsRead == 4)
            #expect(done.rowsErrored == 4)
            let big = try await f.upload(Self.csv(rows: 20_000))
            let second = try await f.service.saveImporter(id: nil, name: "big", dataSourceId: big.id, workflowId: wf,
                                                          mapping: ImporterMapping(columns: ["ip": "ip"]), query: ImporterQuery(),
                                                          actor: "test")
            let started = try await f.service.startRun(importerId: second.id, actor: "test")
            let cancelled = try await f.service.cancel(started.id, actor: "test")
            #expect(cancelled.status == .cancelled)
            #expect(cancelled.runsCreated < 20_000)
            await #expect(throws: WorkflowError.self) { try await f.service.cancel(started.id, actor: "test") }
        }
    }

    @Test("an importer reads its source only as fast as it records rows: a cancelled run has read a fraction of a long object")
    func readsAtTheImportersPace() async throws {
        let source = CountingS3(chunks: 2_000, rowsPerChunk: 50)
        try await ImportFixture.with(batchSize: 100, s3: { _, _ in source }) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let data = try await f.service.createS3DataSource(
                name: "long", settings: S3Settings(bucket: "b", key: "rows.csv", prefix: nil, region: "us-east-1", endpoint: nil),
                secret: S3Secret(accessKeyId: "a", secretAccessKey: "s"), actor: "test")
            let importer = try await f.service.saveImporter(id: nil, name: "long", dataSourceId: data.id, workflowId: wf,
                                                            mapping: ImporterMapping(columns: ["ip": "ip"]), query: ImporterQuery(),
                                                            actor: "test")
            let started = try await f.service.startRun(importerId: importer.id, actor: "test")
            // Let it record a few batches, then stop it.
            while let run = await f.service.snapshot.runs[started.id], run.status == .running, run.runsCreated < 300 {
                try await Task.sleep(for: .milliseconds(5))
            }
            let cancelled = try await f.service.cancel(started.id, actor: "test")
            #expect(cancelled.status == .cancelled)
            let read = source.pulled
            // Rows recorded, plus the batches in flight and the chunk being parsed: far from the
            // 2,000 chunks a reader running ahead would have taken in by now.
            #expect(read * 50 <= cancelled.rowsRead + 8 * 100 + 2 * 50, "\(read) chunks read for \(cancelled.rowsRead) rows")
            #expect(read < 2_000)
        }
    }
}

/// An S3 object of `chunks` chunks of `rowsPerChunk` rows (an `ip` column), made as they are
/// asked for, counting how many were.
final class CountingS3: S3ObjectSource {
    let chunks: Int
    let rowsPerChunk: Int
    private let count = Mutex(0)
    var pulled: Int { count.withLock { $0 } }

    init(chunks: Int, rowsPerChunk: Int) {
        self.chunks = chunks
        self.rowsPerChunk = rowsPerChunk
    }

    func keys() async throws -> [String] { ["rows.csv"] }

    func chunks(of key: String) -> ObjectChunks {
        Chunks(source: self)
    }

    struct Chunks: AsyncSequence, Sendable {
        let source: CountingS3
        struct AsyncIterator: AsyncIteratorProtocol {
            let source: CountingS3
            var index = 0
            mutating func next() async throws -> [UInt8]? {
                guard index <= source.chunks else { return nil }
                defer { index += 1 }
                source.count.withLock { $0 += 1 }
                if index == 0 { return Array("ip\n".utf8) }
                var text = ""
                for row in 0..<source.rowsPerChunk { text += "10.\(index / 256).\(index % 256).\(row)\n" }
                return Array(text.utf8)
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: source) }
    }
}
