import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

/// `runlog workflows preview`, on a data directory and through a server.
@Suite("runlog workflows preview")
struct PreviewCLITests {
    static func definition(over threshold: Int) throws -> JSONValue {
        try JSONValue(parsing: """
            {"trigger": {"kind": "api", "schema": {"fields": [{"name": "amount", "type": "integer", "required": true}]}},
             "routes": [{"name": "large", "condition": {"parameters.amount": {"$gt": \(threshold)}},
                         "steps": [{"step_uid": "approve", "type": "approve"}]},
                        {"name": "else", "steps": [{"step_uid": "decline", "type": "decline"}]}]}
            """)
    }

    @Test("the draft against past runs: the same report from the data directory and from a server; bad options refused",
          .timeLimit(.minutes(2)))
    func preview() async throws {
        let dir = TemporaryDirectory()
        var workflowId = ""
        var flipped = ""
        do {
            let store = try LMDBEventStore(directory: dir.data)
            let engine = try await WorkflowEngine(store: store)
            await engine.start()
            let wf = try await engine.createWorkflow(name: "Refunds", actor: "alice")
            workflowId = wf.id
            _ = try await engine.saveDraft(workflowId: wf.id, definition: try Self.definition(over: 100),
                                           expectedDraftVersion: 0, actor: "alice")
            _ = try await engine.publish(workflowId: wf.id, description: "over 100", activate: true, actor: "alice")
            for amount in [50, 150, 250] {
                let run = try await engine.startRun(workflowId: wf.id, parameters: ["amount": .integer(Int64(amount))],
                                                    source: RunSource(kind: "api"))
                if amount == 150 { flipped = run.id }
            }
            #expect(await engine.waitUntilIdle())
            _ = try await engine.saveDraft(workflowId: wf.id, definition: try Self.definition(over: 200),
                                           expectedDraftVersion: 1, actor: "alice")
            await engine.shutdown()
            store.close()
        }
        let offline = try await ChildProcess.run(["workflows", "preview", workflowId, "--data-dir", dir.data, "--json"])
        #expect(offline.status == 0, "\(offline.stderr)")
        let report = try JSONValue(parsing: offline.stdout.joined(separator: "\n"))
        #expect(report["changed"] == 1 && report["unchanged"] == 2, "\(report)")
        let cell = report["matrix"]?.arrayValue?.first
        #expect(cell?["before"] == "approved" && cell?["after"] == "declined")
        #expect(cell?["examples"]?.arrayValue?.first?["run_id"] == .string(flipped))

        let text = try await ChildProcess.run(["workflows", "preview", workflowId, "--data-dir", dir.data])
        #expect(text.stdout.contains("  approved → declined: 1 run"), "\(text.stdout)")
        #expect(text.stdout.contains { $0.contains("run \(flipped)") && $0.contains(#"route large {"parameters.amount":{"$gt":100}} → else"#) }, "\(text.stdout)")
        let own = try await ChildProcess.run(["workflows", "preview", workflowId, "--version", "1", "--data-dir", dir.data, "--json"])
        #expect((try? JSONValue(parsing: own.stdout.joined()))?["changed"] == 0, "\(own.stdout) \(own.stderr)")
        let refused = try await ChildProcess.run(["workflows", "preview", workflowId, "--runs", "0", "--data-dir", dir.data])
        #expect(refused.status != 0 && refused.stderr.contains("--runs 0 is invalid"), "\(refused.stderr)")
        let missing = try await ChildProcess.run(["workflows", "preview", "wf_none", "--data-dir", dir.data])
        #expect(missing.status != 0 && missing.stderr.contains("wf_none"), "\(missing.stderr)")

        // Through a server: the same report.
        let key = try await ServerProcess.makeKey(dir.data, role: "auditor")
        let server = try await ServerProcess.start(dir.data)
        let online = try await ChildProcess.run(["workflows", "preview", workflowId, "--server", server.base, "--key", key, "--json"])
        server.child.kill(SIGTERM)
        _ = await server.child.wait()
        #expect(online.status == 0, "\(online.stderr)")
        // The same but for the position read up to: the key made since is in the log.
        guard case .object(var answered) = try JSONValue(parsing: online.stdout.joined(separator: "\n")),
              case .object(var expected) = report else { throw TestFailure("not objects") }
        #expect((answered["position"]?.intValue ?? 0) > (expected["position"]?.intValue ?? 0))
        (answered["position"], expected["position"]) = (nil, nil)
        #expect(answered == expected)
    }
}
