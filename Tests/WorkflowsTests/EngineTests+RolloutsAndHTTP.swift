// Workflow engine tests of staged rollouts, the daily run quota (with a manual clock), and
// http_request steps: recorded once, never repeated on replay, retried with one idempotency key.
@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
@testable import WorkflowModel
@testable import Workflows

extension EngineTests {
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
