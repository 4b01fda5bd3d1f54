import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import WorkflowModel
import Workflows

/// A fresh store with a started `WorkflowEngine` on it, in a temp directory.
final class EngineHarness: Sendable {
    let temp: TempDirs
    let dir: String
    let store: LMDBEventStore
    let engine: WorkflowEngine
    private let stopped = Counter()

    /// The engine's settings, with `RUNLOG_BENCH_SHARED_WORKERS=N` overriding the shared workers.
    static var defaultConfiguration: EngineConfiguration {
        var configuration = EngineConfiguration()
        if let text = ProcessInfo.processInfo.environment["RUNLOG_BENCH_SHARED_WORKERS"], let n = Int(text), n >= 0 {
            configuration.sharedWorkers = n
        }
        return configuration
    }

    init(_ temp: TempDirs, _ name: String, configuration: EngineConfiguration = EngineHarness.defaultConfiguration) async throws {
        self.temp = temp
        dir = try temp.make(name)
        store = try LMDBEventStore(directory: dir)
        engine = try await WorkflowEngine(store: store, configuration: configuration)
        await engine.start()
    }

    /// Waits until every queued run has finished, then stops the engine.
    ///
    /// Not sooner: `WorkflowEngine.shutdown()` can hang for ever when a worker is waiting for
    /// the read models to catch up with its append (`caughtUp(to:)`) as the log subscription is
    /// cancelled, because it resumes those waiters only after awaiting the workers' tasks. A
    /// watchdog turns a hang into an error anyway.
    func stopEngine() async throws {
        guard stopped.increment() == 0 else { return }
        guard await engine.waitUntilIdle(timeout: .seconds(300)) else {
            throw BenchError("the engine still had runs queued or executing after 300 s")
        }
        let returned = Counter()
        let (temp, engine, store) = (self.temp, self.engine, self.store)
        let watchdog = Task.detached {
            try? await Task.sleep(for: .seconds(30))
            guard !Task.isCancelled, returned.value == 0 else { return }
            let position = await engine.snapshot.position
            let head = (try? store.head().position) ?? 0
            let idle = await engine.waitUntilIdle(timeout: .milliseconds(100))
            FileHandle.standardError.write(Data(
                "runlog-bench: WorkflowEngine.shutdown() has not returned after 30 s (hung): read models at position \(position), log head \(head), idle \(idle); giving up\n".utf8))
            temp.removeAll()
            exit(1)
        }
        await engine.shutdown()
        returned.increment()
        watchdog.cancel()
    }

    /// Stops the engine (after its queues drain), closes the store and deletes its directory.
    func close() async throws {
        try await stopEngine()
        store.close()
        temp.remove(dir)
    }
}

/// The workflows the engine figures use.
enum Flows {
    /// API-triggered; one route of three steps that stay inside Runlog (no outside effect), so a
    /// run is decided and recorded in one append after its creation.
    static let api = #"""
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true}]}},
         "routes": [{"name": "all", "steps": [
            {"step_uid": "add", "type": "add_to_list", "parameters": {"list": "seen-ips", "path": "parameters.ip"}},
            {"step_uid": "rm", "type": "remove_from_list", "parameters": {"list": "seen-ips", "path": "parameters.ip"}},
            {"step_uid": "ok", "type": "approve"}]}]}
        """#

    /// Object-event-triggered, with criteria and two routes touching the object.
    static let event = #"""
        {"trigger": {"kind": "event", "event_type": "inquiry.completed", "criteria": {"event.data.score": {"$gte": 10}}},
         "routes": [{"name": "high", "condition": {"event.data.score": {"$gte": 80}},
                     "steps": [{"step_uid": "t", "type": "tag", "parameters": {"tags": ["review"]}},
                               {"step_uid": "d", "type": "decline", "parameters": {"reason": "score"}}]},
                    {"name": "else",
                     "steps": [{"step_uid": "t2", "type": "tag", "parameters": {"tags": ["seen"]}},
                               {"step_uid": "f", "type": "set_field", "parameters": {"field": "last_score", "path": "event.data.score"}},
                               {"step_uid": "a", "type": "approve"}]}]}
        """#

    /// Creates, saves, publishes and activates a workflow; returns its id.
    static func activate(_ engine: WorkflowEngine, name: String, _ definition: String) async throws -> String {
        let wf = try await engine.createWorkflow(name: name, actor: "bench")
        _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: definition),
                                       expectedDraftVersion: 0, actor: "bench")
        _ = try await engine.publish(workflowId: wf.id, description: "v1", activate: true, actor: "bench")
        return wf.id
    }

    /// The parameters of API run `i`: a distinct IP address.
    static func parameters(_ i: Int) -> JSONValue {
        ["ip": .string("10.\((i >> 16) & 255).\((i >> 8) & 255).\(i & 255)")]
    }
}

/// Follows the log from a position for `run.completed` / `run.failed` events (its own
/// subscription, as a client would) and notes when each was seen, so a run's latency can be
/// measured from its `startRun` call to its completion without polling the engine.
final class CompletionWatcher: Sendable {
    struct Seen: Sendable {
        var at: ContinuousClock.Instant
        var completed: Bool
    }

    private struct State {
        var seen: [String: Seen] = [:]
        /// With a `remember` limit: the ids in `seen`, oldest first, from `oldest` on.
        var order: [String] = []
        var oldest = 0
        var count = 0
        var waiting: [String: CheckedContinuation<Seen?, Never>] = [:]
        var last: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// `remember`: how many of the latest finished runs `seen(_:)` and `wait(for:)` can still find
    /// (nil: all). Figure 9 measures the process's memory per imported run, so its watcher keeps
    /// only the latest few thousand (a sample waits for its run right after creating it).
    init(store: LMDBEventStore, from position: UInt64, remember: Int? = nil) {
        let events = store.subscribe(from: position, filter: EventFilter(types: ["run.completed.v1", "run.failed.v1"]))
        task.withLock {
            $0 = Task { [self] in
                do {
                    for try await event in events {
                        let now = ContinuousClock.now
                        let seen = Seen(at: now, completed: event.type == "run.completed.v1")
                        let runId = String(event.stream.dropFirst(4)) // "run-<id>"
                        let waiter = state.withLock { s in
                            s.seen[runId] = seen
                            s.count += 1
                            s.last = now
                            if let remember {
                                s.order.append(runId)
                                if s.order.count - s.oldest > remember {
                                    s.seen.removeValue(forKey: s.order[s.oldest])
                                    s.oldest += 1
                                    if s.oldest >= remember {
                                        s.order.removeFirst(s.oldest)
                                        s.oldest = 0
                                    }
                                }
                            }
                            return s.waiting.removeValue(forKey: runId)
                        }
                        waiter?.resume(returning: seen)
                    }
                } catch {
                    // Cancelled.
                }
            }
        }
    }

    func stop() {
        task.withLock { $0?.cancel() }
        let waiters = state.withLock { s in
            defer { s.waiting.removeAll() }
            return Array(s.waiting.values)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// Runs seen finishing so far.
    var count: Int { state.withLock { $0.count } }
    /// When the last one was seen.
    var last: ContinuousClock.Instant? { state.withLock { $0.last } }

    func seen(_ runId: String) -> Seen? { state.withLock { $0.seen[runId] } }

    /// Waits until `runId` has been seen finishing (nil after `timeout`).
    func wait(for runId: String, timeout: Duration) async -> Seen? {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            state.withLock { $0.waiting.removeValue(forKey: runId) }?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Seen?, Never>) in
            let already: Seen?? = state.withLock { s in
                if let seen = s.seen[runId] { return .some(seen) }
                s.waiting[runId] = continuation
                return .none
            }
            if let already { continuation.resume(returning: already) }
        }
    }

    /// Waits until `count` runs have been seen finishing; false after `timeout`.
    func wait(count: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while self.count < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }
}

/// A shared counter.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .relaxed) }
    /// Adds one; returns the value before.
    @discardableResult
    func increment() -> Int { atomic.add(1, ordering: .relaxed).oldValue }
}
