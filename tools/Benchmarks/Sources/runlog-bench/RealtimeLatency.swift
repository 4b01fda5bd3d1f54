// Figure 7: real-time run latency, idle and under a batch backlog.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import WorkflowModel
import Workflows

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
