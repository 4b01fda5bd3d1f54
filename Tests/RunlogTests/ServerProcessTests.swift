import RunlogJSON
import AsyncHTTPClient
import EventLog
import LMDBStore
import Foundation
import NIOCore
import NIOHTTP1
import RunlogTestSupport
import Synchronization
import Testing
import WorkflowModel
import Workflows

/// A real `runlog serve` child process on a free loopback port.
struct ServerProcess {
    let child: ChildProcess
    let base: String

    static func start(_ directory: String, _ arguments: [String] = [], environment: [String: String]? = nil) async throws
        -> ServerProcess {
        let child = try ChildProcess(["serve", "--data-dir", directory, "--port", "0", "--rate-limit", "0"] + arguments,
                                     environment: environment)
        try await child.waitFor(timeout: .seconds(60)) { $0.contains { $0.hasPrefix("listening on http://") } }
        let line = child.output.first { $0.hasPrefix("listening on ") }!
        return ServerProcess(child: child, base: String(line.dropFirst("listening on ".count)))
    }

    /// Makes a key with `runlog keys create` (the server must not be running).
    static func makeKey(_ directory: String, role: String = "admin") async throws -> String {
        let made = try await ChildProcess.run(["keys", "create", "--data-dir", directory, "--role", role])
        guard made.status == 0, let key = made.stdout.first, key.hasPrefix("rlk_") else {
            throw TestFailure("keys create failed: \(made.stderr)")
        }
        return key
    }
}

/// One JSON request to a server; returns the status and the parsed body.
func request(_ base: String, _ method: HTTPMethod, _ path: String, key: String, json: JSONValue? = nil,
             headers: [(String, String)] = []) async throws -> (status: Int, json: JSONValue) {
    var request = HTTPClientRequest(url: base + path)
    request.method = method
    request.headers.add(name: "Authorization", value: "Bearer \(key)")
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let json {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json.jsonText))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 16 << 20)
    return (Int(response.status.code), (try? JSONValue(parsing: Array(body.readableBytesView))) ?? .null)
}

/// A switch that load clients poll.
final class RunningFlag: Sendable {
    private let on = Mutex(true)
    var isOn: Bool { on.withLock { $0 } }
    func stop() { on.withLock { $0 = false } }
}

@Suite("runlog serve (real processes)", .serialized)
struct ServerProcessTests {
    /// Reads the SSE feed until `stop` says so; returns the positions seen, in order.
    static func readFeed(_ base: String, key: String, lastEventID: UInt64?,
                         stop: @escaping @Sendable ([UInt64]) -> Bool) async throws -> [UInt64] {
        var request = HTTPClientRequest(url: base + "/v1/log/stream")
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: String(lastEventID)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
        var positions: [UInt64] = []
        var pending = ""
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let message = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                for line in message.split(separator: "\n") where line.hasPrefix("id: ") {
                    positions.append(UInt64(line.dropFirst(4))!)
                }
            }
            if stop(positions) { break }
        }
        return positions
    }

    @Test("the SSE feed resumes from Last-Event-ID with no gap and no repeat while commands are appended")
    func feedResumes() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        let base = server.base
        // Commands keep coming while the feed is read, cut and resumed.
        let writer = Task {
            for i in 0..<150 {
                let created = try await request(base, .POST, "/v1/workflows", key: key, json: ["name": .string("wf \(i)")])
                #expect(created.status == 201)
            }
        }
        let first = try await Self.readFeed(base, key: key, lastEventID: nil) { $0.count >= 40 }
        try await writer.value
        // One log line per request at the default level, with its metadata sorted by key, as
        // swift-log's stream handler writes it (through ServerLogHandler).
        func requestLines() -> [Substring] {
            server.child.errorOutput.split(separator: "\n").filter { $0.contains("POST /v1/workflows 201") }
        }
        // The child's standard error is read by a thread of this process: give it a moment.
        for _ in 0..<100 where requestLines().count < 150 { try await Task.sleep(for: .milliseconds(50)) }
        let lines = requestLines()
        #expect(lines.count == 150)
        #expect(lines.allSatisfy { line in
            guard let key = line.range(of: " key=key_"), let ms = line.range(of: " ms="),
                  let route = line.range(of: " route=/v1/workflows") else { return false }
            return key.lowerBound < ms.lowerBound && ms.lowerBound < route.lowerBound
        }, "\(lines.first ?? "")")
        let head = try #require(try await request(base, .GET, "/healthz", key: key).json["head_position"]?.numericValue)
        let rest = try await Self.readFeed(base, key: key, lastEventID: first.last) { $0.last.map { Double($0) >= head } ?? false }
        let all = first + rest
        #expect(all == Array(1...UInt64(head)), "positions must be contiguous: \(all.count) seen, head \(head)")
    }

    /// Sends commands from `clients` concurrent clients until told to stop; returns the ids of
    /// the workflows whose creation was acknowledged (201).
    static func load(_ base: String, key: String, clients: Int, running: RunningFlag) async -> [String] {
        await withTaskGroup(of: [String].self) { group in
            for c in 0..<clients {
                group.addTask {
                    var acknowledged: [String] = []
                    var i = 0
                    while running.isOn {
                        i += 1
                        guard let answer = try? await request(base, .POST, "/v1/workflows", key: key,
                                                              json: ["name": .string("load \(c)-\(i)")]) else { continue }
                        if answer.status == 201, let id = answer.json["id"]?.stringValue { acknowledged.append(id) }
                    }
                    return acknowledged
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Every acknowledged workflow has its creation event in the log, and the chain verifies.
    static func expectAllRecorded(_ dir: TemporaryDirectory, _ acknowledged: [String]) async throws {
        let store = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        let state = try WorkflowsState.rebuild(from: store)
        store.close()
        let missing = acknowledged.filter { state.workflows[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged workflows are missing")
        let verify = try await ChildProcess.run(["log", "verify", "--data-dir", dir.data])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    @Test("SIGTERM: the server finishes what is in flight, exits 0, and every acknowledged command is recorded")
    func gracefulShutdown() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        let running = RunningFlag()
        let base = server.base
        let load = Task { await Self.load(base, key: key, clients: 16, running: running) }
        try await Task.sleep(for: .milliseconds(1500))
        server.child.kill(SIGTERM)
        let status = await server.child.wait()
        running.stop()
        load.cancel()
        let acknowledged = await load.value
        #expect(status == 0, "stderr: \(server.child.errorOutput.suffix(2000))")
        #expect(acknowledged.count > 10)
        try await Self.expectAllRecorded(dir, acknowledged)
    }

    @Test("SIGKILL under load: after a restart every acknowledged command is there and the log verifies")
    func crashUnderLoad() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        var acknowledged: [String] = []
        for _ in 0..<2 {
            let server = try await ServerProcess.start(dir.data)
            let running = RunningFlag()
            let base = server.base
            let load = Task { await Self.load(base, key: key, clients: 16, running: running) }
            try await Task.sleep(for: .milliseconds(1200))
            server.child.kill(SIGKILL)
            _ = await server.child.wait()
            running.stop()
            // Requests cut by the kill are not acknowledged; don't wait for their timeouts.
            load.cancel()
            acknowledged += await load.value
        }
        // A restarted server serves every acknowledged workflow.
        let server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        for id in acknowledged.shuffled().prefix(50) {
            #expect(try await request(server.base, .GET, "/v1/workflows/\(id)", key: key).status == 200)
        }
        #expect(acknowledged.count > 10)
        try await Self.expectAllRecorded(dir, acknowledged)
    }

    @Test("admin commands: revert refuses the files while the server runs and works through --server")
    func revertThroughServer() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        let base = server.base
        let id = try #require(try await request(base, .POST, "/v1/workflows", key: key, json: ["name": "r"]).json["id"]?.stringValue)
        let definition = try JSONValue(parsing: #"""
            {"trigger": {"kind": "api", "schema": {"fields": []}}, "routes": [{"name": "a", "steps": [{"step_uid": "a", "type": "approve"}]}]}
            """#)
        #expect(try await request(base, .PUT, "/v1/workflows/\(id)/draft", key: key, json: definition).status == 200)
        #expect(try await request(base, .POST, "/v1/workflows/\(id)/versions", key: key, json: ["activate": true]).status == 201)
        let refused = try await ChildProcess.run(["workflows", "revert", id, "--to", "1", "--data-dir", dir.data])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--server"))
        let reverted = try await ChildProcess.run(["workflows", "revert", id, "--to", "1", "--activate",
                                                   "--server", base, "--key", key])
        #expect(reverted.status == 0, "\(reverted.stderr)")
        #expect(reverted.stdout.first?.contains("version 2 created from version 1 and activated") == true)
        let shown = try await ChildProcess.run(["workflows", "versions", id, "--data-dir", dir.data])
        #expect(shown.stdout.joined(separator: "\n").contains("Revert to version 1"))
        let made = try await ChildProcess.run(["keys", "create", "--role", "auditor", "--server", base, "--key", key])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.first?.hasPrefix("rlk_") == true)
    }
}

@Suite("importers (real processes)", .serialized)
struct ImporterProcessTests {
    static let definition = try! JSONValue(parsing: #"""
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true}]}},
         "routes": [{"name": "a", "steps": [{"step_uid": "a", "type": "approve"}]}]}
        """#)

    static func activeWorkflow(_ base: String, _ key: String) async throws -> String {
        let id = try #require(try await request(base, .POST, "/v1/workflows", key: key, json: ["name": "imp"]).json["id"]?.stringValue)
        #expect(try await request(base, .PUT, "/v1/workflows/\(id)/draft", key: key, json: definition).status == 200)
        #expect(try await request(base, .POST, "/v1/workflows/\(id)/versions", key: key, json: ["activate": true]).status == 201)
        return id
    }

    static func csv(rows: Int) -> String {
        var text = "ip\n"
        for i in 1...rows { text += "10.\(i / 65536).\((i / 256) % 256).\(i % 256)\n" }
        return text
    }

    /// The rows of the runs an importer run created, from the log.
    static func importedRows(_ dir: TemporaryDirectory, _ runId: String) throws -> [Int] {
        let store = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        defer { store.close() }
        // Only the events that create runs, scanned: a full rebuild of 200,000 runs takes a debug
        // build twenty seconds.
        var rows: [Int] = []
        try store.forEach(filter: EventFilter(types: ["run.created.v1", "run.batch_imported.v1"])) { event in
            switch try DomainEvent.decode(type: event.type, payload: event.payload) {
            case .runCreated(let created) where created.source.reference == runId:
                rows += created.source.row.map { [$0] } ?? []
            case .runsImported(let batch) where batch.importerRunId == runId:
                rows += batch.rows.map(\.row)
            default: break
            }
            return true
        }
        return rows
    }

    @Test("SIGKILL in the middle of an importer run: on restart it resumes, and every row has exactly one run")
    func crashAndResume() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        var server = try await ServerProcess.start(dir.data)
        // Long enough (about 7 s at the importer's rate here) that a poll lagging by seconds under a
        // loaded test run still finds the import running; 40,000 rows once finished before the kill.
        let rows = 200_000
        let wf = try await Self.activeWorkflow(server.base, key)
        let source = try await uploadCSV(server.base, key, Self.csv(rows: rows))
        let importer = try await request(server.base, .POST, "/v1/importers", key: key, json: [
            "name": "crash", "data_source_id": .string(source), "workflow_id": .string(wf), "mapping": ["columns": ["ip": "ip"]],
        ])
        let importerId = try #require(importer.json["id"]?.stringValue)
        let started = try await request(server.base, .POST, "/v1/importers/\(importerId)/runs", key: key)
        let runId = try #require(started.json["id"]?.stringValue)
        var created = 0.0
        // Killed as soon as the first runs are recorded.
        while created < 1 {
            let run = try await request(server.base, .GET, "/v1/import-runs/\(runId)", key: key).json
            created = run["progress"]?["runs_created"]?.numericValue ?? 0
            #expect(run["status"] == "running", "the run must still be running when the server is killed")
            if created < 1 { try await Task.sleep(for: .milliseconds(5)) }
        }
        server.child.kill(SIGKILL)
        _ = await server.child.wait()
        let before = try Self.importedRows(dir, runId)
        #expect(before.count < rows)
        server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        var status: JSONValue = .null
        let deadline = ContinuousClock.now + .seconds(240)
        while status["status"] != "completed" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            status = try await request(server.base, .GET, "/v1/import-runs/\(runId)", key: key).json
        }
        #expect(status["status"] == "completed")
        #expect(status["progress"]?["runs_created"]?.numericValue == Double(rows))
        server.child.kill(SIGTERM)
        _ = await server.child.wait()
        let after = try Self.importedRows(dir, runId)
        #expect(after.count == rows, "every row exactly once: \(after.count) runs for \(rows) rows")
        #expect(Set(after) == Set(1...rows))
        let verify = try await ChildProcess.run(["log", "verify", "--data-dir", dir.data])
        #expect(verify.status == 0)
    }

    @Test("runlog import: in process and through --server, with a plain summary when not on a terminal")
    func importCommand() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let file = dir.path + "/ips.csv"
        try (Self.csv(rows: 50) + "not-ip,extra\n").write(toFile: file, atomically: true, encoding: .utf8)
        var server = try await ServerProcess.start(dir.data)
        let wf = try await Self.activeWorkflow(server.base, key)
        let remote = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "ip=ip",
                                                 "--server", server.base, "--key", key])
        #expect(remote.status == 1, "one row errored: \(remote.stderr)")
        #expect(remote.stdout.contains("rows read 51, runs created 50, skipped 0, errored 1"), "\(remote.stdout)")
        #expect(remote.stdout.contains("  1 × the row has 2 fields; the header has 1"))
        let dry = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "ip=ip", "--dry-run",
                                              "--where", #"{"ip": {"$regex": "^10\\.0\\.0\\.[1-9]$"}}"#,
                                              "--server", server.base, "--key", key])
        #expect(dry.stdout.contains("rows read 51, runs to create (dry run) 9, skipped 41, errored 1"),
                "\(dry.stdout) \(dry.stderr)")
        // Without --map, a column whose header is a parameter's name maps onto it; others are listed.
        let automatic = try await ChildProcess.run(["import", file, "--workflow", wf, "--dry-run",
                                                    "--server", server.base, "--key", key])
        #expect(automatic.stdout.contains("rows read 51, runs to create (dry run) 50, skipped 0, errored 1"),
                "\(automatic.stdout) \(automatic.stderr)")
        let extra = dir.path + "/extra.csv"
        try "ip,note\n10.0.0.1,x\n".write(toFile: extra, atomically: true, encoding: .utf8)
        let listed = try await ChildProcess.run(["import", extra, "--workflow", wf, "--dry-run",
                                                 "--server", server.base, "--key", key])
        #expect(listed.stderr.contains("columns not mapped (no parameter of that name; --map column=parameter maps one): note"),
                "\(listed.stderr)")
        #expect(listed.stdout.contains { $0.contains("runs to create (dry run) 1,") }, "\(listed.stdout)")
        server.child.kill(SIGTERM)
        _ = await server.child.wait()
        let local = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "ip=ip", "--data-dir", dir.data])
        #expect(local.stdout.joined(separator: "\n").contains("runs created 50"), "\(local.stdout) \(local.stderr)")
        let bad = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "nope=ip", "--data-dir", dir.data])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("mapping.columns.nope"))
        server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        let runs = try await request(server.base, .GET, "/v1/workflows/\(wf)/runs?limit=1000", key: key)
        #expect(runs.json["runs"]?.arrayValue?.count == 100)
    }

    @Test("runlog import failing after the upload, before its importer run starts, leaves no data source behind")
    func failedImportLeavesNoDataSource() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let file = dir.path + "/ips.csv"
        try Self.csv(rows: 5).write(toFile: file, atomically: true, encoding: .utf8)
        var server = try await ServerProcess.start(dir.data)
        let wf = try await Self.activeWorkflow(server.base, key)
        // A data source the user uploaded on purpose is never removed.
        let explicit = try await uploadCSV(server.base, key, Self.csv(rows: 2))
        func sources() async throws -> [String] {
            try await request(server.base, .GET, "/v1/data-sources", key: key).json["data_sources"]?.arrayValue?
                .compactMap { $0["id"]?.stringValue } ?? []
        }
        for _ in 0..<3 {
            let bad = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "nope=ip",
                                                  "--server", server.base, "--key", key])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("mapping.columns.nope"), "\(bad.stderr)")
        }
        let unknown = try await ChildProcess.run(["import", file, "--workflow", "wf_none", "--server", server.base,
                                                  "--key", key])
        #expect(unknown.status != 0)
        #expect(try await sources() == [explicit])
        server.child.kill(SIGTERM)
        _ = await server.child.wait()
        let local = try await ChildProcess.run(["import", file, "--workflow", wf, "--map", "nope=ip", "--data-dir", dir.data])
        #expect(local.status != 0)
        #expect(local.stderr.contains("mapping.columns.nope"), "\(local.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.data + "/uploads").filter { $0.hasPrefix("ds_") }
        #expect(files == [explicit + ".csv"])
        server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        #expect(try await sources() == [explicit])
    }
}

/// Uploads CSV text as a data source; returns its id.
func uploadCSV(_ base: String, _ key: String, _ text: String) async throws -> String {
    var request = HTTPClientRequest(url: base + "/v1/data-sources/csv?name=upload")
    request.method = .POST
    request.headers.add(name: "Authorization", value: "Bearer \(key)")
    request.body = .bytes(ByteBuffer(string: text))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
    let body = try await response.body.collect(upTo: 1 << 20)
    let json = try JSONValue(parsing: Array(body.readableBytesView))
    guard response.status.code == 201, let id = json["id"]?.stringValue else { throw TestFailure("upload failed: \(json)") }
    return id
}
