import EventLog
import Foundation
import Synchronization

/// A store that passes every call to `base`: tests subclass it to watch or change a few calls.
/// `@unchecked Sendable`: a class open to subclasses cannot be checked; `base` never changes and
/// subclasses keep their own state behind locks.
class ForwardingStore: EventStore, @unchecked Sendable {
    let base: any EventStore

    init(_ base: any EventStore) { self.base = base }

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
        try base.readLog(from: position, direction: direction, filter: filter, limit: limit)
    }
    func readPage(from position: UInt64, filter: EventFilter, limit: Int) throws(EventStoreError) -> LogPage {
        try base.readPage(from: position, filter: filter, limit: limit)
    }
    func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws {
        try base.forEachView(from: position, body)
    }
    func forEach(from position: UInt64, filter: EventFilter, _ body: (RecordedEvent) throws -> Bool) throws {
        try base.forEach(from: position, filter: filter, body)
    }
    func event(at position: UInt64) throws(EventStoreError) -> RecordedEvent? { try base.event(at: position) }
    func position(ofEventId id: UUID) throws(EventStoreError) -> UInt64? { try base.position(ofEventId: id) }
    func stats() throws(EventStoreError) -> LogStats { try base.stats() }
    func verify(progress: ((UInt64) -> Void)?) throws(EventStoreError) -> VerifyReport {
        try base.verify(progress: progress)
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
    func queueRequestRecord(_ name: String, _ value: [UInt8],
                            whenDurable done: @escaping @Sendable (EventStoreError?) -> Void) throws(EventStoreError) {
        try base.queueRequestRecord(name, value, whenDurable: done)
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

/// A store that keeps the request records queued through it (`queueRequestRecord`) until
/// `release()`: what a server holds in memory between a command's commit and its kept answer's.
final class HeldRecordsStore: ForwardingStore, @unchecked Sendable {
    private let held = Mutex<[(name: String, value: [UInt8], done: @Sendable (EventStoreError?) -> Void)]>([])

    var heldNames: [String] { held.withLock { $0.map(\.name) } }

    override func queueRequestRecord(_ name: String, _ value: [UInt8],
                                     whenDurable done: @escaping @Sendable (EventStoreError?) -> Void) throws(EventStoreError) {
        held.withLock { $0.append((name, value, done)) }
    }

    /// Queues what was held with the store underneath and waits until it is durable.
    func release() async {
        let records = held.withLock { records in
            defer { records = [] }
            return records
        }
        for record in records {
            await withCheckedContinuation { (written: CheckedContinuation<Void, Never>) in
                do {
                    try base.queueRequestRecord(record.name, record.value) { error in
                        record.done(error)
                        written.resume()
                    }
                } catch let error as EventStoreError {
                    record.done(error)
                    written.resume()
                } catch {
                    record.done(EventStoreError(.storage, "\(error)"))
                    written.resume()
                }
            }
        }
    }
}
