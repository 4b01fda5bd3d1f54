import EventLog
import LMDBStore

/// Builds a log of `events` events (appends of `batch` events each, round-robin over `streams`
/// streams), then times full `forEach` passes over it.
struct Replay {
    var events: Int
    var batch = 1_000
    var streams = 8
    var passes: Int

    struct Build {
        var events: Int
        var elapsed: Duration
        var stats: LogStats
        var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    }

    struct Pass {
        var events: Int
        var elapsed: Duration
        var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    }

    func run(
        _ temp: TempDirs,
        built: (Build) -> Void,
        passed: (Int, Pass) -> Void
    ) async throws -> [Pass] {
        let dir = try temp.make("replay")
        defer { temp.remove(dir) }
        let store = try LMDBEventStore(directory: dir)
        defer { store.close() }
        let clock = ContinuousClock()

        let start = clock.now
        var appended = 0
        var call = 0
        while appended < events {
            let n = min(batch, events - appended)
            let base = appended
            let newEvents = (0..<n).map { Workload.event(base + $0) }
            try await store.append(to: Workload.stream("replay", call % streams), newEvents)
            appended += n
            call += 1
        }
        let buildTime = clock.now - start
        let stats = try store.stats()
        guard stats.eventCount == UInt64(events) else {
            throw BenchError("the replay log holds \(stats.eventCount) events, expected \(events)")
        }
        built(Build(events: events, elapsed: buildTime, stats: stats))

        var results: [Pass] = []
        for pass in 1...passes {
            var seen = 0
            let t0 = clock.now
            try store.forEach(from: 1) { _ in
                seen += 1
                return true
            }
            let elapsed = clock.now - t0
            guard seen == events else {
                throw BenchError("replay pass \(pass) saw \(seen) events, expected \(events)")
            }
            let result = Pass(events: seen, elapsed: elapsed)
            passed(pass, result)
            results.append(result)
        }
        return results
    }
}
