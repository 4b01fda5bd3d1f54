import Access
import EventLog
import Foundation
import Importers
import LMDBStore
import RunlogHTTP
import RunlogTestSupport
import Synchronization
import Testing
import WorkflowModel
import Workflows

/// A store that counts the passes over the whole log made through it: reads that start at the
/// first position and go on to the head (a scan of every envelope, filtered or not).
final class PassCountingStore: ForwardingStore, @unchecked Sendable {
    private let counted = Mutex(0)

    var passes: Int { counted.withLock { $0 } }
    private func count(from position: UInt64?, unbounded: Bool = true) {
        if (position ?? 1) <= 1 && unbounded { counted.withLock { $0 += 1 } }
    }

    override func readLog(from position: UInt64?, direction: ReadDirection, filter: EventFilter, limit: Int)
        throws(EventStoreError) -> [RecordedEvent] {
        count(from: direction == .forward ? position : 2, unbounded: limit == .max)
        return try base.readLog(from: position, direction: direction, filter: filter, limit: limit)
    }
    override func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws {
        count(from: position)
        try base.forEachView(from: position, body)
    }
    override func forEach(from position: UInt64, filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws {
        count(from: position)
        try base.forEach(from: position, filter: filter, body)
    }
    override func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport {
        count(from: 1)
        return try base.verify(progress: progress)
    }
}

@Suite("Start-up")
struct StartupTests {
    @Test("start-up reads the log once for every read model: workflows, jobs, keys, accounts, importers",
          .timeLimit(.minutes(1)))
    func oneReplay() async throws {
        let dir = TemporaryDirectory()
        let box = SecretBox(key: [UInt8](repeating: 7, count: 32))
        let uploads = dir.path + "/uploads"
        // A log with events of every read model.
        var store: any EventStore = try LMDBEventStore(directory: dir.data)
        var parts = try await RunlogParts.open(store: store, box: box, uploads: uploads, engine: EngineConfiguration())
        await parts.engine.start()
        let workflow = try await parts.engine.createWorkflow(name: "startup")
        let key = KeyEvent.make(role: .admin, name: "startup admin")
        try await store.append(to: KeyEvent.stream, [key.event])
        _ = try await parts.accounts.save(AccountChange(name: "crm", apiKey: "secret"), integration: "crm", project: "p1",
                                          actor: nil)
        let source = try await parts.importers.createCSVDataSource(
            name: "rows", chunks: ChunkList([Array("ip\n10.0.0.1\n".utf8)]), actor: nil)
        let head = try store.head()
        await parts.importers.shutdown()
        await parts.engine.shutdown()
        store.close()

        let counting = PassCountingStore(try LMDBEventStore(directory: dir.data))
        store = counting
        parts = try await RunlogParts.open(store: store, box: box, uploads: uploads, engine: EngineConfiguration())
        #expect(parts.startupPasses == 1)
        #expect(counting.passes == 1, "passes over the log at start-up")
        // Each read model was built by that one pass.
        #expect(await parts.engine.read { $0.workflows[workflow.id]?.name } == "startup")
        #expect(parts.keys.key(id: key.id)?.name == "startup admin")
        #expect(parts.accounts.accounts(integration: "crm", project: "p1").count == 1)
        #expect(await parts.importers.snapshot.dataSources[source.id]?.name == "rows")
        #expect(await parts.engine.read { $0.position } == head.position)
        await parts.importers.shutdown()
        await parts.engine.shutdown()
        store.close()
    }
}
