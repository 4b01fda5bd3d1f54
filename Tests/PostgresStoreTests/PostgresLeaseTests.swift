import EventLog
import Foundation
import PostgresNIO
import PostgresStore
import RunlogTestSupport
import Synchronization
import Testing

/// Nodes with work leases on one schema, each with a mirror of its own.
private final class LeaseCluster: Sendable {
    let directory = TemporaryDirectory(prefix: "runlog-pg-leases")
    let url: String
    let schema = TestPostgres.schemaName()
    let fenced = Mutex<Set<String>>([])

    init() throws {
        url = try #require(TestPostgres.url, "RUNLOG_TEST_POSTGRES is not set: run the tests with tools/test")
    }

    /// Runs `body` with a cluster whose schema is dropped afterwards.
    static func with(_ body: (LeaseCluster) async throws -> Void) async throws {
        let cluster = try LeaseCluster()
        do {
            try await body(cluster)
        } catch {
            await TestPostgres.drop(cluster.schema)
            throw error
        }
        await TestPostgres.drop(cluster.schema)
    }

    func open(_ node: String, lease seconds: Int) async throws -> PostgresEventStore {
        let lease = PostgresEventStore.LeaseSettings(node: node, timeout: .seconds(seconds),
                                                     fenced: { [self] _ in self.noteFenced(node) })
        return try await PostgresEventStore.open(url: url, schema: schema, mirror: directory.path + "/" + node,
                                                 pollInterval: .milliseconds(20), lease: lease)
    }

    func noteFenced(_ node: String) {
        _ = fenced.withLock { $0.insert(node) }
    }

    /// Runs `sql` (LEASES naming the schema's table, `$1` bound to `lease`) through a client of its own.
    func run(_ sql: String, lease: Int64) async throws {
        var query = PostgresQuery(unsafeSQL: sql.replacingOccurrences(of: "LEASES", with: "\"\(schema)\".\"leases\""))
        query.binds.append(lease)
        let log = try PostgresLog(url: url, schema: schema)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await log.client.run() }
            defer { group.cancelAll() }
            _ = try await log.client.query(query)
        }
    }
}

private func event(_ n: Int) -> NewEvent {
    NewEvent(type: "test.happened", json: "{\"n\":\(n)}", metadata: EventMetadata(actor: "tester"))
}

/// The first takeover of `leases` after `skipping` others, or nil after `seconds` (a guard against a
/// hang, not a timing).
private func takeover(_ leases: any WorkLeases, skipping: Int = 0, within seconds: Int = 20) async throws -> WorkTakeover? {
    try await withThrowingTaskGroup(of: WorkTakeover?.self) { group in
        group.addTask {
            var seen = 0
            for await takeover in leases.takeovers() {
                if seen == skipping { return takeover }
                seen += 1
            }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

@Suite("Work leases on PostgreSQL", .enabled(if: TestPostgres.isEnabled))
struct PostgresLeaseTests {
    @Test("a node whose lease expires is taken over with the work it wrote; its next append fails and it is fenced",
          .timeLimit(.minutes(1)))
    func takeoverFences() async throws {
        try await LeaseCluster.with { cluster in
            // A renews only every 20 s: its lease is expired below by hand, as if it had been paused.
            let a = try await cluster.open("a", lease: 60)
            let b = try await cluster.open("b", lease: 1)
            let aLeases = try #require(a.workLeases)
            let bLeases = try #require(b.workLeases)
            // The first node to start took lease 0 (what no node wrote); B took nothing at start.
            #expect(try #require(await takeover(aLeases)).leases == [0])
            let byA = try await a.append([StreamWrite(stream: "s-a", events: [event(1)])]).lastPosition
            let byB = try await b.append([StreamWrite(stream: "s-b", events: [event(2)])]).lastPosition

            try await cluster.run("UPDATE LEASES SET expires_at = now() - interval '1 second' WHERE owner = $1",
                                  lease: a.leases!.id)
            let taken = try #require(await takeover(bLeases))
            #expect(Set(taken.leases) == [0, a.leases!.id])
            #expect(taken.head >= byB)
            #expect(try await bLeases.written([byA, byB], in: taken) == [byA])

            // A commits nothing more: the append fails, and the node learns it was fenced.
            await #expect(throws: EventStoreError.self) {
                try await a.append([StreamWrite(stream: "s-a", events: [event(3)])])
            }
            #expect(a.log.isFenced)
            #expect(cluster.fenced.withLock { $0 } == ["a"])
            #expect(try await b.log.head().position == byB)
            // B goes on.
            _ = try await b.append([StreamWrite(stream: "s-b", events: [event(4)])])
            await a.shutdown()
            await b.shutdown()
            #expect(cluster.fenced.withLock { $0 } == ["a"])
        }
    }

    @Test("a node restarted on its data directory takes its previous process's lease at once; one shut down lets others take it",
          .timeLimit(.minutes(1)))
    func restartTakesPreviousLease() async throws {
        try await LeaseCluster.with { cluster in
            let first = try await cluster.open("a", lease: 60)
            let firstId = first.leases!.id
            let written = try await first.append([StreamWrite(stream: "s-a", events: [event(1)])]).lastPosition
            // As after a crash: the process is gone and its lease has not expired.
            await first.shutdown()
            try await cluster.run("UPDATE LEASES SET expires_at = now() + interval '1 hour' WHERE owner = $1", lease: firstId)

            let second = try await cluster.open("a", lease: 60)
            let leases = try #require(second.workLeases)
            let taken = try #require(await takeover(leases))
            #expect(taken.leases.contains(firstId))
            #expect(try await leases.written([written], in: taken) == [written])
            #expect(second.leases!.id != firstId)

            // A graceful shutdown lets the lease expire now: another node takes it at its next look.
            await second.shutdown()
            let other = try await cluster.open("b", lease: 1)
            let otherLeases = try #require(other.workLeases)
            let otherTaken = try #require(await takeover(otherLeases))
            #expect(otherTaken.leases.contains(second.leases!.id))
            await other.shutdown()
            #expect(cluster.fenced.withLock { $0 }.isEmpty)
        }
    }
}
