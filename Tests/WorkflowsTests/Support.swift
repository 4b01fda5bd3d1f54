import EventStore
import Foundation
import Testing
@testable import Workflows

/// A temporary data directory with an open store and a started engine.
final class EngineFixture: @unchecked Sendable {
    let path: String
    let store: EventStore
    let engine: WorkflowEngine

    init(configuration: EngineConfiguration = EngineConfiguration(), start: Bool = true) async throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("runlog-wf-\(UUID().uuidString.prefix(8))").path
        store = try EventStore(directory: path, options: .init(mapSize: 256 << 20))
        engine = try WorkflowEngine(store: store, configuration: configuration)
        if start { await engine.start() }
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
            if let run = await engine.snapshot.runs[runId], run.status == .completed || run.status == .failed {
                return try engine.detailed(run)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw FixtureError("run \(runId) did not finish")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
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
