import Foundation

/// Figure 8: commands over HTTP on loopback. A real `runlog serve` (the release binary named by
/// `$RUNLOG_BIN`, which tools/bench builds) on a fresh data directory, loaded by `wrk` with 64
/// connections, each request `POST /v1/workflows` (one command, one event). wrk runs on the same
/// two cores as the server, so the figure includes the load generator's share of the machine.
struct HTTPLoad {
    var connections = 64
    var duration = 10
    var repetitions = 3
    /// Each request with its own `Idempotency-Key` (the command and its kept answer).
    var idempotent = false
    /// A PostgreSQL log (`--store`) the servers share instead of a data directory's log.
    var store: String? = nil
    /// Servers on `store`, each with its own data directory; the connections are split among them,
    /// one wrk per server, all at once.
    var nodes = 1

    struct Result {
        var requestsPerSecond: Double
        var p50: Double
        var p99: Double
        var errors: Int
    }

    func run(_ temp: TempDirs) async throws -> [Result] {
        guard let binary = ProcessInfo.processInfo.environment["RUNLOG_BIN"] else {
            throw BenchError("figure 8 needs $RUNLOG_BIN (the release runlog binary); run it through tools/bench")
        }
        let directory = try temp.make(store == nil ? "http" : "http-postgres")
        let storeArguments = store.map { ["--store", $0] } ?? []
        let key = try Self.output(binary, ["keys", "create", "--role", "service", "--data-dir",
                                           store == nil ? directory : directory + "/admin"] + storeArguments)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var servers: [Process] = []
        defer {
            for server in servers { server.terminate() }
            for server in servers { server.waitUntilExit() }
        }
        var urls: [String] = []
        for node in 0..<(store == nil ? 1 : max(1, nodes)) {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: binary)
            server.arguments = ["serve", "--data-dir", store == nil ? directory : directory + "/node-\(node)", "--port", "0",
                                "--rate-limit", "0", "--log-level", "error"] + storeArguments
            let out = Pipe()
            server.standardOutput = out
            server.standardError = FileHandle.nullDevice
            try server.run()
            servers.append(server)
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { throw BenchError("runlog serve exited before listening") }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard let url = text.split(separator: "\n").first?.split(separator: " ").last else {
                throw BenchError("unexpected first line from runlog serve: \(text)")
            }
            urls.append(String(url))
        }
        let script = directory + "/post.lua"
        // With `idempotent`, every request a new key: a per-thread random prefix and a counter.
        let keys = idempotent ? """

            counter = 0
            math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
            prefix = tostring(math.random(1, 1000000000))
            request = function()
              counter = counter + 1
              wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter
              return wrk.format(nil, nil, nil, nil)
            end
            """ : ""
        try ("""
            wrk.method = "POST"
            wrk.body = '{"name": "bench"}'
            wrk.headers["Content-Type"] = "application/json"
            wrk.headers["Authorization"] = "Bearer \(key)"
            """ + keys).write(toFile: script, atomically: true, encoding: .utf8)
        let targets = urls.map { "\($0)/v1/workflows" }
        let each = max(1, connections / targets.count)
        _ = try await Self.wrk(targets, ["-t\(min(2, each))", "-c\(each)", "-d2s", "-s", script])  // warm-up
        var results: [Result] = []
        for _ in 0..<repetitions {
            let reports = try await Self.wrk(targets, ["-t\(min(2, each))", "-c\(each)", "-d\(duration)s", "--latency", "-s", script])
            let parsed = try reports.map(Self.parse)
            // The servers' sum; the median of their medians and the worst of their 99th percentiles.
            results.append(Result(requestsPerSecond: parsed.reduce(0) { $0 + $1.requestsPerSecond },
                                  p50: parsed.map(\.p50).sorted()[parsed.count / 2],
                                  p99: parsed.map(\.p99).max() ?? 0,
                                  errors: parsed.reduce(0) { $0 + $1.errors }))
        }
        return results
    }

    /// One wrk per target, all at once; their reports in the targets' order.
    static func wrk(_ targets: [String], _ arguments: [String]) async throws -> [String] {
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, target) in targets.enumerated() {
                group.addTask { (i, try Self.output("wrk", arguments + [target])) }
            }
            var reports = [String](repeating: "", count: targets.count)
            for try await (i, report) in group { reports[i] = report }
            return reports
        }
    }

    /// Requests/s, the 50% and 99% latencies (ms) and the non-2xx count from wrk's report.
    static func parse(_ report: String) throws -> Result {
        var rps: Double?
        var p50: Double?
        var p99: Double?
        var errors = 0
        for raw in report.split(separator: "\n") {
            let fields = raw.split(separator: " ", omittingEmptySubsequences: true)
            if raw.hasPrefix("Requests/sec:"), let value = fields.last.flatMap({ Double($0) }) { rps = value }
            if fields.first == "50.000%" || fields.first == "50%" { p50 = fields.last.flatMap(milliseconds) }
            if fields.first == "99.000%" || fields.first == "99%" { p99 = fields.last.flatMap(milliseconds) }
            if raw.contains("Non-2xx or 3xx responses:"), let value = fields.last.flatMap({ Int($0) }) { errors += value }
            if raw.contains("Socket errors:") { errors += fields.compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }.reduce(0, +) }
        }
        guard let rps, let p50, let p99 else { throw BenchError("cannot read wrk's report:\n\(report)") }
        return Result(requestsPerSecond: rps, p50: p50, p99: p99, errors: errors)
    }

    /// `"1.23ms"`, `"850.00us"`, `"1.20s"` → milliseconds.
    static func milliseconds(_ text: Substring) -> Double? {
        for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }

    /// Runs `command` and returns its standard output; with `killAfter`, kills it (SIGKILL) when
    /// it outlives that.
    static func output(_ command: String, _ arguments: [String], killAfter: Duration? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [command] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let watchdog = killAfter.map { limit in
            let kill = DispatchWorkItem { Foundation.kill(process.processIdentifier, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + limit.seconds, execute: kill)
            return kill
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog?.cancel()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(command) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
