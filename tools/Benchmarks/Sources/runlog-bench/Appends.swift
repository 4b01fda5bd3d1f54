import BenchLMDB
import EventLog
import LMDBStore

/// Latencies (ms) and throughput of a series of durable appends of one event each.
struct AppendRun {
    var events: Int
    var elapsed: Duration
    /// Sorted, in milliseconds.
    var latencies: [Double]
    /// LMDB write transactions (each one fsync) the measured appends took.
    var commits: Int

    var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    var p50: Double { percentile(latencies, 50) }
    var p99: Double { percentile(latencies, 99) }
    var max: Double { latencies.last ?? 0 }
    var eventsPerCommit: Double { Double(events) / Double(Swift.max(commits, 1)) }
}

/// The id of the last committed LMDB write transaction in `directory` (one per commit), read
/// with the store closed: LMDB must not be open twice in one process.
func lastTransactionId(_ directory: String) throws -> Int {
    let env = try RawLMDB(path: directory, readOnly: true)
    defer { env.close() }
    var info = MDB_envinfo()
    try RawLMDB.check(mdb_env_info(env.env, &info), "mdb_env_info")
    return Int(info.me_last_txnid)
}

/// One task appending one event per call to its own stream, awaiting each append.
struct SingleAppender {
    var warmup: Int
    var count: Int

    func run(_ temp: TempDirs) async throws -> AppendRun {
        let dir = try temp.make("single")
        defer { temp.remove(dir) }
        let stream = Workload.stream("single", 0)
        let clock = ContinuousClock()

        // Warm up, then reopen, so the commits of the measured part can be counted.
        let warm = try LMDBEventStore(directory: dir)
        for i in 0..<warmup {
            try await warm.append(to: stream, [Workload.event(i)])
        }
        warm.close()
        let firstTxn = try lastTransactionId(dir)

        let store = try LMDBEventStore(directory: dir)
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        let start = clock.now
        for i in 0..<count {
            let events = [Workload.event(warmup + i)]
            let t0 = clock.now
            try await store.append(to: stream, events)
            latencies.append((clock.now - t0).milliseconds)
        }
        let elapsed = clock.now - start
        store.close()
        let commits = try lastTransactionId(dir) - firstTxn
        return AppendRun(events: count, elapsed: elapsed, latencies: latencies.sorted(), commits: commits)
    }
}

/// `appenders` tasks in a task group, each appending one event per call to its own stream.
struct ConcurrentAppenders {
    var appenders: Int
    /// Events per task during the warm-up.
    var warmupPerTask: Int
    /// Events in total (split evenly over the tasks), unless `maxDuration` passes first.
    var total: Int
    var maxDuration: Duration

    func run(_ temp: TempDirs) async throws -> AppendRun {
        let dir = try temp.make("concurrent")
        defer { temp.remove(dir) }
        let clock = ContinuousClock()

        // Warm up, then reopen, so the commits of the measured part can be counted.
        let warm = try LMDBEventStore(directory: dir)
        _ = try await Self.appendConcurrently(
            warm, appenders: appenders, perTask: warmupPerTask, deadline: clock.now + .seconds(30)
        )
        warm.close()
        let firstTxn = try lastTransactionId(dir)

        let store = try LMDBEventStore(directory: dir)
        let perTask = (total + appenders - 1) / appenders
        let start = clock.now
        let latencies = try await Self.appendConcurrently(
            store, appenders: appenders, perTask: perTask, deadline: start + maxDuration
        )
        let elapsed = clock.now - start
        store.close()
        let commits = try lastTransactionId(dir) - firstTxn
        return AppendRun(
            events: latencies.count, elapsed: elapsed, latencies: latencies.sorted(), commits: commits
        )
    }

    /// Runs the tasks; returns every append's latency in milliseconds.
    private static func appendConcurrently(
        _ store: LMDBEventStore, appenders: Int, perTask: Int, deadline: ContinuousClock.Instant
    ) async throws -> [Double] {
        try await withThrowingTaskGroup(of: [Double].self) { group in
            for task in 0..<appenders {
                group.addTask {
                    let clock = ContinuousClock()
                    let stream = Workload.stream("appender", task)
                    var latencies: [Double] = []
                    latencies.reserveCapacity(perTask)
                    var i = 0
                    while i < perTask && clock.now < deadline {
                        let events = [Workload.event(task * 1_000_000 + i)]
                        let t0 = clock.now
                        try await store.append(to: stream, events)
                        latencies.append((clock.now - t0).milliseconds)
                        i += 1
                    }
                    return latencies
                }
            }
            var all: [Double] = []
            for try await latencies in group { all.append(contentsOf: latencies) }
            return all
        }
    }
}
