import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

/// `runlog workflows versions` shows each finished rollout: which version went against which,
/// how it ended and every percentage it went through.
@Suite("runlog workflows versions: past rollouts")
struct RolloutHistoryCLITests {
    @Test("a promoted and an ended rollout are listed with their percentages, newest first")
    func pastRollouts() async throws {
        let dir = TemporaryDirectory()
        let definition = #"""
            {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string"}]}},
             "routes": [{"name": "all", "steps": [{"step_uid": "STEP", "type": "approve"}]}]}
            """#
        var workflowId = ""
        do {
            let store = try LMDBEventStore(directory: dir.data)
            let engine = try await WorkflowEngine(store: store)
            await engine.start()
            let wf = try await engine.createWorkflow(name: "Rolled", actor: "alice")
            workflowId = wf.id
            for (i, step) in ["s1", "s2", "s3"].enumerated() {
                _ = try await engine.saveDraft(
                    workflowId: wf.id, definition: try JSONValue(parsing: definition.replacingOccurrences(of: "STEP", with: step)),
                    expectedDraftVersion: i, actor: "alice")
                _ = try await engine.publish(workflowId: wf.id, description: "v\(i + 1)", activate: i == 0, actor: "alice")
            }
            // v2 against v1: 30 → 50 → promoted; then v3 against v2: 20 → ended.
            _ = try await engine.stageRollout(workflowId: wf.id, version: 2, percentage: 30, actor: "alice")
            _ = try await engine.setRolloutPercentage(workflowId: wf.id, percentage: 50, actor: "bob")
            _ = try await engine.setRolloutPercentage(workflowId: wf.id, percentage: 100, actor: "bob")
            _ = try await engine.stageRollout(workflowId: wf.id, version: 3, percentage: 20, actor: "alice")
            _ = try await engine.setRolloutPercentage(workflowId: wf.id, percentage: 0, actor: "carol")
            await engine.shutdown()
            store.close()
        }
        let versions = try await ChildProcess.run(["workflows", "versions", workflowId, "--data-dir", dir.data])
        #expect(versions.status == 0, "\(versions.stderr)")
        let rollouts = versions.stdout.filter { $0.hasPrefix("rollout") }
        #expect(rollouts.count == 2, "\(versions.stdout)")
        #expect(rollouts.first?.contains("v3 against v2, ended") == true, "\(rollouts)")
        #expect(rollouts.first?.hasSuffix("(20% → 0%)") == true, "\(rollouts)")
        #expect(rollouts.last?.contains("v2 against v1, promoted") == true, "\(rollouts)")
        #expect(rollouts.last?.hasSuffix("(30% → 50% → 100%)") == true, "\(rollouts)")
        #expect(versions.stdout.contains { $0.hasPrefix("v2") && $0.contains("active") }, "\(versions.stdout)")
    }
}
