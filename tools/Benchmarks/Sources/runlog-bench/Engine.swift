import EventStore
import Foundation
import Synchronization
import Workflows

/// A fresh store with a started `WorkflowEngine` on it, in a temp directory.
final class EngineHarness: Sendable {
    let dir: String
    let store: EventStore
    let engine: WorkflowEngine

    init(_ temp: TempDirs, _ name: String, configuration: EngineConfiguration = EngineConfiguration()) async throws {
        dir = try temp.make(name)
        store = try EventStore(directory: dir)
        engine = try WorkflowEngine(store: store, configuration: configuration)
        await engine.start()
    }

    /// Stops the engine (queued runs stay queued) and closes the store.
    func close() async {
        await engine.shutdown()
        store.close()
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
        var waiting: [String: CheckedContinuation<Seen?, Never>] = [:]
        var last: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(store: EventStore, from position: UInt64) {
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
                            s.last = now
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
    var count: Int { state.withLock { $0.seen.count } }
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

// MARK: 5. Runs end to end

/// `tasks` tasks start `runs` runs of `Flows.api` on the real-time queue, each task awaiting each
/// `startRun`; the figure runs from the first call until the last run is seen completed.
struct RunsEndToEnd {
    var runs: Int
    var tasks: Int

    struct Pass {
        var runs: Int
        /// First `startRun` call → last completion seen in the log.
        var elapsed: Duration
        /// First `startRun` call → last `startRun` returned.
        var creation: Duration
        /// Sorted ms: `startRun` call → `run.completed` seen by a log subscriber.
        var latencies: [Double]
        /// Sorted ms: `finishedAt − createdAt` of the run (commit timestamps, whole ms).
        var commitLatencies: [Double]
        /// Sorted ms: how long `startRun` took to return (durable `run.created` + read model caught up).
        var startLatencies: [Double]
        var events: Int
        var commits: Int
        var runsPerSecond: Double { Double(runs) / elapsed.seconds }
        var p50: Double { percentile(latencies, 50) }
        var p99: Double { percentile(latencies, 99) }
    }

    /// One pass on the harness's engine (which may already hold earlier passes' runs).
    func pass(_ h: EngineHarness, workflowId: String, offset: Int) async throws -> Pass {
        let store = h.store
        let engine = h.engine
        let headBefore = try store.head().position
        let statsBefore = store.writerStatistics
        let watcher = CompletionWatcher(store: store, from: headBefore + 1)
        defer { watcher.stop() }
        let (runs, tasks) = (self.runs, self.tasks)

        let clock = ContinuousClock()
        let start = clock.now
        let started = try await withThrowingTaskGroup(of: [(String, ContinuousClock.Instant, Double)].self) { group in
            for t in 0..<tasks {
                let count = runs / tasks + (t < runs % tasks ? 1 : 0)
                group.addTask {
                    var mine: [(String, ContinuousClock.Instant, Double)] = []
                    mine.reserveCapacity(count)
                    for i in 0..<count {
                        let t0 = ContinuousClock.now
                        let run = try await engine.startRun(
                            workflowId: workflowId, parameters: Flows.parameters(offset + t + i * tasks), queue: .realtime
                        )
                        mine.append((run.id, t0, (ContinuousClock.now - t0).milliseconds))
                    }
                    return mine
                }
            }
            var all: [(String, ContinuousClock.Instant, Double)] = []
            for try await mine in group { all.append(contentsOf: mine) }
            return all
        }
        let creation = clock.now - start
        guard await watcher.wait(count: runs, timeout: .seconds(300)) else {
            throw BenchError("[5] only \(watcher.count) of \(runs) runs finished within 300 s")
        }
        let elapsed = (watcher.last ?? clock.now) - start
        guard await engine.waitUntilIdle(timeout: .seconds(60)) else {
            throw BenchError("[5] the engine did not become idle after every run finished")
        }

        let snapshot = await engine.snapshot
        var latencies: [Double] = []
        var commitLatencies: [Double] = []
        latencies.reserveCapacity(runs)
        commitLatencies.reserveCapacity(runs)
        for (id, t0, _) in started {
            guard let run = snapshot.runs[id] else { throw BenchError("[5] run \(id) is missing from the read models") }
            guard run.status == .completed, let finished = run.finishedAt else {
                throw BenchError("[5] run \(id) ended \(run.status.rawValue): \(run.failure ?? "-")")
            }
            guard let seen = watcher.seen(id), seen.completed else { throw BenchError("[5] run \(id) was not seen completing") }
            latencies.append((seen.at - t0).milliseconds)
            commitLatencies.append(Double(finished - run.createdAt))
        }
        let statsAfter = store.writerStatistics
        return Pass(
            runs: runs, elapsed: elapsed, creation: creation, latencies: latencies.sorted(),
            commitLatencies: commitLatencies.sorted(), startLatencies: started.map(\.2).sorted(),
            events: Int(try store.head().position - headBefore),
            commits: Int(statsAfter.commits - statsBefore.commits)
        )
    }
}

// MARK: 6. Full projection rebuild

/// Adds workflow edits and object events (through `postEvent`, starting event-triggered runs) to
/// a log that already holds API runs, then times `WorkflowsState.rebuild(from:)` over all of it.
struct Rebuild {
    /// `postEvent` calls (on half as many objects: two events each).
    var objectEvents: Int
    var tasks = 16
    var passes: Int

    struct Mix {
        var added: Int
        var elapsed: Duration
        var runsStarted: Int
    }

    struct Pass {
        var events: Int
        var elapsed: Duration
        var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    }

    /// Where a rebuild's time goes: the same log scanned with more and more of the work.
    struct Breakdown {
        /// `store.forEach` doing nothing: LMDB read + envelope decode + copy out.
        var read: Duration
        /// … plus `DomainEvent.decode` (JSONDecoder) of every payload.
        var decode: Duration
        /// The event count by type prefix (`run`, `object`, `workflow`, `list`).
        var byDomain: [String: Int]
        var payloadBytes: Int
    }

    /// Workflow edits (drafts, publishes, a rollout), then `objectEvents` object events from
    /// `tasks` tasks; waits until every run they started has finished.
    func addMix(_ h: EngineHarness) async throws -> Mix {
        let engine = h.engine
        let clock = ContinuousClock()
        let start = clock.now
        let headBefore = try h.store.head().position
        _ = try await Flows.activate(engine, name: "screen inquiries", Flows.event)
        // Version history: an API workflow edited and published 20 times, then a rollout promoted.
        let edited = try await Flows.activate(engine, name: "edited", Flows.api)
        for v in 2...20 {
            let definition = try JSONValue(parsing: Flows.api.replacingOccurrences(of: "seen-ips", with: "ips-\(v)"))
            _ = try await engine.saveDraft(workflowId: edited, definition: definition, expectedDraftVersion: v - 1)
            if v < 20 {
                _ = try await engine.publish(workflowId: edited, description: "v\(v)", activate: true, actor: "bench")
            } else {
                _ = try await engine.publish(workflowId: edited, description: "v\(v)", rolloutPercentage: 50, actor: "bench")
            }
        }
        for n in 0..<200 {
            _ = try await engine.startRun(workflowId: edited, parameters: Flows.parameters(n))
        }
        _ = try await engine.setRolloutPercentage(workflowId: edited, percentage: 100)

        let (total, tasks) = (objectEvents, self.tasks)
        let objects = max(1, total / 2)
        let runsStarted = try await withThrowingTaskGroup(of: Int.self) { group in
            for t in 0..<tasks {
                let count = total / tasks + (t < total % tasks ? 1 : 0)
                group.addTask {
                    var runs = 0
                    for i in 0..<count {
                        let n = t + i * tasks
                        let posted = try await engine.postEvent(
                            objectType: "inquiry", objectToken: "inq-\(n % objects)", eventType: "inquiry.completed",
                            data: ["score": .integer(Int64(n % 100)), "country": "DE", "ip": Flows.parameters(n)["ip"]!],
                            queue: .batch
                        )
                        runs += posted.runIds.count
                    }
                    return runs
                }
            }
            var runs = 0
            for try await n in group { runs += n }
            return runs
        }
        guard await engine.waitUntilIdle(timeout: .seconds(300)) else {
            throw BenchError("[6] the runs started by object events did not finish within 300 s")
        }
        return Mix(added: Int(try h.store.head().position - headBefore), elapsed: clock.now - start, runsStarted: runsStarted)
    }

    func rebuild(_ store: EventStore) throws -> (WorkflowsState, Pass) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let state = try WorkflowsState.rebuild(from: store)
        let elapsed = clock.now - t0
        return (state, Pass(events: Int(state.position), elapsed: elapsed))
    }

    func breakdown(_ store: EventStore) throws -> Breakdown {
        let clock = ContinuousClock()
        var byDomain: [String: Int] = [:]
        var payloadBytes = 0
        var t0 = clock.now
        try store.forEach(from: 1) { event in
            payloadBytes &+= event.payload.count
            return true
        }
        let read = clock.now - t0
        t0 = clock.now
        try store.forEach(from: 1) { event in
            _ = try DomainEvent.decode(type: event.type, payload: event.payload)
            return true
        }
        let decode = clock.now - t0
        try store.forEach(from: 1) { event in
            byDomain[String(event.type.prefix { $0 != "." }), default: 0] += 1
            return true
        }
        return Breakdown(read: read, decode: decode, byDomain: byDomain, payloadBytes: payloadBytes)
    }
}

// MARK: 7. Real-time latency under a batch backlog

/// With the default configuration (1 real-time-only worker + 3 shared), the latency of real-time
/// runs started one at a time — each from its `startRun` call to its `run.completed` seen in the
/// log — when idle, and again while a batch backlog is created and drains.
struct RealtimeLatency {
    var warmup = 20
    var samples: Int
    var backlog: Int
    var creators = 4
    var creationLimit: Duration

    struct Sample {
        var latency: Double
        /// Batch runs created and not yet finished when this sample finished.
        var pending: Int
    }

    struct Result {
        /// Sorted ms.
        var idle: [Double]
        var idleCommit: [Double]
        /// Sorted ms of the samples taken with batch runs pending.
        var loaded: [Double]
        var loadedCommit: [Double]
        var pendingAtStart: Int
        var pendingAtEnd: Int
        var maxPending: Int
        var batchCreated: Int
        var batchFinished: Int
        var window: Duration
        var discarded: Int
    }

    func run(_ temp: TempDirs) async throws -> Result {
        let h = try await EngineHarness(temp, "latency")
        let engine = h.engine
        let store = h.store
        let workflowId = try await Flows.activate(engine, name: "realtime", Flows.api)
        let watcher = CompletionWatcher(store: store, from: try store.head().position + 1)
        defer { watcher.stop() }
        var n = 0

        func sample() async throws -> (id: String, ms: Double) {
            let t0 = ContinuousClock.now
            let run = try await engine.startRun(workflowId: workflowId, parameters: Flows.parameters(n), queue: .realtime)
            n += 1
            guard let seen = await watcher.wait(for: run.id, timeout: .seconds(60)) else {
                throw BenchError("[7] real-time run \(run.id) did not finish within 60 s")
            }
            guard seen.completed else { throw BenchError("[7] real-time run \(run.id) failed") }
            return (run.id, (seen.at - t0).milliseconds)
        }

        for _ in 0..<warmup { _ = try await sample() }
        var idle: [(String, Double)] = []
        for _ in 0..<samples { idle.append(try await sample()) }

        // The backlog: `creators` tasks start batch runs until `backlog` exist or time is up.
        let created = Counter()
        let stop = Counter()
        let (backlog, creators, limit) = (self.backlog, self.creators, self.creationLimit)
        let finishedBefore = watcher.count
        let creating = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let deadline = ContinuousClock.now + limit
                for c in 0..<creators {
                    group.addTask {
                        var i = 0
                        while stop.value == 0 && ContinuousClock.now < deadline {
                            guard created.increment() < backlog else { break }
                            _ = try await engine.startRun(
                                workflowId: workflowId, parameters: Flows.parameters(1_000_000 + c + i * creators),
                                queue: .batch
                            )
                            i += 1
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var realtimeFinished = samples + warmup
        func pending() -> Int {
            min(created.value, backlog) - (watcher.count - finishedBefore - (realtimeFinished - samples - warmup))
        }
        // Start sampling once a backlog has built up.
        let buildUp = ContinuousClock.now
        while pending() < min(1_000, backlog / 10) && ContinuousClock.now - buildUp < .seconds(5) {
            try await Task.sleep(for: .milliseconds(5))
        }
        let pendingAtStart = pending()
        var maxPending = pendingAtStart
        var loaded: [(String, Double)] = []
        var discarded = 0
        let windowStart = ContinuousClock.now
        while loaded.count < samples {
            let s = try await sample()
            realtimeFinished += 1
            let p = pending()
            maxPending = max(maxPending, p)
            if p > 0 {
                loaded.append(s)
            } else {
                discarded += 1
                break // drained: the rest would be idle samples
            }
        }
        let window = ContinuousClock.now - windowStart
        let pendingAtEnd = pending()
        let batchFinished = watcher.count - finishedBefore - (realtimeFinished - samples - warmup)
        stop.increment()
        _ = await creating.result
        let batchCreated = min(created.value, backlog)

        let snapshot = await engine.snapshot
        func commitLatencies(_ ids: [(String, Double)]) -> [Double] {
            ids.compactMap { id, _ in
                snapshot.runs[id].flatMap { run in run.finishedAt.map { Double($0 - run.createdAt) } }
            }.sorted()
        }
        let result = Result(
            idle: idle.map(\.1).sorted(), idleCommit: commitLatencies(idle),
            loaded: loaded.map(\.1).sorted(), loadedCommit: commitLatencies(loaded),
            pendingAtStart: pendingAtStart, pendingAtEnd: pendingAtEnd, maxPending: maxPending,
            batchCreated: batchCreated, batchFinished: batchFinished, window: window, discarded: discarded
        )
        watcher.stop()
        await h.close()
        temp.remove(h.dir)
        return result
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
