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

        let records = try engine.runs.runs(started.map(\.0))
        var latencies: [Double] = []
        var commitLatencies: [Double] = []
        latencies.reserveCapacity(runs)
        commitLatencies.reserveCapacity(runs)
        for ((id, t0, _), record) in zip(started, records) {
            guard let run = record else { throw BenchError("[5] run \(id) is missing from the run tables") }
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
        /// … plus `DomainEvent.decode` of every payload.
        var decode: Duration
        /// The event count by type prefix (`run`, `object`, `workflow`, `list`).
        var byDomain: [String: Int]
        var payloadBytes: Int
        /// Per event type: count, payload bytes and the time `DomainEvent.decode` took.
        var byType: [String: (count: Int, bytes: Int, decode: Duration)]
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

    /// Runs `runlog-bench --rebuild-child DIR PASSES` (this executable) and reads its passes.
    static func inFreshProcess(directory: String, passes: Int) throws -> [Pass] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--rebuild-child", directory, String(passes)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("[6] the fresh-process rebuild failed") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let events = Int(parts[0]), let seconds = Double(parts[1]) else { return nil }
            return Pass(events: events, elapsed: .nanoseconds(Int64(seconds * 1e9)))
        }
    }

    func rebuild(_ store: LMDBEventStore) throws -> (WorkflowsState, Pass) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let state = try WorkflowsState.rebuild(from: store, keepsRuns: false)
        let elapsed = clock.now - t0
        return (state, Pass(events: Int(state.position), elapsed: elapsed))
    }

    /// Builds a second copy of the run tables from the whole log, as the first start after an
    /// upgrade does, and returns it with the number of runs it holds.
    func buildRunTables(_ store: LMDBEventStore) async throws -> (runs: Int, pass: Pass) {
        let name = "runs-bench-\(UUID().uuidString.prefix(8))"
        let clock = ContinuousClock()
        let t0 = clock.now
        try await store.attach(RunsProjection(name: name))
        let elapsed = clock.now - t0
        let runs = try RunTables(store: store, projection: name).count()
        return (runs, Pass(events: Int(try store.head().position), elapsed: elapsed))
    }

    func breakdown(_ store: LMDBEventStore) throws -> Breakdown {
        let clock = ContinuousClock()
        var byDomain: [String: Int] = [:]
        var payloadBytes = 0
        var t0 = clock.now
        try store.forEach(from: 1) { event in
            payloadBytes &+= event.payload.count
            return true
        }
        let read = clock.now - t0
        var byType: [String: (count: Int, bytes: Int, decode: Duration)] = [:]
        t0 = clock.now
        try store.forEach(from: 1) { event in
            let start = clock.now
            _ = try DomainEvent.decode(type: event.type, payload: event.payload)
            let took = clock.now - start
            byType[event.type, default: (0, 0, .zero)].count += 1
            byType[event.type]!.bytes += event.payload.count
            byType[event.type]!.decode += took
            return true
        }
        let decode = clock.now - t0
        try store.forEach(from: 1) { event in
            byDomain[String(event.type.prefix { $0 != "." }), default: 0] += 1
            return true
        }
        return Breakdown(read: read, decode: decode, byDomain: byDomain, payloadBytes: payloadBytes, byType: byType)
    }
}

// MARK: 7. Real-time latency under a batch backlog

/// With the default configuration (1 real-time-only worker + 3 shared), the latency of real-time
/// runs started one at a time — each from its `startRun` call to its `run.completed` seen in the
/// log — when idle, while a batch backlog is being created (as by an import), and while it drains.
struct RealtimeLatency {
    var warmup = 20
    var samples: Int
    var backlog: Int
    var creators = 4
    var creationLimit: Duration

    /// Real-time samples of one phase.
    struct Phase {
        /// Sorted ms: `startRun` call → `run.completed` seen by a log subscriber.
        var latencies: [Double] = []
        /// Sorted whole ms: `finishedAt − createdAt`.
        var commit: [Double] = []
        /// Sorted ms: `startRun` call → its return (run created durably, read models caught up).
        var start: [Double] = []
        var pendingAtStart = 0
        var pendingAtEnd = 0
        var window: Duration = .zero
        /// Batch runs finished during the window.
        var batchFinished = 0
        /// True when the backlog drained before every sample was taken.
        var drained = false

        var p50: Double { percentile(latencies, 50) }
        var p99: Double { percentile(latencies, 99) }
    }

    struct Result {
        var idle: Phase
        var creating: Phase
        var draining: Phase
        var batchCreated: Int
        var creationTime: Duration
        var pendingAfterCreation: Int
        /// Batch runs still pending after the last sample, and how long they took to finish.
        var rest: Int
        var restDrainTime: Duration
    }

    func run(_ temp: TempDirs) async throws -> Result {
        let h = try await EngineHarness(temp, "latency")
        let engine = h.engine
        let store = h.store
        let workflowId = try await Flows.activate(engine, name: "realtime", Flows.api)
        let watcher = CompletionWatcher(store: store, from: try store.head().position + 1)
        defer { watcher.stop() }
        var n = 0
        var realtimeFinished = 0
        let created = Counter()
        let stop = Counter()
        let creationDone = Counter()
        let backlog = self.backlog
        /// Batch runs created (or being created) and not yet seen finishing.
        func pending() -> Int {
            min(created.value, backlog) - batchFinished()
        }
        /// The watcher sees every run finish; real-time runs are one at a time and seen before
        /// `sample()` returns, so the rest are batch runs.
        func batchFinished() -> Int {
            watcher.count - realtimeFinished
        }

        func sample() async throws -> (id: String, ms: Double, start: Double) {
            let t0 = ContinuousClock.now
            let run = try await engine.startRun(workflowId: workflowId, parameters: Flows.parameters(n), queue: .realtime)
            let started = (ContinuousClock.now - t0).milliseconds
            n += 1
            guard let seen = await watcher.wait(for: run.id, timeout: .seconds(60)) else {
                throw BenchError("[7] real-time run \(run.id) did not finish within 60 s")
            }
            guard seen.completed else { throw BenchError("[7] real-time run \(run.id) failed") }
            realtimeFinished += 1
            return (run.id, (seen.at - t0).milliseconds, started)
        }

        /// Up to `samples` samples; with `whilePending`, only while batch runs are pending, and
        /// with `whileCreating` only until the backlog's creation has ended.
        func measure(whilePending: Bool, whileCreating: Bool = false) async throws -> (Phase, [String]) {
            var phase = Phase()
            var ids: [String] = []
            phase.pendingAtStart = whilePending ? pending() : 0
            let finishedAtStart = whilePending ? batchFinished() : 0
            let start = ContinuousClock.now
            while phase.latencies.count < samples {
                if whilePending && pending() <= 0 {
                    phase.drained = true
                    break
                }
                if whileCreating && creationDone.value > 0 { break }
                let s = try await sample()
                phase.latencies.append(s.ms)
                phase.start.append(s.start)
                ids.append(s.id)
            }
            phase.window = ContinuousClock.now - start
            if whilePending {
                phase.pendingAtEnd = pending()
                phase.batchFinished = batchFinished() - finishedAtStart
            }
            phase.latencies.sort()
            phase.start.sort()
            return (phase, ids)
        }

        trace("[7] warm-up")
        for _ in 0..<warmup { _ = try await sample() }
        trace("[7] idle samples")
        var (idle, idleIds) = try await measure(whilePending: false)
        trace("[7] creating the backlog")

        // The backlog: `creators` tasks start batch runs until `backlog` exist or time is up.
        let (creators, limit) = (self.creators, self.creationLimit)
        let creationStart = ContinuousClock.now
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
            creationDone.increment()
            return ContinuousClock.now
        }
        // Sample while the backlog is being created, once some has built up.
        while pending() < min(1_000, backlog / 10) && ContinuousClock.now - creationStart < .seconds(5) {
            try await Task.sleep(for: .milliseconds(5))
        }
        trace("[7] samples while creating (pending \(pending()))")
        var (whileCreating, creatingIds) = try await measure(whilePending: true, whileCreating: true)
        trace("[7] waiting for the creation to end (pending \(pending()), created \(created.value))")
        // Then wait for the creation to end, and sample while the backlog drains.
        let creationEnd: ContinuousClock.Instant
        do {
            creationEnd = try await creating.value
        } catch {
            stop.increment()
            throw error
        }
        let pendingAfterCreation = pending()
        trace("[7] samples while draining (pending \(pendingAfterCreation))")
        var (whileDraining, drainingIds) = try await measure(whilePending: true)
        let batchCreated = min(created.value, backlog)

        trace("[7] snapshot (pending \(pending()))")
        func commitLatencies(_ ids: [String]) throws -> [Double] {
            try engine.runs.runs(ids).compactMap { record in
                record.flatMap { run in run.finishedAt.map { Double($0 - run.createdAt) } }
            }.sorted()
        }
        idle.commit = try commitLatencies(idleIds)
        whileCreating.commit = try commitLatencies(creatingIds)
        whileDraining.commit = try commitLatencies(drainingIds)
        // Let the rest of the backlog drain before stopping (see `EngineHarness.stopEngine`).
        let pendingAtDrain = pending()
        trace("[7] draining the rest (pending \(pendingAtDrain))")
        let drainStart = ContinuousClock.now
        guard await engine.waitUntilIdle(timeout: .seconds(300)) else {
            throw BenchError("[7] the batch backlog did not drain within 300 s")
        }
        let drainTime = ContinuousClock.now - drainStart
        watcher.stop()
        trace("[7] closing")
        try await h.close()
        trace("[7] closed")
        return Result(
            idle: idle, creating: whileCreating, draining: whileDraining, batchCreated: batchCreated,
            creationTime: creationEnd - creationStart, pendingAfterCreation: pendingAfterCreation,
            rest: pendingAtDrain, restDrainTime: drainTime
        )
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
