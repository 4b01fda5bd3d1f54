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

    @Test("staged rollout: runs record version and arm; 100% promotes, 0% ends keeping control")
    func rollouts() async throws {
        try await EngineFixture.with { f in
            let e = f.engine
            let id = try await f.activeWorkflow("ro", apiWorkflow(
                schema: #"{"fields": [{"name": "ip", "type": "string", "required": true}, {"name": "user", "type": "string"}]}"#,
                routes: #"[{"name": "all", "steps": [{"step_uid": "a", "type": "approve"}]}]"#))
            _ = try await e.saveDraft(workflowId: id, definition: try JSONValue(parsing: apiWorkflow(
                schema: #"{"fields": [{"name": "ip", "type": "string", "required": true}, {"name": "user", "type": "string"}]}"#,
                routes: #"[{"name": "all", "steps": [{"step_uid": "d", "type": "decline"}]}]"#)), expectedDraftVersion: nil)
            await expectWorkflowError(.invalid) {
                _ = try await e.publish(workflowId: id, description: "v2", rolloutPercentage: 12.345)
            }
            let v2 = try await e.publish(workflowId: id, description: "v2", rolloutPercentage: 30, stickyField: "user")
            #expect(v2.version == 2)
            let rollout = try #require(await e.snapshot.workflows[id]?.rollout)
            #expect(rollout.treatmentVersion == 2 && rollout.controlVersion == 1 && rollout.percentage == 30)
            await expectWorkflowError(.conflict) { _ = try await e.activate(workflowId: id, version: 2) }

            var arms: [String: Arm] = [:]
            for i in 0..<200 {
                let user = "user-\(i % 100)"
                let run = try await e.startRun(workflowId: id, parameters: ["ip": "1.2.3.4", "user": .string(user)])
                let expected: Arm = RolloutBucket.inTreatment(seed: rollout.id, key: user, percentage: 30) ? .treatment : .control
                #expect(run.created.arm == expected)
                #expect(run.created.version == (expected == .treatment ? 2 : 1))
                if let previous = arms[user] { #expect(previous == run.created.arm) } // sticky
                arms[user] = run.created.arm
            }
            #expect(await e.waitUntilIdle())
            let counts = try #require(await e.snapshot.workflows[id]?.rollout)
            #expect(counts.treatmentRuns + counts.controlRuns == 200)
            #expect(counts.treatmentRuns == 2 * arms.values.filter { $0 == .treatment }.count)
            // Runs are listable by arm, version and status, and page on.
            let state = e.runs
            let treated = try state.listRuns(of: id, arm: .treatment, limit: 1_000)
            #expect(treated.count == counts.treatmentRuns)
            #expect(treated.allSatisfy { $0.created.version == 2 && $0.created.arm == .treatment })
            #expect(try state.listRuns(of: id, version: 1, limit: 1_000).count == counts.controlRuns)
            #expect(try state.listRuns(of: id, status: .completed, limit: 1_000).count == 200)
            #expect(try state.listRuns(of: id, status: .failed).isEmpty)
            let page1 = try state.listRuns(of: id, limit: 50)
            let page2 = try state.listRuns(of: id, after: page1.last?.id, limit: 50)
            #expect(page1.count == 50 && page2.count == 50 && Set(page1.map(\.id)).isDisjoint(with: page2.map(\.id)))
            // Paging through every run, 7 at a time, gives each once, in creation order.
            var paged: [String] = []
            var cursor: String?
            while case let page = try state.listRuns(of: id, after: cursor, limit: 7), !page.isEmpty {
                paged += page.map(\.id)
                cursor = page.last?.id
            }
            #expect(paged == (try WorkflowsState.rebuild(from: f.store).runsByWorkflow[id]))
            #expect(paged.count == 200)
            #expect(page1.map(\.createdAt) == page1.map(\.createdAt).sorted())

            // Raising the percentage keeps every treated key treated.
            _ = try await e.setRolloutPercentage(workflowId: id, percentage: 60)
            for (user, arm) in arms where arm == .treatment {
                let run = try await e.startRun(workflowId: id, parameters: ["ip": "1.2.3.4", "user": .string(user)])
                #expect(run.created.arm == .treatment)
            }
            _ = try await e.setRolloutPercentage(workflowId: id, percentage: 100)
            var record = try #require(await e.snapshot.workflows[id])
            #expect(record.rollout == nil && record.active == 2 && record.pastRollouts.last?.status == .promoted)
            #expect(try await e.startRun(workflowId: id, parameters: ["ip": "x"]).created.arm == Arm.none)

            // Stage v3 and end it at 0%: the control stays active.
            _ = try await e.saveDraft(workflowId: id, definition: try JSONValue(parsing: apiWorkflow(
                schema: #"{"fields": [{"name": "ip", "type": "string", "required": true}]}"#,
                routes: #"[{"name": "all", "steps": []}]"#)), expectedDraftVersion: nil)
            _ = try await e.publish(workflowId: id, description: "v3", rolloutPercentage: 50)
            _ = try await e.setRolloutPercentage(workflowId: id, percentage: 0)
            record = try #require(await e.snapshot.workflows[id])
            #expect(record.rollout == nil && record.active == 2 && record.pastRollouts.last?.status == .ended)
        }
    }

    @Test("the daily run quota counts every source and names its reset time")
    func quota() async throws {
        let clock = ManualClock(ms: 1_795_000_000_000) // 2026-11-18T11:06:40Z
        try await EngineFixture.with(configuration: EngineConfiguration(dailyRunQuota: 3, clock: { clock.now })) { f in
            let e = f.engine
            let api = try await f.activeWorkflow("q", apiWorkflow(routes: #"[{"name": "all", "steps": []}]"#))
            _ = try await f.activeWorkflow("qe", #"{"trigger": {"kind": "event", "event_type": "ping"}, "routes": [{"name": "all", "steps": []}]}"#)
            _ = try await e.startRun(workflowId: api, parameters: ["ip": "a"])
            _ = try await e.postEvent(objectType: "device", objectToken: "d1", eventType: "ping", data: [:])
            _ = try await e.startRun(workflowId: api, parameters: ["ip": "b"])
            let error = await expectWorkflowError(.quotaExceeded) { _ = try await e.startRun(workflowId: api, parameters: ["ip": "c"]) }
            #expect(error?.resetsAt == 1_795_046_400_000)
            #expect(error?.message.contains("2026-11-19T00:00:00.000Z") == true)
            // An event whose runs would pass the quota records nothing.
            await expectWorkflowError(.quotaExceeded) {
                _ = try await e.postEvent(objectType: "device", objectToken: "d2", eventType: "ping", data: [:])
            }
            #expect(await e.objectView(type: "device", token: "d2") == nil)
            #expect(await e.quotaStatus().used == 3)
            clock.now = 1_795_046_400_000 + 1
            _ = try await e.startRun(workflowId: api, parameters: ["ip": "d"])
            #expect(await e.quotaStatus().used == 1)
        }
    }

    @Test("an http_request step calls once; its response is recorded and never repeated on replay or resume")
    func httpRequestReplay() async throws {
        let server = try HTTPCounter()
        defer { server.stop() }
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("http", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "call", "type": "http_request",
                   "parameters": {"url": "URL/call", "method": "POST", "body_path": "parameters", "timeout_ms": 5000}},
                  {"step_uid": "a", "type": "approve"}]}]
                """#.replacingOccurrences(of: "URL", with: server.url)))
            let run = try await f.finished(try await f.engine.startRun(workflowId: id, parameters: ["ip": "7.7.7.7"]).id)
            #expect(run.status == .completed)
            let call = try #require(run.steps.first)
            #expect(call.output?["status"] == 200)
            #expect(call.output?["body"]?["echo"]?["ip"] == "7.7.7.7")
            #expect(call.idempotencyKey == "\(run.id)/call")
            #expect(try server.count() == 1)

            // Replay: rebuild the read models and a new engine over the same log.
            await f.engine.shutdown()
            let rebuilt = try WorkflowsState.rebuild(from: f.store)
            #expect(try rebuilt.runs[run.id]?.withDetails(from: f.store).steps.first?.output == call.output)
            let second = try await WorkflowEngine(store: f.store)
            await second.start()
            await second.execute(run.id)
            #expect(await second.waitUntilIdle())
            #expect(try server.count() == 1)
            await second.shutdown()
        }
    }

    @Test("a failing http_request is retried with the same idempotency key, then fails the run")
    func httpRequestRetries() async throws {
        let server = try HTTPCounter()
        defer { server.stop() }
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("http", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "call", "type": "http_request",
                   "parameters": {"url": "URL/fail", "retries": 2}}]}]
                """#.replacingOccurrences(of: "URL", with: server.url)))
            let run = try await f.finished(try await f.engine.startRun(workflowId: id, parameters: ["ip": "x"]).id)
            #expect(run.status == .failed)
            #expect(run.failure?.contains("HTTP 500") == true)
            #expect(run.steps.first?.attempts == 3)
            #expect(try server.keys() == ["\(run.id)/call": 3])
        }
    }
}

final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(ms: Int64) { value = ms }
    var now: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

@Suite("Queues")
struct QueueTests {
    @Test("a real-time run does not wait behind a batch backlog")
    func realtimeBeforeBatch() async throws {
        try await EngineFixture.with(configuration: EngineConfiguration(realtimeWorkers: 1, sharedWorkers: 1)) { f in
            let e = f.engine
            let id = try await f.activeWorkflow("q", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "l", "type": "add_to_list", "parameters": {"list": "seen", "path": "parameters.ip"}},
                                           {"step_uid": "a", "type": "approve"}]}]
                """#))
            let batchCount = 400
            let batch = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<batchCount {
                    group.addTask { try await e.startRun(workflowId: id, parameters: ["ip": .string("b\(i)")], queue: .batch).id }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let realtime = try await e.startRun(workflowId: id, parameters: ["ip": "rt"], queue: .realtime)
            let done = try await f.finished(realtime.id)
            #expect(done.status == .completed)
            let batchFinished = try e.runs.statuses(batch).filter { $0 == .completed }.count
            // The real-time run finished while most of the backlog still waited.
            #expect(batchFinished < batchCount / 2, "batch finished: \(batchFinished)")
            #expect(await e.waitUntilIdle())
            #expect(try e.runs.statuses(batch).allSatisfy { $0 == .completed })
        }
    }
}

/// Holds every `http_request` call until `release()`; `entered` counts the calls that arrived.
final class HeldCalls: HTTPPerformer, @unchecked Sendable {
    private let lock = NSLock()
    private var released = false
    private var arrived = 0

    var entered: Int { lock.withLock { arrived } }
    func release() { lock.withLock { released = true } }

    func perform(_ request: OutboundRequest) async throws -> OutboundResponse {
        lock.withLock { arrived += 1 }
        while !lock.withLock({ released }) { try await Task.sleep(for: .milliseconds(1)) }
        return OutboundResponse(status: 200, body: Array("{}".utf8))
    }
}

@Suite("Batch work yields to real-time runs")
struct YieldTests {
    @Test("batch work waits while a real-time run is in flight, and for at most its limit")
    func yieldsToRealtime() async throws {
        let calls = HeldCalls()
        try await EngineFixture.with(configuration: EngineConfiguration(http: calls)) { f in
            let e = f.engine
            // Nothing real-time in flight: no wait.
            let idleStart = ContinuousClock.now
            await e.yieldToRealtime(atMost: .seconds(30))
            #expect(ContinuousClock.now - idleStart < .seconds(10))

            let id = try await f.activeWorkflow("held", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "call", "type": "http_request",
                   "parameters": {"url": "http://127.0.0.1:9/call", "method": "POST", "timeout_ms": 60000}},
                  {"step_uid": "a", "type": "approve"}]}]
                """#))
            let run = try await e.startRun(workflowId: id, parameters: ["ip": "1.1.1.1"], queue: .realtime)
            for _ in 0..<2_000 where calls.entered == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(calls.entered == 1)
            // The store defers background appends (an importer's batches) meanwhile.
            #expect(e.store.backgroundDeferred)

            // With a short limit (or none) the wait ends although the run is still held.
            await e.yieldToRealtime(atMost: .zero)
            await e.yieldToRealtime(atMost: .milliseconds(50))
            #expect(try e.runs.run(run.id)?.status == .running)

            // With a long one it ends when the run does.
            let waiter = Task { await e.yieldToRealtime(atMost: .seconds(60)); return ContinuousClock.now }
            try await Task.sleep(for: .milliseconds(100))
            let released = ContinuousClock.now
            calls.release()
            let returned = await waiter.value
            #expect(returned >= released)
            #expect(try await f.finished(run.id).status == .completed)
            // Once real-time work has been quiet a moment, background appends go ahead again.
            for _ in 0..<2_000 where e.store.backgroundDeferred { try await Task.sleep(for: .milliseconds(5)) }
            #expect(!e.store.backgroundDeferred)
        }
    }

    // Their appends are background ones while the store defers: they go in the gaps real-time
    // work leaves (backgroundGap; WriterPolicyTests checks the writer's rule). Without the gap, each
    // would wait for a paced turn: this test then took 16 s instead of 0.15 s.
    @Test("batch runs keep executing while a real-time run waits on an HTTP step and the store defers background appends")
    func batchRunsWhileRealtimeWaits() async throws {
        let calls = HeldCalls()
        try await EngineFixture.with(configuration: EngineConfiguration(
            realtimeWorkers: 1, sharedWorkers: 2, http: calls, batchYieldLimit: .milliseconds(5))) { f in
            let e = f.engine
            let held = try await f.activeWorkflow("held", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "call", "type": "http_request",
                   "parameters": {"url": "http://127.0.0.1:9/call", "method": "POST", "timeout_ms": 60000}}]}]
                """#))
            let listed = try await f.activeWorkflow("listed", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "l", "type": "add_to_list", "parameters": {"list": "seen", "path": "parameters.ip"}},
                                           {"step_uid": "a", "type": "approve"}]}]
                """#))
            let realtime = try await e.startRun(workflowId: held, parameters: ["ip": "1.1.1.1"], queue: .realtime)
            for _ in 0..<2_000 where calls.entered == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(e.store.backgroundDeferred)
            var batch: [String] = []
            for i in 0..<20 {
                batch.append(try await e.startRun(workflowId: listed, parameters: ["ip": .string("10.0.0.\(i)")], queue: .batch).id)
            }
            for id in batch { #expect(try await f.finished(id).status == .completed) }
            // All of them while the real-time run still waits and the store still defers.
            #expect(try e.runs.run(realtime.id)?.status == .running)
            #expect(e.store.backgroundDeferred)
            #expect(await e.snapshot.lists["seen"]?.count == 20)
            calls.release()
            #expect(try await f.finished(realtime.id).status == .completed)
        }
    }
}

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

@Suite("Engine lifecycle")
struct LifecycleTests {
    @Test("shutdown while runs execute does not hang, and a new engine finishes every run", .timeLimit(.minutes(1)))
    func shutdownAndResume() async throws {
        try await EngineFixture.with { f in
            let id = try await f.activeWorkflow("q", apiWorkflow(routes: #"""
                [{"name": "all", "steps": [{"step_uid": "l", "type": "add_to_list", "parameters": {"list": "seen", "path": "parameters.ip"}},
                                           {"step_uid": "a", "type": "approve"}]}]
                """#))
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<300 {
                    group.addTask { try await f.engine.startRun(workflowId: id, parameters: ["ip": .string("\(i)")], queue: .batch).id }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            await f.engine.shutdown()
            let resumed = try await WorkflowEngine(store: f.store)
            await resumed.start()
            #expect(await resumed.waitUntilIdle())
            let state = await resumed.snapshot
            #expect(try resumed.runs.statuses(ids).allSatisfy { $0 == .completed })
            #expect(state.lists["seen"]?.count == 300)
            await resumed.shutdown()
        }
    }
}
