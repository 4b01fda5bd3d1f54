import EventLog
import Foundation
import LMDBStore
import PostgresStore
import RunlogTestSupport
import Testing

extension TestPostgres {
    /// Runs `body` with a migrated log in a fresh schema, the connection pool running beside it.
    static func withLog<Value: Sendable>(_ body: @Sendable (PostgresLog) async throws -> Value) async throws -> Value {
        let url = try #require(url, "RUNLOG_TEST_POSTGRES is not set: run the tests with tools/test")
        let log = try PostgresLog(url: url, schema: schemaName())
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                await log.run()
                return nil
            }
            defer { group.cancelAll() }
            try await log.migrate()
            do {
                let value = try await body(log)
                try await log.client.query("DROP SCHEMA \(unescaped: log.schema) CASCADE")
                return value
            } catch {
                _ = try? await log.client.query("DROP SCHEMA \(unescaped: log.schema) CASCADE")
                throw error
            }
        }
    }
}

extension TestPostgres {
    /// Runs `body` with a second node on `log`'s schema (its own pool, commits and head watch).
    static func withNode<Value: Sendable>(on log: PostgresLog, pollInterval: Duration,
                                          _ body: @Sendable (PostgresLog) async throws -> Value) async throws -> Value {
        let url = try #require(url)
        let node = try PostgresLog(url: url, schema: log.schema, pollInterval: pollInterval)
        // Cancelled, not awaited, afterwards: a node's winding down (its pool, its watch's
        // connection) was seen to outlast a test's time limit under a full suite's load.
        let running = Task { await node.run() }
        defer {
            node.finish()
            running.cancel()
        }
        return try await body(node)
    }

    /// Whether `node` learns of `position` within `seconds` (a guard against a hang, not a timing).
    static func sees(_ node: PostgresLog, _ position: UInt64, within seconds: Int = 20) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await node.waitForCommit(reaching: position) }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }
}

private func event(_ type: String = "test.happened", json: String = "{}", id: UUID = UUID()) -> NewEvent {
    NewEvent(id: id, type: type, json: json, metadata: EventMetadata(actor: "tester"))
}

@Suite("PostgreSQL log", .enabled(if: TestPostgres.isEnabled))
struct PostgresLogTests {
    @Test("concurrent appenders get gap-free positions in commit order, contiguous stream versions, and a chain that verifies",
          .timeLimit(.minutes(1)))
    func concurrentAppends() async throws {
        try await TestPostgres.withLog { log in
            let results = try await withThrowingTaskGroup(of: [AppendResult].self) { group in
                for appender in 0..<8 {
                    group.addTask {
                        var results: [AppendResult] = []
                        for n in 0..<20 {
                            results.append(try await log.append([StreamWrite(stream: "s-\(appender % 3)",
                                                                             events: [event(json: "{\"n\":\(n)}")])]))
                        }
                        return results
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let positions = results.flatMap { $0.events.map(\.position) }.sorted()
            #expect(positions == Array(1...160))
            let events = try await log.read(from: 1, limit: 1_000)
            #expect(events.map(\.position) == Array(1...160))
            for stream in ["s-0", "s-1", "s-2"] {
                let versions = events.filter { $0.stream == stream }.map(\.streamVersion)
                #expect(versions == Array(1...UInt64(versions.count)), "stream \(stream)")
            }
            // Each event links to the one before it, and recorded-at never goes back.
            for (a, b) in zip(events, events.dropFirst()) {
                #expect(b.previousHash == a.hash)
                #expect(b.recordedAt >= a.recordedAt)
            }
            let head = try await log.head()
            #expect(head.position == 160 && head.hash == events.last?.hash)
            #expect(try await log.verify() == .intact(count: 160, head: head.hash))
        }
    }

    @Test("a wrong expected version or a partly stored retry fails and writes nothing; a whole retry gets the first positions")
    func expectationsAndIdempotency() async throws {
        try await TestPostgres.withLog { log in
            let first = event()
            let second = event()
            let written = try await log.append([StreamWrite(stream: "a", expected: .noStream, events: [first, second]),
                                                StreamWrite(stream: "b", expected: .any, events: [event()])])
            #expect(written.events.map(\.position) == [1, 2, 3] && !written.deduplicated)
            #expect(written.events.map(\.streamVersion) == [1, 2, 1])

            let wrong = await #expect(throws: EventStoreError.self) {
                try await log.append([StreamWrite(stream: "b", events: [event()]),
                                      StreamWrite(stream: "a", expected: .exact(1), events: [event()])])
            }
            #expect(wrong?.code == .wrongExpectedVersion)
            #expect(wrong?.conflict?.stream == "a" && wrong?.conflict?.actual == 2)

            let again = try await log.append([StreamWrite(stream: "a", expected: .noStream, events: [first, second])])
            #expect(again.deduplicated && again.events.map(\.position) == [1, 2])
            #expect(again.events.map(\.hash) == Array(written.events.prefix(2)).map(\.hash))

            let partly = await #expect(throws: EventStoreError.self) {
                try await log.append([StreamWrite(stream: "a", events: [first, event()])])
            }
            #expect(partly?.code == .idempotencyConflict)
            await #expect(throws: EventStoreError.self) { try await log.append([StreamWrite(stream: "", events: [event()])]) }
            #expect(try await log.head().position == 3)
            #expect(try await log.append([StreamWrite(stream: "a", expected: .exact(2), events: [event()])])
                .events.map(\.streamVersion) == [3])
            #expect(try await log.verify() == .intact(count: 4, head: try await log.head().hash))
        }
    }

    @Test("appends that share a transaction succeed or fail alone: a wrong version, a repeated id, a partly stored retry",
          .timeLimit(.minutes(1)))
    func groupCommit() async throws {
        try await TestPostgres.withLog { log in
            let repeated = event()
            let stored = event()
            _ = try await log.append([StreamWrite(stream: "stored", events: [stored])])
            enum Outcome: Sendable { case plain(AppendResult), once(Result<AppendResult, EventStoreError>),
                                          repeated(AppendResult), partly(EventStoreError?) }
            let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for n in 0..<60 {
                    group.addTask {
                        switch n % 4 {
                        case 0: return .plain(try await log.append([StreamWrite(stream: "g", events: [event(), event()])]))
                        case 1:
                            do {
                                return .once(.success(try await log.append([StreamWrite(stream: "once", expected: .noStream,
                                                                                        events: [event()])])))
                            } catch let error as EventStoreError {
                                return .once(.failure(error))
                            }
                        case 2: return .repeated(try await log.append([StreamWrite(stream: "r", events: [repeated])]))
                        default:
                            do {
                                _ = try await log.append([StreamWrite(stream: "p", events: [event(), stored])])
                                return .partly(nil)
                            } catch let error as EventStoreError {
                                return .partly(error)
                            }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Appends that waited for the transaction before them committed together in the next.
            let statistics = log.writerStatistics
            #expect(statistics.requests == 61 && statistics.commits < statistics.requests, "\(statistics)")

            let once = outcomes.compactMap { if case .once(let result) = $0 { result } else { nil } }
            #expect(once.filter { (try? $0.get()) != nil }.count == 1)
            let refused: [EventStoreError.Code] = once.compactMap { if case .failure(let error) = $0 { error.code } else { nil } }
            #expect(refused.count == 14 && refused.allSatisfy { $0 == EventStoreError.Code.wrongExpectedVersion })
            let repeats = outcomes.compactMap { if case .repeated(let result) = $0 { result } else { nil } }
            #expect(Set(repeats.map(\.firstPosition)).count == 1, "every append of one id answers its one position")
            #expect(repeats.filter { !$0.deduplicated }.count == 1)
            let partly: [EventStoreError.Code?] = outcomes.compactMap { if case .partly(let error) = $0 { error?.code } else { nil } }
            #expect(partly.count == 15 && partly.allSatisfy { $0 == EventStoreError.Code.idempotencyConflict })
            // Written: 1 + 15 × 2 + 1 + 1 events, gap-free, in one chain.
            let head = try await log.head()
            #expect(head.position == 33)
            #expect(statistics.events == 33, "every event of the log, each counted once")
            let events = try await log.read(from: 1, limit: 100)
            #expect(events.map(\.position) == Array(1...33))
            #expect(events.filter { $0.stream == "g" }.map(\.streamVersion) == Array(1...30))
            #expect(try await log.verify() == .intact(count: 33, head: head.hash))
        }
    }

    @Test("one node's appends in a row are each one statement; two nodes writing in turns see each other's versions, expectations and ids as one node would",
          .timeLimit(.minutes(1)))
    func nodesTakingTurns() async throws {
        try await TestPostgres.withLog { a in
            // The first append reads the log in a transaction; the next ones, planned against it, are one statement each.
            for n in 1...3 {
                #expect(try await a.append([StreamWrite(stream: "shared", events: [event()])]).events[0].streamVersion == UInt64(n))
            }
            #expect(a.knownCommits.known == 2 && a.knownCommits.missed == 0, "\(a.knownCommits)")
            // A slow poll: what each node knows of the other's commits comes from notifications, late or not.
            try await TestPostgres.withNode(on: a, pollInterval: .seconds(60)) { b in
                var version: UInt64 = 3
                for round in 0..<20 {
                    let (node, other) = round % 2 == 0 ? (b, a) : (a, b)
                    #expect(try await node.append([StreamWrite(stream: "shared", events: [event()])])
                        .events[0].streamVersion == version + 1)
                    version += 1
                    #expect(try await other.append([StreamWrite(stream: "shared", expected: .exact(version), events: [event()])])
                        .events[0].streamVersion == version + 1)
                    version += 1
                    let stale = await #expect(throws: EventStoreError.self) {
                        try await node.append([StreamWrite(stream: "shared", expected: .exact(version - 1), events: [event()])])
                    }
                    #expect(stale?.conflict?.actual == version)
                    // A retry through the other node of an append this one stored gets the first positions.
                    let once = event()
                    let first = try await node.append([StreamWrite(stream: "own-\(round)", expected: .noStream, events: [once])])
                    let retry = try await other.append([StreamWrite(stream: "own-\(round)", expected: .noStream, events: [once])])
                    #expect(retry.deduplicated && retry.events == first.events)
                    // A stream only the other node wrote, appended to with no expectation after an append elsewhere.
                    _ = try await other.append([StreamWrite(stream: "theirs-\(round)", events: [event(), event()])])
                    _ = try await node.append([StreamWrite(stream: "elsewhere", events: [event()])])
                    #expect(try await node.append([StreamWrite(stream: "theirs-\(round)", events: [event()])])
                        .events[0].streamVersion == 3)
                    let noStream = await #expect(throws: EventStoreError.self) {
                        try await node.append([StreamWrite(stream: "theirs-\(round)", expected: .noStream, events: [event()])])
                    }
                    #expect(noStream?.code == .wrongExpectedVersion)
                }
                let head = try await a.head()
                #expect(head.position == 3 + 20 * 7)
                let events = try await a.read(from: 1, limit: 1_000)
                #expect(events.map(\.position) == Array(1...head.position))
                #expect(events.filter { $0.stream == "shared" }.map(\.streamVersion) == Array(1...version))
                #expect(try await a.verify() == .intact(count: head.position, head: head.hash))
            }
        }
    }

    @Test("a schema an earlier version made (no append function) reads as a log, and gets the function when migrated")
    func earlierSchema() async throws {
        try await TestPostgres.withLog { log in
            _ = try await log.append([StreamWrite(stream: "a", events: [event()])])
            try await log.client.query("DROP FUNCTION \(unescaped: log.schema).append_v1")
            #expect(try await log.isMigrated(tablesOnly: true))
            #expect(try await !log.isMigrated())
            try await log.migrate()
            #expect(try await log.isMigrated())
            #expect(try await log.append([StreamWrite(stream: "a", events: [event()])]).events[0].position == 2)
        }
    }

    @Test("another node learns of each commit by reading the head; a node's own appends advance what it knows at once",
          .timeLimit(.minutes(1)))
    func otherNodesFollow() async throws {
        try await TestPostgres.withLog { log in
            try await TestPostgres.withNode(on: log, pollInterval: .milliseconds(50)) { node in
                let first = try await log.append([StreamWrite(stream: "a", events: [event()])])
                #expect(try await TestPostgres.sees(node, first.lastPosition))
                let own = try await node.append([StreamWrite(stream: "b", events: [event(), event()])])
                #expect(try await node.waitForCommit(reaching: own.lastPosition))
                #expect(try await TestPostgres.sees(log, own.lastPosition))
                // A position nobody has reached yet is not reported.
                #expect(try await TestPostgres.sees(node, own.lastPosition + 1, within: 1) == false)
            }
        }
    }

    @Test("a notification wakes another node without waiting for its poll; after its listening connection is cut it connects again, and stops when asked",
          .timeLimit(.minutes(1)))
    func notificationsWake() async throws {
        try await TestPostgres.withLog { log in
            // Polling once a minute: within the test, only a notification can tell this node of a commit.
            try await TestPostgres.withNode(on: log, pollInterval: .seconds(60)) { node in
                // Its first read of the head, made on connecting, comes before the append.
                #expect(try await TestPostgres.sees(node, 0))
                try await Task.sleep(for: .milliseconds(200))
                let first = try await log.append([StreamWrite(stream: "a", events: [event()])])
                #expect(try await TestPostgres.sees(node, first.lastPosition), "woken by the notification")
                let changed = node.generation
                _ = try await log.writeSide(SideChange(.vault, "v", [1]))
                #expect(try await node.waitForNews(after: changed), "a side change wakes it too")
            }
            // Cut the watch's connection: the node notices on its next read, connects again and follows on.
            try await TestPostgres.withNode(on: log, pollInterval: .milliseconds(200)) { node in
                #expect(try await TestPostgres.sees(node, 1))
                try await Task.sleep(for: .milliseconds(300))
                // Both nodes' watches (this log's and the other node's) are cut.
                let name = "runlog watch \(log.schema)"
                let cut = try await log.client.query("""
                    SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE application_name = \(name)
                    """).collect()
                #expect(try cut.first?.decode(Int.self) == 2, "the watches' connections were found and cut")
                let next = try await log.append([StreamWrite(stream: "a", events: [event()])])
                #expect(try await TestPostgres.sees(node, next.lastPosition))
                try await Task.sleep(for: .milliseconds(1500))
                let after = try await log.append([StreamWrite(stream: "a", events: [event()])])
                #expect(try await TestPostgres.sees(node, after.lastPosition))
            }
        }
    }

    @Test("a log copied from LMDB keeps its positions, ids and hashes, verifies with the same head hash, and goes on",
          .timeLimit(.minutes(1)))
    func copyFromLMDB() async throws {
        let dir = TemporaryDirectory()
        let lmdb = try LMDBEventStore(directory: dir.data)
        for n in 0..<30 {
            try await lmdb.append([StreamWrite(stream: "s-\(n % 4)", events: [event(json: "{\"n\":\(n)}"), event()])])
        }
        var envelopes: [[UInt8]] = []
        try lmdb.forEachView(from: 1) { view in
            envelopes.append(Array(view.view.bytes))
            return true
        }
        guard case .intact(let count, let hash) = try lmdb.verify(progress: nil) else {
            Issue.record("the LMDB log does not verify")
            return
        }
        let original = try lmdb.readAll()
        lmdb.close()
        let copied = envelopes
        try await TestPostgres.withLog { log in
            // In two parts, as a copy that resumes would.
            _ = try await log.appendCopies(Array(copied.prefix(25)))
            let head = try await log.appendCopies(Array(copied.dropFirst(25)))
            #expect(head.position == count && head.hash == hash)
            #expect(try await log.verify() == .intact(count: count, head: hash))
            #expect(try await log.read(from: 1, limit: 1_000) == original)
            // A copy that does not continue the log is refused, and writes nothing.
            let refused = await #expect(throws: EventStoreError.self) { _ = try await log.appendCopies([copied[3]]) }
            #expect(refused?.code == .invalidArgument)
            // The copy goes on with appends of its own, linked to the copied head.
            let next = try await log.append([StreamWrite(stream: "s-0", expected: .exact(16), events: [event()])])
            #expect(next.events.first?.position == count + 1)
            #expect(try await log.read(from: count + 1, limit: 1).first?.previousHash == hash)
        }
    }

    @Test("a copy's read takes whole commits: never part of an append, even past its limit", .timeLimit(.minutes(1)))
    func copiesTakeWholeCommits() async throws {
        try await TestPostgres.withLog { log in
            _ = try await log.append([StreamWrite(stream: "a", events: [event(), event(), event()]),
                                      StreamWrite(stream: "b", events: [event()])])
            _ = try await log.append([StreamWrite(stream: "c", events: [event()])])
            let first = try await log.changes(after: 0, changesAfter: 0, limit: 2)
            #expect(first.envelopes.count == 4, "the whole first append although the limit is 2")
            let second = try await log.changes(after: 4, changesAfter: 0, limit: 2)
            #expect(second.envelopes.count == 1)
            #expect(try await log.changes(after: 5, changesAfter: 0, limit: 2).envelopes.isEmpty)
        }
    }

    @Test("a store URL that is not postgres://USER@HOST/DB, or a bad schema name, is refused naming the field")
    func badURL() throws {
        for url in ["mysql://u@h/db", "postgres://h/db", "postgres:///db", "not a url"] {
            let error = #expect(throws: EventStoreError.self) { try PostgresLog(url: url) }
            #expect(error?.code == .invalidArgument && error?.field == "store", "\(url)")
        }
        let error = #expect(throws: EventStoreError.self) { try PostgresLog(url: "postgres://u@h/db", schema: "x; drop") }
        #expect(error?.field == "schema")
        // The URL's schema is checked too, and one whose notification channel would pass 63 bytes is refused.
        for schema in ["x%22%3B%20drop", String(repeating: "s", count: 57)] {
            let error = #expect(throws: EventStoreError.self) { try PostgresLog(url: "postgres://u@h/db?schema=\(schema)") }
            #expect(error?.field == "schema", "\(schema)")
        }
        #expect(try PostgresLog(url: "postgres://u@h/db?schema=\(String(repeating: "s", count: 56))").schema.count == 56)
        let unknown = #expect(throws: EventStoreError.self) { try PostgresLog(url: "postgres://u@h/db?sslmode=require") }
        #expect(unknown?.field == "store")
        // Messages never show a password.
        let secret = #expect(throws: EventStoreError.self) { try PostgresLog(url: "postgres://u:hunter2@/db") }
        #expect(secret?.value?.contains("hunter2") == false)
        for url in ["postgres://u@h1,/db", "postgres://u@h1:99999/db", "postgres://u@h1,h2:x/db", "postgres://u:p@h;1/db"] {
            let error = #expect(throws: EventStoreError.self) { try PostgresLog(url: url) }
            #expect(error?.field == "store" && error?.value?.contains(":p@") != true, "\(url)")
        }
    }

    @Test("a host list names a primary and its standbys; a password never shows, also in a URL that does not parse")
    func hostList() throws {
        let url = try PostgresURL("postgres://app:s3cr%2Ft@db1.internal,db2.internal:6432,[::1]:5433/events?schema=prod")
        #expect(url.endpoints.map(\.description) == ["db1.internal:5432", "db2.internal:6432", "[::1]:5433"])
        #expect(url.user == "app" && url.password == "s3cr/t" && url.database == "events" && url.schema == "prod")
        #expect(try PostgresLog(url: "postgres://u@a:1,b:2/db").endpoints.count == 2)
        #expect(PostgresLog.withoutPassword("postgres://u:pw@a:1,b:2/db?schema=x") == "postgres://u@a:1,b:2/db?schema=x")
        #expect(PostgresLog.withoutPassword("postgres://u:pw@a,:bad/db") == "postgres://u@a,:bad/db")
        #expect(PostgresLog.withoutPassword("postgres://u@a/db") == "postgres://u@a/db")
    }
}
