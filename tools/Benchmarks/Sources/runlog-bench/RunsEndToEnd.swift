// Figure 5: workflow runs end to end.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import WorkflowModel
import Workflows

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
