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
final class PassCountingStore: EventStore {
    let base: any EventStore
    private let counted = Mutex(0)

    init(_ base: any EventStore) { self.base = base }

    var passes: Int { counted.withLock { $0 } }
    private func count(from position: UInt64?, unbounded: Bool = true) {
        if (position ?? 1) <= 1 && unbounded { counted.withLock { $0 += 1 } }
    }

    var location: String { base.location }
    var isReadOnly: Bool { base.isReadOnly }
    func close() { base.close() }
    func append(_ writes: [StreamWrite], priority: AppendPriority) async throws(EventStoreError) -> AppendResult {
        try await base.append(writes, priority: priority)
    }
    func submit(_ writes: [StreamWrite], priority: AppendPriority) throws(EventStoreError) -> PendingAppend {
        try base.submit(writes, priority: priority)
    }
    func deferBackground(_ on: Bool) { base.deferBackground(on) }
    var backgroundDeferred: Bool { base.backgroundDeferred }
    var writerStatistics: WriterStatistics { base.writerStatistics }
    func head() throws(EventStoreError) -> LogHead { try base.head() }
    func head(asOf timestamp: Int64) throws(EventStoreError) -> LogHead { try base.head(asOf: timestamp) }
    func readEvents(of stream: String, from version: UInt64?, direction: ReadDirection, limit: Int)
        throws(EventStoreError) -> [RecordedEvent] {
        try base.readEvents(of: stream, from: version, direction: direction, limit: limit)
    }
    func streamVersion(_ stream: String) throws(EventStoreError) -> UInt64 { try base.streamVersion(stream) }
    func streamCount(prefix: String) throws(EventStoreError) -> Int { try base.streamCount(prefix: prefix) }
    func readLog(from position: UInt64?, direction: ReadDirection, filter: EventFilter, limit: Int)
        throws(EventStoreError) -> [RecordedEvent] {
        count(from: direction == .forward ? position : 2, unbounded: limit == .max)
        return try base.readLog(from: position, direction: direction, filter: filter, limit: limit)
    }
    func readPage(from position: UInt64, filter: EventFilter, limit: Int) throws(EventStoreError) -> LogPage {
        try base.readPage(from: position, filter: filter, limit: limit)
    }
    func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws {
        count(from: position)
        try base.forEachView(from: position, body)
    }
    func forEach(from position: UInt64, filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws {
        count(from: position)
        try base.forEach(from: position, filter: filter, body)
    }
    func event(at position: UInt64) throws(EventStoreError) -> RecordedEvent? { try base.event(at: position) }
    func position(ofEventId id: UUID) throws(EventStoreError) -> UInt64? { try base.position(ofEventId: id) }
    func stats() throws(EventStoreError) -> LogStats { try base.stats() }
    func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport {
        count(from: 1)
        return try base.verify(progress: progress)
    }
    func waitForCommit(reaching position: UInt64) async throws -> Bool { try await base.waitForCommit(reaching: position) }
    func putVaultEntry(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await base.putVaultEntry(name, value)
    }
    func deleteVaultEntry(_ name: String) async throws(EventStoreError) { try await base.deleteVaultEntry(name) }
    func vaultEntry(_ name: String) throws(EventStoreError) -> [UInt8]? { try base.vaultEntry(name) }
    func putRequestRecord(_ name: String, _ value: [UInt8]) async throws(EventStoreError) {
        try await base.putRequestRecord(name, value)
    }
    func requestRecord(_ name: String) throws(EventStoreError) -> [UInt8]? { try base.requestRecord(name) }
    func requestRecords<T>(after: String?, limit: Int, _ select: (UnsafeRawBufferPointer) -> T?)
        throws(EventStoreError) -> (records: [(name: String, value: T)], last: String?) {
        try base.requestRecords(after: after, limit: limit, select)
    }
    func deleteRequestRecords(_ names: [String]) async throws(EventStoreError) { try await base.deleteRequestRecords(names) }
    func setCheckpoint(_ name: String, to position: UInt64) async throws(EventStoreError) {
        try await base.setCheckpoint(name, to: position)
    }
    func checkpoint(_ name: String) throws(EventStoreError) -> UInt64? { try base.checkpoint(name) }
    func checkpoints() throws(EventStoreError) -> [String: UInt64] { try base.checkpoints() }
    func attach(_ projection: any InlineProjection) async throws(EventStoreError) { try await base.attach(projection) }
    func readProjection<T>(_ name: String, _ body: (any ProjectionTables) throws -> T) throws(EventStoreError) -> T {
        try base.readProjection(name, body)
    }
    func projectionPosition(_ name: String) throws(EventStoreError) -> UInt64? { try base.projectionPosition(name) }
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
