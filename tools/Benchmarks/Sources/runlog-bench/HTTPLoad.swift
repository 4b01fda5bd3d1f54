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
        let directory = try temp.make("http")
        let key = try Self.output(binary, ["keys", "create", "--role", "service", "--data-dir", directory])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: binary)
        server.arguments = ["serve", "--data-dir", directory, "--port", "0", "--rate-limit", "0", "--log-level", "warning"]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
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
        let target = "\(url)/v1/workflows"
        _ = try Self.output("wrk", ["-t2", "-c\(connections)", "-d2s", "-s", script, target])  // warm-up
        var results: [Result] = []
        for _ in 0..<repetitions {
            let report = try Self.output("wrk", ["-t2", "-c\(connections)", "-d\(duration)s", "--latency", "-s", script, target])
            results.append(try Self.parse(report))
        }
        return results
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

    static func output(_ command: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [command] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(command) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
