import EventStore

/// Raw LMDB from Swift: a fresh environment with the default (durable) flags, commits of
/// `eventsPerCommit` appended puts under big-endian `UInt64` keys.
struct Baseline {
    struct Run {
        var events: Int
        var commits: Int
        var elapsed: Duration
        var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    }

    var eventsPerCommit = 1_000
    var valueBytes: Int
    var minDuration: Duration
    var minCommits: Int
    var maxDuration: Duration

    func run(_ temp: TempDirs) throws -> Run {
        let dir = try temp.make("baseline")
        defer { temp.remove(dir) }
        let env = try LMDBEnvironment(path: dir, mapSize: 64 << 30)
        defer { env.close() }
        let db = try env.openDatabase("events")
        // Varied bytes, as envelopes are (LMDB does not compress, but keep it honest).
        let value = (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let perCommit = eventsPerCommit

        var position: UInt64 = 0
        var commits = 0
        let clock = ContinuousClock()
        let start = clock.now
        var elapsed = Duration.zero
        repeat {
            try env.write { txn in
                try value.withUnsafeBytes { v in
                    for _ in 0..<perCommit {
                        position += 1
                        try withUnsafeBytes(of: position.bigEndian) { k in
                            try txn.put(db, k, v, append: true)
                        }
                    }
                }
            }
            commits += 1
            elapsed = clock.now - start
        } while (elapsed < minDuration || commits < minCommits) && elapsed < maxDuration
        return Run(events: Int(position), commits: commits, elapsed: elapsed)
    }
}
