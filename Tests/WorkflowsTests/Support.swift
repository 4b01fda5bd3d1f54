@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
@testable import WorkflowModel
@testable import Workflows

/// A temporary data directory with an open store and a started engine.
final class EngineFixture: AsyncClosable, @unchecked Sendable {
    let path: String
    let store: LMDBEventStore
    let engine: WorkflowEngine

    init(configuration: EngineConfiguration = EngineConfiguration(), start: Bool = true) async throws {
        path = TemporaryDirectory.uniquePath("runlog-wf")
        store = try LMDBEventStore(directory: path, options: .init(mapSize: 256 << 20))
        engine = try await WorkflowEngine(store: store, configuration: configuration)
        if start { await engine.start() }
    }

    /// Runs `body` with a fresh fixture, then closes it (awaited) whether `body` returns or throws.
    static func with<Value>(configuration: EngineConfiguration = EngineConfiguration(), start: Bool = true,
                            _ body: (EngineFixture) async throws -> Value) async throws -> Value {
        try await EngineFixture(configuration: configuration, start: start).closing(body)
    }

    func close() async {
        await engine.shutdown()
        store.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Creates, saves, publishes and activates a workflow from a definition in JSON text.
    func activeWorkflow(_ name: String = "wf", _ definition: String) async throws -> String {
        let wf = try await engine.createWorkflow(name: name, actor: "test")
        _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: definition),
                                       expectedDraftVersion: 0, actor: "test")
        _ = try await engine.publish(workflowId: wf.id, description: "v1", activate: true, actor: "test")
        return wf.id
    }

    /// Waits for the run to finish and returns it.
    func finished(_ runId: String) async throws -> RunRecord {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let run = try await engine.run(runId), run.status == .completed || run.status == .failed {
                return try engine.detailed(run)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw TestFailure("run \(runId) did not finish")
    }
}

/// Expects the engine's run tables (`RunsProjection`) to hold what a replay of the log into
/// memory holds: the same summaries, the same runs per workflow, source and job, and the same
/// runs still queued or running. With `rebuildTables`, a second copy of the tables built from the
/// whole log must hold the same too.
func expectRunTables(
    _ store: LMDBEventStore,
    match rebuilt: WorkflowsState,
    rebuildTables: Bool = false,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    var tables = [RunTables(store: store)]
    if rebuildTables {
        let name = "runs-check-\(UUID().uuidString.prefix(8))"
        try await store.attach(RunsProjection(name: name))
        tables.append(RunTables(store: store, projection: name))
    }
    for runs in tables {
        let all = try runs.allRuns()
        #expect(all.count == rebuilt.runs.count, comment, sourceLocation: sourceLocation)
        for (live, replayed) in zip(all, rebuilt.runs.values) where live != replayed {
            let steps = { (run: RunRecord) in run.steps.map { "\($0.uid):\($0.status)" }.joined(separator: ",") }
            let note = comment.map { " (\($0))" } ?? ""
            let message: String = "run \(live.id) in the table: \(live.status) [\(steps(live))]; replayed \(replayed.id): "
                + "\(replayed.status) [\(steps(replayed))]\(note)"
            Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
            break
        }
        for (workflow, ids) in rebuilt.runsByWorkflow {
            #expect(try runs.listRuns(of: workflow, limit: .max).map(\.id) == ids, comment, sourceLocation: sourceLocation)
        }
        for (job, ids) in rebuilt.runsByJob {
            #expect(try runs.runIds(source: "job", reference: job) == ids, comment, sourceLocation: sourceLocation)
            #expect(try runs.jobCounts(job) == rebuilt.jobCounts[job], comment, sourceLocation: sourceLocation)
        }
        for (reference, ids) in rebuilt.runsByReference {
            let found = try runs.runIds(source: "event", reference: reference) + runs.runIds(source: "workflow", reference: reference)
            #expect(Set(found) == Set(ids), comment, sourceLocation: sourceLocation)
        }
        let active = rebuilt.runs.values.filter { !$0.status.hasEnded }.map(\.id)
        #expect(try runs.activeRuns().map(\.id) == active, comment, sourceLocation: sourceLocation)
    }
}

func apiWorkflow(schema: String = #"{"fields": [{"name": "ip", "type": "string", "required": true}]}"#,
                 routes: String) -> String {
    #"{"trigger": {"kind": "api", "schema": \#(schema)}, "routes": \#(routes)}"#
}

/// Expects a `WorkflowError` with `code`, returning it.
@discardableResult
func expectWorkflowError(_ code: WorkflowError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () async throws -> Void) async -> WorkflowError? {
    do {
        try await body()
        Issue.record("expected \(code), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as WorkflowError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
