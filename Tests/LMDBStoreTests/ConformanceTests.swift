import EventLog
import EventStoreConformance
import Foundation
import LMDBStore
import RunlogTestSupport
import Synchronization
import Testing

/// LMDB stores for the conformance suite: each in a directory of its own under one temporary directory.
final class LMDBBackend: EventStoreBackend {
    let directory = TemporaryDirectory(prefix: "runlog-conformance")
    private let made = Mutex(0)

    func fresh() async throws -> any EventStore {
        let n = made.withLock { n in
            n += 1
            return n
        }
        return try LMDBEventStore.open(directory.path + "/store-\(n)")
    }

    func reopen(_ store: any EventStore) async throws -> any EventStore {
        store.close()
        return try LMDBEventStore.open(store.location)
    }

    func discard(_ store: any EventStore) async {
        store.close()
        try? FileManager.default.removeItem(atPath: store.location)
    }
}

@Suite("EventStore conformance")
struct LMDBConformanceTests {
    @Test("LMDBEventStore", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func lmdb(_ check: EventStoreConformance.Check) async throws {
        try await EventStoreConformance.run(check, on: LMDBBackend())
    }

    @Test("every check has a name of its own")
    func namesAreUnique() {
        let names = EventStoreConformance.checks.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.count >= 28)
    }
}
