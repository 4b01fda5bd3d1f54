// Tests of how the engine schedules runs: the real-time queue ahead of a batch backlog, batch
// work yielding to real-time runs, and shutdown while runs execute.
@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
@testable import WorkflowModel
@testable import Workflows

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
