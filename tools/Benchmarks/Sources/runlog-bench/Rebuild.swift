// Figure 6: the full projection rebuild, and where its time goes.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Synchronization
import WorkflowModel
import Workflows

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
