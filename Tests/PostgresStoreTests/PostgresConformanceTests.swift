import EventLog
import EventStoreConformance
import Foundation
import LMDBStore
import PostgresNIO
import PostgresStore
import RunlogTestSupport
import Synchronization
import Testing

/// Stores on the test server for the conformance suite: each fresh store in a schema of its own
/// with its mirror in a directory of its own; a reopen keeps both.
final class PostgresBackend: EventStoreBackend {
    let directory = TemporaryDirectory(prefix: "runlog-pg-conformance")
    let url: String

    init() throws {
        url = try #require(TestPostgres.url, "RUNLOG_TEST_POSTGRES is not set: run the tests with tools/test")
    }

    func fresh() async throws -> any EventStore {
        let name = TestPostgres.schemaName()
        return try await PostgresEventStore.open(url: url, schema: name, mirror: directory.path + "/" + name,
                                                 pollInterval: .milliseconds(20))
    }

    func reopen(_ store: any EventStore) async throws -> any EventStore {
        let store = try #require(store as? PostgresEventStore)
        await store.shutdown()
        return try await PostgresEventStore.open(url: url, schema: store.log.schema, mirror: store.mirror.directory,
                                                 pollInterval: .milliseconds(20))
    }

    func discard(_ store: any EventStore) async {
        guard let store = store as? PostgresEventStore else { return }
        await store.shutdown()
        await TestPostgres.drop(store.log.schema)
        try? FileManager.default.removeItem(atPath: store.mirror.directory)
    }
}

@Suite("EventStore conformance on PostgreSQL", .enabled(if: TestPostgres.isEnabled))
struct PostgresConformanceTests {
    @Test("PostgresEventStore", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func postgres(_ check: EventStoreConformance.Check) async throws {
        try await EventStoreConformance.run(check, on: try PostgresBackend())
    }
}
