@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("Workflow engine", .serialized)
struct EngineTests {
    @Test("draft saves use optimistic concurrency; publish freezes; history and revert")
    func draftsVersionsHistory() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            let wf = try await e.createWorkflow(name: "Screen inquiries", actor: "alice")
            #expect(wf.number == 1)
            let def1 = try JSONValue(parsing: apiWorkflow(routes: #"[{"name": "all", "steps": [{"step_uid": "a1", "type": "approve"}]}]"#))
            let def2 = try JSONValue(parsing: apiWorkflow(routes: #"[{"name": "all", "steps": [{"step_uid": "d1", "type": "decline"}]}]"#))

            let d1 = try await e.saveDraft(workflowId: wf.id, definition: def1, expectedDraftVersion: 0, actor: "alice")
            #expect(d1.version == 1)
            // A stale If-Match fails and changes nothing.
            await expectWorkflowError(.preconditionFailed) {
                _ = try await e.saveDraft(workflowId: wf.id, definition: def2, expectedDraftVersion: 0, actor: "bob")
            }
            #expect(await e.snapshot.workflows[wf.id]?.draft?.definition == def1)
            // Publishing needs a draft change; activation needs a published version.
            await expectWorkflowError(.notFound) { _ = try await e.activate(workflowId: wf.id, version: 1) }
            let v1 = try await e.publish(workflowId: wf.id, description: "first", actor: "alice")
            #expect(v1.version == 1 && v1.publishedBy == "alice")
            await expectWorkflowError(.conflict) { _ = try await e.publish(workflowId: wf.id, description: "again") }
            _ = try await e.activate(workflowId: wf.id, version: 1, actor: "alice")

            _ = try await e.saveDraft(workflowId: wf.id, definition: def2, expectedDraftVersion: 1, actor: "bob")
            let v2 = try await e.publish(workflowId: wf.id, description: "decline all", activate: true, actor: "bob")
            #expect(v2.version == 2)
            _ = try await e.editDescription(workflowId: wf.id, version: 1, description: "first, approve all")

            let reverted = try await e.revert(workflowId: wf.id, to: 1, activate: true, actor: "admin")
            #expect(reverted.version == 3)
            #expect(reverted.revertedFrom == 1)
            #expect(reverted.definition == def1)
            let record = try #require(await e.snapshot.workflows[wf.id])
            #expect(record.versions.map(\.version) == [1, 2, 3])
            #expect(record.versions[0].description == "first, approve all")
            #expect(record.versions[1].definition == def2) // history is never rewritten
            #expect(record.active == 3)
            #expect(record.status(of: 3) == "active" && record.status(of: 2) == "published")
            #expect(record.draft?.definition == def1)

            // After shutdown, commands are refused and record nothing.
            let head = try f.store.head()
            await e.shutdown()
            let refused = await expectWorkflowError(.storage) { _ = try await e.deactivate(workflowId: wf.id) }
            #expect(refused?.message.contains("shut down") == true)
            #expect(try f.store.head() == head)
        }
    }

    @Test("malformed definitions are rejected when the draft is saved, naming path and operator")
    func malformedDraft() async throws {
        try await EngineFixture.with { f in
            let wf = try await f.engine.createWorkflow(name: "x")
            let bad = try JSONValue(parsing: apiWorkflow(routes: #"""
                [{"name": "r", "condition": {"parameters.ip": {"$inn": ["1"]}}, "steps": []}, {"name": "else", "steps": []}]
                """#))
            let error = await expectWorkflowError(.invalid) {
                _ = try await f.engine.saveDraft(workflowId: wf.id, definition: bad, expectedDraftVersion: 0)
            }
            #expect(error?.issues.first?.field == "routes[0].condition.parameters.ip")
            #expect(error?.issues.first?.rule.contains("$inn") == true)
            for (routes, field) in [
                (#"[{"name": "a", "steps": []}, {"name": "b", "steps": []}]"#, "routes[0].condition"),
                (#"[{"name": "a", "steps": [{"step_uid": "s", "type": "fly"}]}]"#, "routes[0].steps[0].type"),
                (#"[{"name": "a", "steps": [{"step_uid": "s", "type": "tag", "parameters": {"tags": []}}]}]"#, "routes[0].steps[0].parameters.tags"),
                (#"[{"name": "a", "steps": [{"step_uid": "s", "type": "approve"}, {"step_uid": "s", "type": "decline"}]}]"#, "routes[0].steps[1].step_uid"),
                (#"[{"name": "a", "steps": [{"step_uid": "s", "type": "http_request", "parameters": {"url": "ftp://x"}}]}]"#, "routes[0].steps[0].parameters.url"),
                (#"[]"#, "routes"),
            ] {
                let e = await expectWorkflowError(.invalid) {
                    _ = try await f.engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: apiWorkflow(routes: routes)),
                                                     expectedDraftVersion: nil)
                }
                #expect(e?.issues.first?.field == field, "\(String(describing: e))")
            }
            #expect(await f.engine.snapshot.workflows[wf.id]?.draft == nil)
        }
    }

    @Test("API runs: parameters validated against the schema, nothing created when bad")
    func apiRunValidation() async throws {
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("api", apiWorkflow(
                schema: #"{"fields": [{"name": "ip", "type": "string", "required": true}, {"name": "n", "type": "integer"}]}"#,
                routes: #"[{"name": "all", "steps": [{"step_uid": "a", "type": "approve"}]}]"#))
            let error = await expectWorkflowError(.invalid) {
                _ = try await f.engine.startRun(workflowId: id, parameters: ["n": "x", "zzz": 1])
            }
            #expect(Set(error?.issues.map(\.field) ?? []) == ["ip", "n", "zzz"])
            #expect(try f.engine.runs.count() == 0)
            let run = try await f.engine.startRun(workflowId: id, parameters: ["ip": "10.0.0.1", "n": 2])
            let done = try await f.finished(run.id)
            #expect(done.status == .completed && done.decision == "approved")
            #expect(done.created.arm == .none && done.created.version == 1)
        }
    }


    @Test("the read models keep a summary of each run; parameters and step outputs are read back from the log")
    func runDetailsStayInTheLog() async throws {
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("details", apiWorkflow(
                routes: #"[{"name": "all", "steps": [{"step_uid": "add", "type": "add_to_list", "parameters": {"list": "seen", "path": "parameters.ip"}}]}]"#))
            let started = try await f.engine.startRun(workflowId: id, parameters: ["ip": "10.1.2.3"])
            // The one who started the run gets it whole.
            #expect(started.created.parameters == ["ip": "10.1.2.3"])
            _ = try await f.finished(started.id)

            // In the run table: the summary, without the parameters, and without steps once the run ended.
            let summary = try #require(try f.engine.runs.run(started.id))
            #expect(!summary.detailed)
            #expect(summary.created.parameters == .null)
            #expect(summary.status == .completed && summary.steps.isEmpty)
            #expect(summary.createdPosition > 0)

            // Read back: the run.created event and the step's output, from the run's stream.
            let whole = try f.engine.detailed(summary)
            #expect(whole.detailed)
            #expect(whole.created.parameters == ["ip": "10.1.2.3"])
            #expect(whole.steps.map(\.uid) == ["add"] && whole.steps.map(\.status) == [.completed])
            #expect(whole.steps.first?.output == ["list": "seen", "value": "10.1.2.3"])
            #expect(whole.status == summary.status && whole.finishedAt == summary.finishedAt)

            // A rebuilt state is the same summary, and reads back the same details.
            let rebuilt = try WorkflowsState.rebuild(from: f.store)
            #expect(rebuilt.runs[started.id] == summary)
            #expect(try rebuilt.runs[started.id]?.withDetails(from: f.store) == whole)
        }
    }
    @Test("routes: first whose condition holds wins, the last without condition is the else")
    func routeOrder() async throws {
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("routes", apiWorkflow(
                schema: #"{"fields": [{"name": "score", "type": "integer", "required": true}]}"#,
                routes: #"""
                [{"name": "high", "condition": {"parameters.score": {"$gte": 80}}, "steps": [{"step_uid": "d", "type": "decline"}]},
                 {"name": "mid", "condition": {"parameters.score": {"$gte": 50}}, "steps": [{"step_uid": "t", "type": "approve"}]},
                 {"name": "else", "steps": []}]
                """#))
            var routes: [String?] = []
            for score in [90, 80, 60, 10] {
                let run = try await f.engine.startRun(workflowId: id, parameters: ["score": .integer(Int64(score))])
                routes.append(try await f.finished(run.id).route)
            }
            #expect(routes == ["high", "high", "mid", "else"])
        }
    }

    @Test("object events start matching workflows; every step type records its events")
    func stepsOnObjects() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            let id = try await f.activeWorkflow("steps", #"""
                {"trigger": {"kind": "event", "event_type": "inquiry.completed", "criteria": {"event.data.country": {"$in": ["DE", "FR"]}}},
                 "routes": [{"name": "all", "steps": [
                    {"step_uid": "t", "type": "tag", "parameters": {"tags": ["screened", "eu"]}},
                    {"step_uid": "l", "type": "add_to_list", "parameters": {"list": "seen-ips", "path": "event.data.ip"}},
                    {"step_uid": "s", "type": "set_field", "parameters": {"field": "risk", "value": "low"}},
                    {"step_uid": "s2", "type": "set_field", "parameters": {"field": "ip_copy", "path": "object.data.ip"}},
                    {"step_uid": "a", "type": "approve", "parameters": {"reason": "clean"}}]}]}
                """#)
            _ = id
            // Criteria not met: no run.
            let skipped = try await e.postEvent(objectType: "inquiry", objectToken: "inq_1", eventType: "inquiry.completed",
                                                data: ["country": "US", "ip": "1.1.1.1"])
            #expect(skipped.runIds.isEmpty)
            let posted = try await e.postEvent(objectType: "inquiry", objectToken: "inq_2", eventType: "inquiry.completed",
                                               data: ["country": "DE", "ip": "10.0.0.9"], eventId: "evt-42")
            #expect(posted.runIds.count == 1)
            let run = try await f.finished(posted.runIds[0])
            #expect(run.status == .completed)
            #expect(run.decision == "approved")
            #expect(run.steps.map(\.uid) == ["t", "l", "s", "s2", "a"])
            #expect(run.steps.allSatisfy { $0.status == .completed })
            let object = try #require(await e.objectView(type: "inquiry", token: "inq_2"))
            #expect(object.tags == ["screened", "eu"])
            #expect(object.decision == "approved")
            #expect(object.data?["risk"] == "low")
            #expect(object.data?["ip_copy"] == "10.0.0.9")
            #expect(await e.snapshot.lists["seen-ips"] == ["10.0.0.9"])
            // Posting the same event id again records nothing new.
            let again = try await e.postEvent(objectType: "inquiry", objectToken: "inq_2", eventType: "inquiry.completed",
                                              data: ["country": "DE", "ip": "10.0.0.9"], eventId: "evt-42")
            #expect(again.duplicate && again.runIds == posted.runIds)
            // Other event types do not start it.
            #expect(try await e.postEvent(objectType: "inquiry", objectToken: "inq_2", eventType: "inquiry.created", data: [:]).runIds.isEmpty)
        }
    }

    @Test("remove_from_list, $inList in routes, decline, run_workflow, actions")
    func listsActionsChildren() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            let child = try await f.activeWorkflow("child", apiWorkflow(
                routes: #"[{"name": "all", "steps": [{"step_uid": "rm", "type": "remove_from_list", "parameters": {"list": "block", "path": "parameters.ip"}}]}]"#))
            let parent = try await f.activeWorkflow("parent", apiWorkflow(routes: #"""
                [{"name": "blocked", "condition": {"parameters.ip": {"$inList": "block"}},
                  "steps": [{"step_uid": "d", "type": "decline"},
                            {"step_uid": "c", "type": "run_workflow", "parameters": {"workflow_id": "CHILD", "parameters": {"ip": "9.9.9.9"}}}]},
                 {"name": "else", "steps": [{"step_uid": "add", "type": "add_to_list", "parameters": {"list": "block", "path": "parameters.ip"}}]}]
                """#.replacingOccurrences(of: "CHILD", with: child)))
            let first = try await f.finished(try await e.startRun(workflowId: parent, parameters: ["ip": "9.9.9.9"]).id)
            #expect(first.route == "else")
            #expect(await e.snapshot.lists["block"] == ["9.9.9.9"])
            let second = try await f.finished(try await e.startRun(workflowId: parent, parameters: ["ip": "9.9.9.9"]).id)
            #expect(second.route == "blocked" && second.decision == "declined")
            let childRunId = try #require(second.steps.last?.output?["run_id"]?.stringValue)
            let childRun = try await f.finished(childRunId)
            #expect(childRun.created.source.kind == "workflow")
            #expect(await e.snapshot.lists["block"] == [])

            // An action workflow on an existing object.
            let action = try await f.activeWorkflow("action", #"""
                {"trigger": {"kind": "action", "object_type": "case", "inputs": {"fields": [{"name": "note", "type": "string", "required": true}]}},
                 "routes": [{"name": "all", "steps": [{"step_uid": "f", "type": "set_field", "parameters": {"field": "note", "path": "inputs.note"}}]}]}
                """#)
            await expectWorkflowError(.notFound) { _ = try await e.runAction(workflowId: action, objectToken: "case_1", inputs: ["note": "x"]) }
            _ = try await e.postEvent(objectType: "case", objectToken: "case_1", eventType: "case.opened", data: ["a": 1])
            await expectWorkflowError(.invalid) { _ = try await e.runAction(workflowId: action, objectToken: "case_1", inputs: [:]) }
            let run = try await f.finished(try await e.runAction(workflowId: action, objectToken: "case_1", inputs: ["note": "checked"]).id)
            #expect(run.status == .completed)
            #expect(await e.objectView(type: "case", token: "case_1")?.data?["note"] == "checked")
        }
    }

    @Test("redact makes the object's data unreadable everywhere, including the log, and the chain verifies")
    func redact() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            _ = try await f.activeWorkflow("redact", #"""
                {"trigger": {"kind": "event", "event_type": "erase.requested"},
                 "routes": [{"name": "all", "steps": [{"step_uid": "r", "type": "redact"}]}]}
                """#)
            _ = try await e.postEvent(objectType: "inquiry", objectToken: "inq_9", eventType: "inquiry.completed",
                                      data: ["name": "Grace Hopper SECRET-NAME"])
            #expect(await e.objectView(type: "inquiry", token: "inq_9")?.data?["name"] == "Grace Hopper SECRET-NAME")
            let posted = try await e.postEvent(objectType: "inquiry", objectToken: "inq_9", eventType: "erase.requested", data: [:])
            #expect(try await f.finished(posted.runIds[0]).status == .completed)
            let view = try #require(await e.objectView(type: "inquiry", token: "inq_9"))
            #expect(view.redacted && view.data == nil && view.events.allSatisfy { $0.data == nil })
            // The plaintext never reached the log; the chain still verifies.
            for event in try f.store.readAll(limit: 10_000) {
                #expect(!String(decoding: event.payload, as: UTF8.self).contains("SECRET-NAME"))
            }
            guard case .intact = try f.store.verify() else {
                Issue.record("chain broken after redaction")
                return
            }
            await expectWorkflowError(.conflict) {
                _ = try await e.postEvent(objectType: "inquiry", objectToken: "inq_9", eventType: "x", data: [:])
            }
        }
    }
}
