import EventLog
import Foundation
import LMDBStore
import PostgresStore
import RunlogJSON
import RunlogTestSupport
import Testing

/// `runlog` processes on one PostgreSQL log (`--store`), each node with a data directory of its own.
@Suite("runlog on PostgreSQL (real processes)", .serialized, .enabled(if: TestPostgres.isEnabled))
struct PostgresProcessTests {
    /// Runs `body` with the URL of a fresh schema on the test server, dropped afterwards.
    static func withSchema(_ body: (String) async throws -> Void) async throws {
        let schema = TestPostgres.schemaName()
        let url = try TestPostgres.url(schema: schema)
        do {
            try await body(url)
        } catch {
            await TestPostgres.drop(schema)
            throw error
        }
        await TestPostgres.drop(schema)
    }

    /// The head hash `runlog log verify` prints for `arguments`, expecting it to succeed.
    static func verifiedHead(_ arguments: [String]) async throws -> String {
        let verify = try await ChildProcess.run(["log", "verify"] + arguments)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
        let line = try #require(verify.stdout.first { $0.hasPrefix("intact: ") }, "\(verify.stdout) \(verify.stderr)")
        return String(try #require(line.split(separator: " ").last))
    }

    @Test("log copy: a data directory to PostgreSQL and back keeps positions, ids and hashes; it resumes; another log is refused",
          .timeLimit(.minutes(3)))
    func copyBothWays() async throws {
        try await Self.withSchema { url in
            let dir = TemporaryDirectory()
            // A command that only reads neither finds nor makes a log in an empty schema.
            for _ in 0..<2 {
                let stats = try await ChildProcess.run(["log", "stats", "--store", url, "--data-dir", dir.path + "/reader"])
                #expect(stats.status == 1 && stats.stderr.contains("holds no Runlog log"), "\(stats.stdout) \(stats.stderr)")
            }
            let source = dir.path + "/source"
            let appended = try await ChildProcess.run(["dev", "append-loop", "--data-dir", source, "--appenders", "3",
                                                       "--count", "40", "--batch", "2"])
            #expect(appended.status == 0, "\(appended.stderr)")
            let key = try await ServerProcess.makeKey(source)
            #expect(key.hasPrefix("rlk_"))
            // Side tables: a vault entry, an Idempotency-Key answer and a checkpoint come along too.
            let writable = try LMDBEventStore(directory: source)
            try await writable.putVaultEntry("subject/1", [1, 2, 3])
            try await writable.putRequestRecord("idem/answer", Array("kept".utf8))
            try await writable.setCheckpoint("reader", to: 7)
            writable.close()
            let head = try await Self.verifiedHead(["--data-dir", source])

            let there = try await ChildProcess.run(["log", "copy", "--from", source, "--to", url])
            #expect(there.status == 0, "\(there.stderr)")
            #expect(there.stdout.first?.hasPrefix("copied 121 events and 3 side entries") == true, "\(there.stdout)")
            #expect(try await Self.verifiedHead(["--store", url]) == head)

            let back = dir.path + "/back"
            let returned = try await ChildProcess.run(["log", "copy", "--from", url, "--to", back])
            #expect(returned.status == 0, "\(returned.stderr)")
            #expect(try await Self.verifiedHead(["--data-dir", back]) == head)
            // The same events at the same positions, and the side tables (the key's record) came along.
            let original = try LMDBEventStore(directory: source, options: .init(readOnly: true))
            let copy = try LMDBEventStore(directory: back, options: .init(readOnly: true))
            #expect(try original.readAll(limit: 1_000) == copy.readAll(limit: 1_000))
            #expect(try original.sideEntries() == copy.sideEntries())
            #expect(try copy.vaultEntry("subject/1") == [1, 2, 3])
            #expect(try copy.requestRecord("idem/answer") == Array("kept".utf8))
            #expect(try copy.checkpoint("reader") == 7)
            original.close()
            copy.close()

            // More events at the source, and a vault entry deleted there: a second copy continues from the
            // target's head and deletes the entry in the target too.
            let more = try await ChildProcess.run(["dev", "append-loop", "--data-dir", source, "--appenders", "1", "--count", "5"])
            #expect(more.status == 0)
            let forgetting = try LMDBEventStore(directory: source)
            try await forgetting.deleteVaultEntry("subject/1")
            forgetting.close()
            let again = try await ChildProcess.run(["log", "copy", "--from", source, "--to", url])
            #expect(again.stdout.first?.hasPrefix("copied 5 events and 2 side entries (1 deleted)") == true,
                    "\(again.stdout) \(again.stderr)")
            let refreshed = try await ChildProcess.run(["log", "copy", "--from", url, "--to", back])
            #expect(refreshed.stdout.first?.hasPrefix("copied 5 events and 2 side entries (1 deleted)") == true,
                    "\(refreshed.stdout) \(refreshed.stderr)")
            let forgotten = try LMDBEventStore(directory: back, options: .init(readOnly: true))
            #expect(try forgotten.vaultEntry("subject/1") == nil)
            #expect(try forgotten.requestRecord("idem/answer") == Array("kept".utf8))
            forgotten.close()
            #expect(try await Self.verifiedHead(["--store", url]) == Self.verifiedHead(["--data-dir", source]))

            // Another log is refused, and the target keeps what it had.
            let other = dir.path + "/other"
            _ = try await ChildProcess.run(["dev", "append-loop", "--data-dir", other, "--appenders", "1", "--count", "3"])
            let refused = try await ChildProcess.run(["log", "copy", "--from", other, "--to", url])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("holds another log"), "\(refused.stderr)")
            #expect(try await Self.verifiedHead(["--store", url]) == Self.verifiedHead(["--data-dir", source]))
        }
    }

    @Test("appenders in three processes at once: every acknowledged event once, at gap-free positions, seen live by a subscriber",
          .timeLimit(.minutes(3)))
    func appendersInSeveralProcesses() async throws {
        try await Self.withSchema { url in
            let dir = TemporaryDirectory()
            // The subscriber: a node of its own in this process, subscribed before the appenders start.
            let node = try await PostgresEventStore.open(url: url, mirror: dir.path + "/subscriber")
            // It reads until the store closes, so a child that fails cannot leave it waiting.
            let seen = Task {
                var positions: [UInt64] = []
                var ids: [String] = []
                for try await event in node.subscribe(from: 1) {
                    positions.append(event.position)
                    ids.append(event.id.uuidString.lowercased())
                }
                return (positions, ids)
            }
            let children = try (0..<3).map { n in
                try ChildProcess(["dev", "append-loop", "--store", url, "--data-dir", dir.path + "/node-\(n)",
                                  "--appenders", "4", "--count", "30"])
            }
            var acknowledged: [String] = []
            var last: UInt64 = 0
            for child in children {
                #expect(await child.wait() == 0, "\(child.errorOutput)")
                for line in child.output {
                    let fields = line.split(separator: " ")
                    guard fields.count == 2, let position = UInt64(fields[0]) else { continue }
                    acknowledged.append(String(fields[1]))
                    last = max(last, position)
                }
            }
            // Once the subscriber's node has the last acknowledged position (a guard against a
            // hang, not a timing), closing it ends the subscription.
            let reached = Task { try await node.waitForCommit(reaching: last) }
            let guardTask = Task {
                try await Task.sleep(for: .seconds(20))
                reached.cancel()
            }
            _ = try? await reached.value
            guardTask.cancel()
            let versions = try (0..<4).map { try node.readStream("dev-\($0)", limit: 1_000).map(\.streamVersion) }
            await node.shutdown()
            let (positions, ids) = try await seen.value
            #expect(acknowledged.count == 360)
            #expect(positions == Array(1...360), "no gap, no duplicate, in order")
            #expect(Set(ids) == Set(acknowledged))
            // Each stream's versions are contiguous although three processes appended to it.
            for (n, stream) in versions.enumerated() {
                #expect(stream == Array(1...UInt64(max(stream.count, 1))) && stream.count == 90, "dev-\(n)")
            }
            #expect(try await Self.verifiedHead(["--store", url]).count == 64)
        }
    }

    @Test("two serve nodes on one database: a command is read at once on its node and soon on the other; a SIGKILLed node loses nothing acknowledged",
          .timeLimit(.minutes(4)))
    func twoNodes() async throws {
        try await Self.withSchema { url in
            let dir = TemporaryDirectory()
            let made = try await ChildProcess.run(["keys", "create", "--store", url, "--data-dir", dir.path + "/admin",
                                                   "--role", "admin"])
            let key = try #require(made.stdout.first { $0.hasPrefix("rlk_") }, "\(made.stderr)")
            let a = try await ServerProcess.start(dir.path + "/a", ["--store", url])
            let b = try await ServerProcess.start(dir.path + "/b", ["--store", url])
            defer { b.child.kill() }

            // Read-your-writes on the node that answered; the other node catches up.
            let created = try await request(a.base, .POST, "/v1/workflows", key: key, json: ["name": "made on a"])
            #expect(created.status == 201)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(try await request(a.base, .GET, "/v1/workflows/\(id)", key: key).status == 200)
            #expect(try await Self.eventually { try await request(b.base, .GET, "/v1/workflows/\(id)", key: key).status == 200 })

            // Load on both nodes, then node a is killed.
            let running = RunningFlag()
            let (baseA, baseB) = (a.base, b.base)
            let loadA = Task { await ServerProcessTests.load(baseA, key: key, clients: 8, running: running) }
            let loadB = Task { await ServerProcessTests.load(baseB, key: key, clients: 8, running: running) }
            try await Task.sleep(for: .milliseconds(1500))
            a.child.kill(SIGKILL)
            _ = await a.child.wait()
            running.stop()
            loadA.cancel()
            let acknowledged = await loadA.value + loadB.value
            #expect(acknowledged.count > 20)
            // Node b serves every acknowledged command, including those node a answered.
            for id in acknowledged {
                #expect(try await Self.eventually { try await request(baseB, .GET, "/v1/workflows/\(id)", key: key).status == 200 },
                        "workflow \(id)")
            }
            // Node a comes back from its own copy and the database.
            let again = try await ServerProcess.start(dir.path + "/a", ["--store", url])
            defer { again.child.kill() }
            for id in acknowledged.shuffled().prefix(30) {
                #expect(try await Self.eventually { try await request(again.base, .GET, "/v1/workflows/\(id)", key: key).status == 200 })
            }
            _ = try await Self.verifiedHead(["--store", url])

            // A draft previewed against past runs gives the same answer on both nodes.
            let definition = try JSONValue(parsing: """
                {"trigger": {"kind": "api", "schema": {"fields": [{"name": "amount", "type": "integer", "required": true}]}},
                 "routes": [{"name": "large", "condition": {"parameters.amount": {"$gt": 100}}, "steps": [{"step_uid": "ok", "type": "approve"}]},
                            {"name": "else", "steps": [{"step_uid": "no", "type": "decline"}]}]}
                """)
            let workflow = try #require(try await request(again.base, .POST, "/v1/workflows", key: key, json: ["name": "previewed"])
                .json["id"]?.stringValue)
            _ = try await request(again.base, .PUT, "/v1/workflows/\(workflow)/draft", key: key, json: definition)
            _ = try await request(again.base, .POST, "/v1/workflows/\(workflow)/versions", key: key, json: ["activate": true])
            for amount in [50, 150, 250] {
                #expect(try await request(again.base, .POST, "/v1/workflows/\(workflow)/runs", key: key,
                                          json: ["parameters": ["amount": .integer(Int64(amount))]]).status == 201)
            }
            #expect(try await Self.eventually {
                try await request(again.base, .GET, "/v1/workflows/\(workflow)/runs?status=completed", key: key)
                    .json["runs"]?.arrayValue?.count == 3
            })
            let draft = try JSONValue(parsing: definition.jsonText.replacingOccurrences(of: "100", with: "200"))
            _ = try await request(again.base, .PUT, "/v1/workflows/\(workflow)/draft", key: key, json: draft)
            let onA = try await request(again.base, .POST, "/v1/workflows/\(workflow)/draft/preview", key: key, json: [:])
            #expect(onA.status == 200 && onA.json["changed"] == 1, "\(onA.json)")
            #expect(try await Self.eventually {
                try await request(baseB, .POST, "/v1/workflows/\(workflow)/draft/preview", key: key, json: [:]).json == onA.json
            }, "node b previews the draft as node a does")
        }
    }

    /// Whether `condition` holds within 20 seconds (a guard against a hang, not a timing).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
