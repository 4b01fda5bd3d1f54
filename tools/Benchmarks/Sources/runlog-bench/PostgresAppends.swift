// Figure 11: durable appends to the PostgreSQL log, against a Message DB-style write on the same
// server in the same run.
import EventLog
import Foundation
import Logging
import PostgresNIO
import PostgresStore

extension Bench {
    /// 11. The PostgreSQL log: 1 and 64 appenders, and the reference.
    static func postgresAppends(_ s: Settings, total: Int, summary: inout [[String]]) async throws {
        say()
        guard let url = ProcessInfo.processInfo.environment["RUNLOG_BENCH_POSTGRES"] else {
            say("[11/\(total)] PostgreSQL log: skipped, RUNLOG_BENCH_POSTGRES is not set (tools/bench starts a server)")
            return
        }
        let duration: Duration = s.quick ? .seconds(1) : .seconds(5)
        say("[11/\(total)] PostgreSQL log (PostgresLog, group commit per node): tasks appending one event each to their own "
            + "stream for \(fixed(duration.seconds, 0)) s, fresh schema per run, \(s.repetitions) runs;")
        say("      reference: a Message DB-style write under pgbench with 64 clients (advisory lock on the stream, its last "
            + "position, one insert into a messages table with a global sequence) on the same server")
        var rates: [Int: [Double]] = [:]
        var latencies: [Duration] = []
        for run in 0..<s.repetitions {
            for appenders in [1, 64] {
                let r = try await postgresRun(url: url, schema: "bench_\(run)_\(appenders)", appenders: appenders,
                                              duration: duration)
                rates[appenders, default: []].append(r.rate)
                latencies += r.latencies
                let sorted = r.latencies.sorted()
                let each = sorted.isEmpty ? "" : ", p50 \(ms(sorted[sorted.count / 2].seconds * 1000)), "
                    + "p99 \(ms(sorted[min(sorted.count - 1, sorted.count * 99 / 100)].seconds * 1000))"
                say("  run \(run + 1), \(appenders) appender\(appenders == 1 ? "" : "s"): \(rate(r.rate))\(each), "
                    + "\(fixed(r.perCommit, 1)) appends per transaction")
            }
        }
        let reference = try await messageDBReference(url: url, clients: 64, duration: duration)
        say("  reference, a Message DB-style write under pgbench, 64 clients: \(rate(reference))")
        let single = median(rates[1] ?? [])
        let many = median(rates[64] ?? [])
        let ratio = many / max(reference, 1)
        latencies.sort()
        let p50 = latencies.isEmpty ? 0 : latencies[latencies.count / 2].seconds * 1000
        let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count * 99 / 100)].seconds * 1000
        summary.append(["[11] PostgreSQL log, 1 appender", "\(rate(single)), p50 \(ms(p50)), p99 \(ms(p99))", "-", "-"])
        summary.append(["[11] PostgreSQL log, 64 appenders", "\(rate(many)) (\(fixed(ratio, 2))× the reference)",
                        ">= 3× Message DB-style", status(ratio >= 3)])
        summary.append(["[11] … Message DB-style write, pgbench 64 clients (reference)", rate(reference), "-", "-"])
    }

    /// 12. HTTP commands through `runlog serve` nodes on one PostgreSQL log.
    static func postgresHTTP(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        guard let url = ProcessInfo.processInfo.environment["RUNLOG_BENCH_POSTGRES"] else {
            say("[12/\(total)] HTTP commands on PostgreSQL: skipped, RUNLOG_BENCH_POSTGRES is not set (tools/bench starts a server)")
            return
        }
        var load = HTTPLoad(duration: s.quick ? 2 : 10, repetitions: s.quick ? 1 : s.repetitions)
        say("[12/\(total)] HTTP commands through runlog serve nodes on one PostgreSQL log (--store, a fresh schema each), "
            + "as [8]: \(load.connections) connections split among the nodes, one wrk per node at once,")
        say("      \(load.duration) s × \(load.repetitions) after a 2 s warm-up; the nodes, PostgreSQL and wrk share the 2 cores")
        for nodes in [1, 3] {
            load.store = url + (url.contains("?") ? "&" : "?") + "schema=bench_http_\(nodes)_\(UInt32.random(in: 0...UInt32.max))"
            load.nodes = nodes
            let results = try await load.run(temp)
            for (i, r) in results.enumerated() {
                say("  \(nodes) node\(nodes == 1 ? "" : "s"), run \(i + 1): \(grouped(r.requestsPerSecond)) commands/s, "
                    + "p50 \(ms(r.p50)), p99 \(ms(r.p99)), \(r.errors) errors")
            }
            summary.append(["[12] HTTP commands on PostgreSQL, \(nodes) node\(nodes == 1 ? "" : "s")",
                            grouped(median(results.map(\.requestsPerSecond))) + " commands/s",
                            "-", "-"])
            summary.append(["[12] … latency p50 / p99", "\(ms(median(results.map(\.p50)))) / \(ms(median(results.map(\.p99))))",
                            "-", "-"])
        }
    }

    /// Appends from `appenders` tasks for `duration` into a fresh schema; events per second.
    static func postgresRun(url: String, schema: String, appenders: Int, duration: Duration) async throws
        -> (rate: Double, perCommit: Double, latencies: [Duration]) {
        let log = try PostgresLog(url: url, schema: schema)
        return try await withThrowingTaskGroup(of: (Double, Double, [Duration])?.self) { group in
            group.addTask {
                await log.run()
                return nil
            }
            try await log.migrate()
            let clock = ContinuousClock()
            let start = clock.now
            // Each append's time, from call to return (one appender's are kept: the latency figure).
            let (appended, latencies) = try await withThrowingTaskGroup(of: (Int, [Duration]).self) { tasks in
                for appender in 0..<appenders {
                    tasks.addTask {
                        var n = 0
                        var latencies: [Duration] = []
                        while clock.now - start < duration {
                            let began = clock.now
                            _ = try await log.append([StreamWrite(stream: Workload.stream("appender", appender),
                                                                  events: [Workload.event(n)])])
                            if appenders == 1 { latencies.append(clock.now - began) }
                            n += 1
                        }
                        return (n, latencies)
                    }
                }
                return try await tasks.reduce(into: (0, [Duration]())) { $0.0 += $1.0; $0.1 += $1.1 }
            }
            let elapsed = clock.now - start
            let statistics = log.writerStatistics
            try await log.client.query("DROP SCHEMA \(unescaped: schema) CASCADE")
            group.cancelAll()
            return (Double(appended) / elapsed.seconds, Double(statistics.requests) / Double(max(statistics.commits, 1)),
                    latencies)
        }!
    }

    /// Transactions per second of a Message DB-style append under pgbench: `clients` connections
    /// (2 threads), each appending to its own stream (an advisory lock on the stream, its last
    /// position, one insert into a `messages` table with a global sequence), for about `duration`.
    static func messageDBReference(url: String, clients: Int, duration: Duration) async throws -> Double {
        let schema = "bench_messagedb"
        try psql(url, """
            DROP SCHEMA IF EXISTS \(schema) CASCADE; CREATE SCHEMA \(schema);
            CREATE TABLE \(schema).messages (
                global_position bigserial PRIMARY KEY, position bigint NOT NULL, time timestamp NOT NULL DEFAULT now(),
                stream_name text NOT NULL, type text NOT NULL, data jsonb, metadata jsonb, id uuid NOT NULL UNIQUE);
            CREATE UNIQUE INDEX ON \(schema).messages (stream_name, position);
            """)
        defer { try? psql(url, "DROP SCHEMA \(schema) CASCADE") }
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("runlog-bench-messagedb-\(UUID()).sql").path
        try """
            BEGIN;
            SELECT pg_advisory_xact_lock(hashtext('appender-' || :client_id));
            INSERT INTO \(schema).messages (id, stream_name, type, position, data, metadata)
            SELECT gen_random_uuid(), 'appender-' || :client_id, 'bench.appended', coalesce(max(position), -1) + 1, '{"n":1}', '{}'
            FROM \(schema).messages WHERE stream_name = 'appender-' || :client_id;
            COMMIT;
            """.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        // A count of transactions per client, not -T: pgbench spawned from here never ended its -T
        // run (its timer signal, like SIGTERM, seems blocked in the mask a child inherits from this
        // process). About 55 transactions per client per second on this machine: some seconds.
        let seconds = max(1, Int(duration.seconds.rounded()))
        let report = try HTTPLoad.output(pgbench(), ["-n", "-f", script, "-c", "\(clients)", "-j", "2",
                                                     "-t", "\(seconds * 55)", url],
                                         killAfter: .seconds(seconds * 10 + 60))
        guard let line = report.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
              let tps = line.split(separator: " ").dropFirst(2).first.flatMap({ Double($0) }) else {
            throw BenchError("cannot read pgbench's report:\n\(report)")
        }
        return tps
    }

    /// pgbench of PostgreSQL 15 (Debian's path), else the one on PATH.
    static func pgbench() -> String {
        let debian = "/usr/lib/postgresql/15/bin/pgbench"
        return FileManager.default.isExecutableFile(atPath: debian) ? debian : "pgbench"
    }

    static func psql(_ url: String, _ sql: String) throws {
        _ = try HTTPLoad.output("psql", ["-q", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
    }
}
