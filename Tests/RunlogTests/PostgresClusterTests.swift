import EventLog
import Foundation
import PostgresStore
import RunlogJSON
import RunlogTestSupport
import S3
import Testing
import WorkflowModel

/// Three `runlog serve` nodes on one PostgreSQL log, with work leases.
@Suite("a cluster of three nodes on PostgreSQL (real processes)", .serialized, .enabled(if: TestPostgres.isEnabled))
struct PostgresClusterTests {
    /// What the log says each run went through, read from the database.
    struct Executions {
        /// Rows of each importer run that got a run (once per run created).
        var importedRows: [String: [Int]] = [:]
        var created: Set<String> = []
        var routes: [String: Int] = [:]
        var completions: [String: Int] = [:]

        init(_ url: String) async throws {
            var executions = Executions()
            try await TestPostgres.forEachEvent(in: url) { try executions.add($0) }
            self = executions
        }

        private init() {}

        private mutating func add(_ event: RecordedEvent) throws {
            switch try DomainEvent.decode(type: event.type, payload: event.payload) {
            case .runCreated(let run)?:
                created.insert(run.runId)
            case .runsImported(let batch)?:
                importedRows[batch.importerRunId, default: []] += batch.rows.map(\.row)
                for i in batch.rows.indices { created.insert(RunsImported.runId(prefix: batch.runIdPrefix, index: i)) }
            case .routeMatched(let route)?:
                routes[route.runId, default: 0] += 1
            case .runCompleted(let run)?:
                completions[run.runId, default: 0] += 1
            default:
                break
            }
        }
    }

    static func csv(rows: Int) -> String {
        var text = "ip\n"
        for i in 1...rows { text += "10.\(i / 65536).\((i / 256) % 256).\(i % 256)\n" }
        // A row that fails validation: no run for it.
        return text + "not-ip,extra\n"
    }

    @Test("three nodes: commands through all three, every run executed once; a node SIGKILLed mid-import, its import finished by another with one run per valid row",
          .timeLimit(.minutes(6)))
    func threeNodes() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let s3 = try moto.client()
        try await s3.createBucket("exports")
        let rows = 10_000
        _ = try await s3.putObject(bucket: "exports", key: "ips.csv", body: Array(Self.csv(rows: rows).utf8))

        try await PostgresProcessTests.withSchema { url in
            let dir = TemporaryDirectory()
            let made = try await ChildProcess.run(["keys", "create", "--store", url, "--data-dir", dir.path + "/admin",
                                                   "--role", "admin"])
            let key = try #require(made.stdout.first { $0.hasPrefix("rlk_") }, "\(made.stderr)")
            // One secret key for all: a node seals the S3 credentials another node opens.
            var environment = ProcessInfo.processInfo.environment
            environment["RUNLOG_SECRET_KEY"] = String(repeating: "ab", count: 32)
            // 32 workers: a batch run waits for its commit in the database, so runs drain in proportion
            // to the workers (3 drained these runs at about a fifth of the rate).
            var nodes: [ServerProcess] = []
            for name in ["a", "b", "c"] {
                nodes.append(try await ServerProcess.start(dir.path + "/" + name,
                                                           ["--store", url, "--lease-seconds", "2", "--node-name", name,
                                                            "--shared-workers", "32"],
                                                           environment: environment))
            }
            defer { for node in nodes { node.child.kill() } }
            let (a, b, c) = (nodes[0].base, nodes[1].base, nodes[2].base)

            let workflow = try await ImporterProcessTests.activeWorkflow(a, key)
            for base in [b, c] {
                #expect(try await PostgresProcessTests.eventually {
                    try await request(base, .GET, "/v1/workflows/\(workflow)", key: key).json["active_version"] == 1
                })
            }
            // Real-time runs through every node.
            var realtime: [String] = []
            for (n, base) in [a, b, c, a, b, c, a, b, c].enumerated() {
                let run = try await request(base, .POST, "/v1/workflows/\(workflow)/runs", key: key,
                                            json: ["parameters": ["ip": .string("192.0.2.\(n)")]])
                #expect(run.status == 201, "\(run.json)")
                realtime.append(try #require(run.json["id"]?.stringValue))
            }

            // An import from S3, started on node c, which is killed once its first runs are recorded.
            let source = try await request(a, .POST, "/v1/data-sources", key: key, json: [
                "name": "ips", "kind": "s3",
                "s3": ["bucket": "exports", "key": "ips.csv", "endpoint": .string(moto.endpoint)],
                "credentials": ["access_key_id": .string(moto.credentials.accessKeyId),
                                "secret_access_key": .string(moto.credentials.secretAccessKey)],
            ])
            let sourceId = try #require(source.json["id"]?.stringValue, "\(source.json)")
            let importer = try await request(a, .POST, "/v1/importers", key: key, json: [
                "name": "ips", "data_source_id": .string(sourceId), "workflow_id": .string(workflow),
                "mapping": ["columns": ["ip": "ip"]],
            ])
            let importerId = try #require(importer.json["id"]?.stringValue, "\(importer.json)")
            #expect(try await PostgresProcessTests.eventually {
                try await request(c, .GET, "/v1/importers/\(importerId)", key: key).status == 200
            })
            let started = try await request(c, .POST, "/v1/importers/\(importerId)/runs", key: key)
            let importRun = try #require(started.json["id"]?.stringValue, "\(started.json)")
            var created = 0.0
            while created < 1 {
                let run = try await request(c, .GET, "/v1/import-runs/\(importRun)", key: key).json
                created = run["progress"]?["runs_created"]?.numericValue ?? 0
                #expect(run["status"] == "running", "the import must still run when its node is killed")
                if created < 1 { try await Task.sleep(for: .milliseconds(5)) }
            }
            nodes[2].child.kill(SIGKILL)
            _ = await nodes[2].child.wait()
            let atKill = try await Executions(url)
            #expect((atKill.importedRows[importRun]?.count ?? 0) < rows, "killed mid-import")

            // Another node takes the import over (its lease lasts 2 s) and finishes it.
            var status: JSONValue = .null
            let deadline = ContinuousClock.now + .seconds(240)
            while status["status"] != "completed" && status["status"] != "failed" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                status = try await request(a, .GET, "/v1/import-runs/\(importRun)", key: key).json
            }
            #expect(status["status"] == "completed", "\(status)")
            #expect(status["progress"]?["runs_created"]?.numericValue == Double(rows))
            #expect(status["progress"]?["rows_errored"]?.numericValue == 1, "\(status)")

            // Every run completes, each exactly once, on the two nodes left.
            let waitUntil = ContinuousClock.now + .seconds(240)
            while ContinuousClock.now < waitUntil {
                var unfinished = 0
                for status in ["queued", "running"] {
                    let page = try await request(a, .GET, "/v1/workflows/\(workflow)/runs?status=\(status)&limit=1", key: key)
                    unfinished += page.json["runs"]?.arrayValue?.count ?? 1
                }
                if unfinished == 0 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            let executions = try await Executions(url)
            let imported = try #require(executions.importedRows[importRun])
            #expect(imported.count == rows, "one run per valid row: \(imported.count) runs for \(rows) rows")
            #expect(Set(imported) == Set(1...rows))
            #expect(executions.created.count == rows + realtime.count)
            #expect(Set(realtime).isSubset(of: executions.created))
            let notOnce = executions.created.filter { executions.completions[$0] != 1 || executions.routes[$0] != 1 }
            #expect(notOnce.isEmpty, "\(notOnce.count) runs not executed exactly once, e.g. \(notOnce.prefix(3))")
            for id in realtime {
                #expect(try await request(b, .GET, "/v1/runs/\(id)", key: key).json["status"] == "completed")
            }
            _ = try await PostgresProcessTests.verifiedHead(["--store", url])
        }
    }
}
