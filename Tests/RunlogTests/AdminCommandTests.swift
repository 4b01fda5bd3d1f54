import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

@Suite("runlog workflows and runs", .serialized)
struct AdminCommandTests {
    let definition = #"""
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true}]}},
         "routes": [{"name": "all", "steps": [{"step_uid": "STEP", "type": "approve"}]}]}
        """#

    @Test("list, versions, revert, as-of and runs show on a real data directory")
    func adminCommands() async throws {
        let dir = TemporaryDirectory()
        var workflowId = ""
        var runId = ""
        var positionBeforeRevert: UInt64 = 0
        do {
            let store = try LMDBEventStore(directory: dir.data)
            let engine = try await WorkflowEngine(store: store)
            await engine.start()
            let wf = try await engine.createWorkflow(name: "Screen inquiries", actor: "alice")
            workflowId = wf.id
            for (i, step) in ["a1", "a2"].enumerated() {
                _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: definition.replacingOccurrences(of: "STEP", with: step)),
                                               expectedDraftVersion: i, actor: "alice")
                _ = try await engine.publish(workflowId: wf.id, description: "version \(i + 1)", activate: true, actor: "alice")
            }
            runId = try await engine.startRun(workflowId: wf.id, parameters: ["ip": "1.2.3.4"]).id
            #expect(await engine.waitUntilIdle())
            positionBeforeRevert = try store.head().position
            await engine.shutdown()
            store.close()
        }
        let d = ["--data-dir", dir.data]

        let list = try await ChildProcess.run(["workflows", "list"] + d)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains { $0.contains(workflowId) && $0.contains("Screen inquiries") && $0.contains("v2") })

        let versions = try await ChildProcess.run(["workflows", "versions", workflowId] + d)
        #expect(versions.stdout.contains { $0.hasPrefix("v2") && $0.contains("active") && $0.contains("by alice") })
        #expect(versions.stdout.contains { $0.hasPrefix("v1") && $0.contains("published") })

        let revert = try await ChildProcess.run(["workflows", "revert", workflowId, "--to", "1", "--activate"] + d)
        #expect(revert.status == 0, "\(revert.stderr)")
        #expect(revert.stdout == ["workflow \(workflowId): version 3 created from version 1 and activated"])
        let json = try JSONValue(parsing: try await ChildProcess.run(["workflows", "revert", workflowId, "--to", "2", "--json"] + d)
            .stdout.joined())
        #expect(json["version"] == 4 && json["status"] == "published" && json["reverted_from"] == 2, "\(json)")
        #expect(json["definition"]?["routes"]?.arrayValue?.count == 1, "\(json)")
        let after = try await ChildProcess.run(["workflows", "versions", workflowId] + d)
        #expect(after.stdout.contains { $0.hasPrefix("v3") && $0.contains("active") && $0.contains("revert of v1") })
        #expect(after.stdout.contains { $0.hasPrefix("v4") && $0.contains("published") && $0.contains("revert of v2") })
        #expect(after.stdout.contains { $0.hasPrefix("v2") && $0.contains("published") })

        let asOf = try await ChildProcess.run(["workflows", "as-of", workflowId, "--position", "\(positionBeforeRevert)"] + d)
        #expect(asOf.status == 0, "\(asOf.stderr)")
        #expect(!asOf.stdout.contains { $0.hasPrefix("v3") })
        #expect(asOf.stdout.contains { $0.hasPrefix("v2") && $0.contains("active") })
        // Before the workflow existed: said so, with where it was created.
        let before = try await ChildProcess.run(["workflows", "as-of", workflowId, "--position", "0"] + d)
        #expect(before.status != 0)
        #expect(before.stderr.contains("did not exist yet at position 0"), "\(before.stderr)")

        let show = try await ChildProcess.run(["runs", "show", runId] + d)
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("status     completed, approved"))
        #expect(show.stdout.contains { $0.hasPrefix("step       a2 approve: completed") })
        #expect(show.stdout.contains { $0.contains("version 2, arm none") })

        let missing = try await ChildProcess.run(["runs", "show", "run_nope"] + d)
        #expect(missing.status != 0 && missing.stderr.contains("run_nope does not exist"))
        let badRevert = try await ChildProcess.run(["workflows", "revert", workflowId, "--to", "9"] + d)
        #expect(badRevert.status != 0 && badRevert.stderr.contains("has no version 9"))

        // While another process holds the directory for writing, revert refuses and reads work.
        let holder = try LMDBEventStore(directory: dir.data)
        let refused = try await ChildProcess.run(["workflows", "revert", workflowId, "--to", "2"] + d)
        #expect(refused.status != 0 && refused.stderr.contains("held for writing"))
        #expect(try await ChildProcess.run(["workflows", "list"] + d).status == 0)
        holder.close()
    }
}
