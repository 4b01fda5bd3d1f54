// Engine tests of imported runs (`run.batch_imported`): the run tables, listing and paging,
// queueing and the quota.
@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("Imported runs")
struct ImportedRunsTests {
    /// Imported runs of the API workflows of these tests, one per row, each with its own IP.
    func batch(_ rows: Range<Int>) -> [ImportedRun] {
        rows.map { ImportedRun(parameters: ["ip": .string("10.\($0 / 65_536).\($0 / 256 % 256).\($0 % 256)")], row: $0) }
    }

    @Test("the run table folds an appended run.batch_imported from the engine's own value, byte for byte as a rebuild from the log")
    func appendedRunCreatedMatchesRebuild() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            let id = try await f.activeWorkflow("typed", apiWorkflow(
                schema: #"{"fields": [{"name": "n", "type": "number", "required": true}, {"name": "ip", "type": "string"}]}"#,
                routes: #"[{"name": "all", "steps": []}]"#))
            // Numbers without a fraction are written as integers and read back as integers.
            let runs: [ImportedRun] = [
                ImportedRun(parameters: ["n": .number(3), "ip": "a"], row: 1),
                ImportedRun(parameters: ["n": .number(2.5), "ip": "b"], row: 2),
                ImportedRun(parameters: ["n": .number(-0.0)], row: 3),
            ]
            let ids = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_t", runs, extra: [],
                                                     actor: "test")
            // The runs execute at once (no steps): compare once they are done, or a worker's commit can
            // fall between the two reads.
            #expect(await e.waitUntilIdle())
            let name = "runs-check-\(UUID().uuidString.prefix(8))"
            try await f.store.attach(RunsProjection(name: name))
            let rebuilt = RunTables(store: f.store, projection: name)
            for runId in ids {
                let live = try #require(try e.runs.run(runId))
                let again = try #require(try rebuilt.run(runId))
                #expect(live.encoded == again.encoded, "\(runId)")
            }
            // One event for the batch, none on the runs' own streams until they execute; each run's
            // details come from its row of the batch, numbers as parsing the payload gives them.
            let batches = try f.store.readAll(filter: EventFilter(types: ["run.batch_imported.v1"]), limit: 10)
            #expect(batches.count == 1)
            #expect(try f.store.readAll(filter: EventFilter(types: ["run.created.v1"]), limit: 10).isEmpty)
            #expect(await e.waitUntilIdle())
            let details = try ids.map { try e.detailed(try #require(try e.runs.run($0))) }
            #expect(details.map(\.created.parameters) == [["n": 3, "ip": "a"], ["n": .number(2.5), "ip": "b"], ["n": .number(-0.0)]])
            #expect(details.map(\.created.source) == (1...3).map { RunSource(kind: "importer", reference: "imr_t", row: $0) })
            #expect(details.allSatisfy { $0.status == .completed && $0.created.queue == .batch && $0.createdPosition == batches[0].position })
        }
    }

    @Test("runs of imported batches list, page and resume like runs created one by one")
    func importedRunsListPageAndResume() async throws {
        // No worker: the runs stay queued until a second engine starts.
        try await EngineFixture.with(configuration: EngineConfiguration(realtimeWorkers: 0, sharedWorkers: 0)) { f in
            let e = f.engine
            let id = try await f.activeWorkflow("pages", apiWorkflow(routes: #"[{"name": "all", "steps": []}]"#))
            let first = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_p", batch(1..<6),
                                                       extra: [], actor: "test")
            let alone = try await e.startRun(workflowId: id, parameters: ["ip": "alone"], queue: .batch)
            let second = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_p", batch(6..<9),
                                                        extra: [], actor: "test")
            await e.importedRunsQueued()
            let all = first + [alone.id] + second
            #expect(Set(all).count == 9)
            // Pages of 4 across the batches and the run between them, in creation order.
            var listed: [String] = []
            var after: String?
            repeat {
                let page = try e.runs.listRuns(of: id, after: after, limit: 4)
                listed += page.map(\.id)
                after = page.count == 4 ? page.last?.id : nil
            } while after != nil
            #expect(listed == all)
            #expect(try e.runs.listRuns(of: id, status: .queued, limit: 100).map(\.id) == all)
            // The importer run's runs, from any offset.
            #expect(try e.runs.runIds(source: "importer", reference: "imr_p") == first + second)
            #expect(try e.runs.runIds(source: "importer", reference: "imr_p", offset: 3, limit: 4) == Array((first + second)[3..<7]))
            #expect(try e.runs.runIds(source: "importer", reference: "imr_p", offset: 7) == [second[2]])
            #expect(try e.runs.runIds(source: "importer", reference: "imr_p", offset: 8).isEmpty)
            #expect(try e.runs.activeRuns().map(\.id) == all)
            await e.shutdown()

            // A new engine queues what is left and executes every run once; the batches leave the
            // active runs as their last run ends. One worker, so the order it takes them in is seen.
            let resumed = try await WorkflowEngine(store: f.store, configuration: EngineConfiguration(realtimeWorkers: 0, sharedWorkers: 1))
            await resumed.start()
            #expect(await resumed.waitUntilIdle())
            #expect(try resumed.runs.statuses(all).allSatisfy { $0 == .completed })
            #expect(try resumed.runs.activeRuns().isEmpty)
            let matched = try f.store.readAll(filter: EventFilter(types: ["run.route_matched.v1"]), limit: 100)
            #expect(matched.map { String($0.stream.dropFirst(4)) } == all)
            // The in-memory fold of the log gives the same runs as the run table.
            let replayed = try WorkflowsState.rebuild(from: f.store, keepsRuns: true)
            #expect(replayed.runs.values.map(\.id) == all)
            #expect(try resumed.runs.allRuns().map(\.encoded) == replayed.runs.values.map(\.encoded))
            await resumed.shutdown()
        }
    }

    @Test("an imported batch waits as one queue entry: every run executes once, in order, between other batch runs")
    func importedRanges() async throws {
        // One worker takes the batch runs, so the order it takes them in is seen.
        try await EngineFixture.with(configuration: EngineConfiguration(realtimeWorkers: 0, sharedWorkers: 1)) { f in
            let e = f.engine
            let id = try await f.activeWorkflow("ranges", apiWorkflow(routes: #"[{"name": "all", "steps": []}]"#))
            // A big batch, then one run queued alone, then a small batch.
            let big = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_r",
                                                     batch(0..<519), extra: [], actor: "test")
            await e.importedRunsQueued()
            let alone = try await e.startRun(workflowId: id, parameters: ["ip": "alone"], queue: .batch)
            let small = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_r", batch(1_000..<1_003),
                                                       extra: [], actor: "test")
            await e.importedRunsQueued()
            #expect(await e.waitUntilIdle())
            let all = big + [alone.id] + small
            #expect(try e.runs.statuses(all).allSatisfy { $0 == .completed })
            // Executed once each, in the order they were queued: their route.matched events.
            let matched = try f.store.readAll(filter: EventFilter(types: ["run.route_matched.v1"]), limit: 10_000)
            #expect(matched.map { String($0.stream.dropFirst(4)) } == all)
            #expect(await e.queues.count == 0)
        }
    }

    @Test("imported batches count against the quota while the projection catches up, and every run is queued and executed")
    func importedBatches() async throws {
        try await EngineFixture.with(configuration: EngineConfiguration(dailyRunQuota: 7)) { f in
            let e = f.engine
            let id = try await f.activeWorkflow("imp", apiWorkflow(routes: #"[{"name": "all", "steps": []}]"#))
            // Two batches back to back: the second is recorded while the first may still be on its
            // way into the read models, and the quota counts both either way.
            let first = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_test", batch(1..<4),
                                                       extra: [], actor: "test")
            let second = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_test", batch(4..<7),
                                                        extra: [], actor: "test")
            #expect(await e.quotaRoom() == 1)
            await expectWorkflowError(.quotaExceeded) {
                _ = try await e.createImportedRuns(workflowId: id, version: 1, importerRunId: "imr_test", batch(7..<9),
                                                   extra: [], actor: "test")
            }
            await e.importedRunsQueued()
            for (row, runId) in zip(1..., first + second) {
                #expect(try e.runs.run(runId)?.created.source.row == row)
                #expect(try e.runs.run(runId)?.created.queue == .batch)
            }
            #expect(await e.quotaStatus().used == 6)
            #expect(await e.quotaRoom() == 1)
            // An unknown workflow records nothing and reserves nothing.
            await expectWorkflowError(.notFound) {
                _ = try await e.createImportedRuns(workflowId: "wf_missing", version: 1, importerRunId: "imr_test", batch(7..<8),
                                                   extra: [], actor: "test")
            }
            #expect(await e.quotaRoom() == 1)
            for runId in first + second { #expect(try await f.finished(runId).status == .completed) }
        }
    }
}
