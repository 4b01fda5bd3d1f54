import EventStoreConformance
import Foundation
import RunlogTestSupport
import Synchronization
import Testing
@testable import EventLog
@testable import LMDBStore

/// Counts events per stream (table 0: stream → count, UInt64 LE) and records the last type seen
/// (table 1: "last" → type), counting its own `apply` calls.
private struct StreamCounts: InlineProjection {
    var name = "counts"
    var version: UInt32 = 1
    var tables: [String] { ["per_stream", "last"] }
    let applied = Applied()

    final class Applied: Sendable {
        let count = Mutex(0)
        let rolledBack = Mutex(0)
    }

    func rolledBack() {
        applied.rolledBack.withLock { $0 += 1 }
    }

    func apply(_ event: EventView, _ tables: any ProjectionTables) throws {
        applied.count.withLock { $0 += 1 }
        let old = try tables.get(0, event.streamBytes).map { $0.loadUnaligned(as: UInt64.self) } ?? 0
        try withUnsafeBytes(of: old + 1) { try tables.put(0, event.streamBytes, $0) }
        try Array("last".utf8).withUnsafeBytes { try tables.put(1, $0, event.typeBytes) }
    }

    /// Every stream's count, read from the store.
    static func counts(_ store: LMDBEventStore, name: String = "counts") throws -> [String: UInt64] {
        try store.readProjection(name) { tables in
            var result: [String: UInt64] = [:]
            try tables.scan(0, from: nil) { key, value in
                result[String(decoding: key, as: UTF8.self)] = value.loadUnaligned(as: UInt64.self)
                return true
            }
            return result
        }
    }

    /// Each stream's count, from the log itself.
    static func expected(_ store: LMDBEventStore) throws -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        try store.forEach { event in
            result[event.stream, default: 0] += 1
            return true
        }
        return result
    }
}

@Suite("Inline projections")
struct InlineProjectionTests {
    @Test("attaching folds in the log in chunks; then every commit carries the projection, and only what it wrote")
    func catchUpThenInline() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        // More events than one catch-up transaction takes.
        let total = Writer.catchUpChunk + 1_234
        var written = 0
        while written < total {
            let n = min(1_000, total - written)
            try await store.append(to: "s-\(written % 7)", (0..<n).map { _ in event() })
            written += n
        }
        let projection = StreamCounts()
        try await store.attach(projection)
        #expect(try StreamCounts.counts(store) == StreamCounts.expected(store))
        #expect(try store.projectionPosition("counts") == UInt64(total))
        #expect(projection.applied.count.withLock { $0 } == total)
        // Attaching again does nothing.
        try await store.attach(projection)
        #expect(projection.applied.count.withLock { $0 } == total)

        // Appends that share one commit: the refused one leaves no trace in the projection.
        let writer = try #require(store.writer)
        writer.hold()
        async let ok = store.append(to: "a", expected: .noStream, [event("first"), event("second")])
        async let refused: Void = {
            await expectStoreError(.wrongExpectedVersion) {
                try await store.append(to: "s-0", expected: .noStream, [event("refused")])
            }
        }()
        while writer.queuedCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
        writer.release()
        let result = try await ok
        await refused
        // Visible as soon as the append returns: the same transaction.
        #expect(try StreamCounts.counts(store)["a"] == 2)
        #expect(try StreamCounts.counts(store) == StreamCounts.expected(store))
        #expect(try store.projectionPosition("counts") == result.lastPosition)
        let last = try store.readProjection("counts") { tables in
            try Array("last".utf8).withUnsafeBytes { try tables.get(1, $0).map { String(decoding: $0, as: UTF8.self) } }
        }
        #expect(last == "second")
        // A deduplicated append folds nothing in twice.
        let same = event("again")
        try await store.append(to: "b", [same])
        let again = try await store.append(to: "b", [same])
        #expect(again.deduplicated)
        #expect(try StreamCounts.counts(store)["b"] == 1)
        store.close()
    }

    @Test("reopened, a projection resumes from its position; a new version rebuilds it; read-only opens read it")
    func reopenAndVersions() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try LMDBEventStore.open(dir.data)
            try await store.attach(StreamCounts())
            for i in 0..<50 { try await store.append(to: "s-\(i % 3)", [event()]) }
            store.close()
        }
        do {
            // Events written while the projection is not attached are folded in when it is.
            let store = try LMDBEventStore.open(dir.data)
            for i in 0..<20 { try await store.append(to: "t-\(i % 2)", [event()]) }
            let projection = StreamCounts()
            try await store.attach(projection)
            #expect(projection.applied.count.withLock { $0 } == 20)
            #expect(try StreamCounts.counts(store) == StreamCounts.expected(store))
            store.close()
        }
        do {
            // A read-only open reads it (one process opens a directory once, so after the close).
            let reader = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
            try await reader.attach(StreamCounts())
            #expect(try StreamCounts.counts(reader) == StreamCounts.expected(reader))
            #expect(try StreamCounts.counts(reader).values.reduce(0, +) == 70)
            // It cannot build one that is not there, or read another version.
            await expectStoreError(.readOnly) { try await reader.attach(StreamCounts(name: "other")) }
            reader.close()
            let another = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
            await expectStoreError(.readOnly) { try await another.attach(StreamCounts(version: 2)) }
            another.close()
        }
        do {
            // Another version empties the tables and folds in the whole log again.
            let store = try LMDBEventStore.open(dir.data)
            let projection = StreamCounts(version: 2)
            try await store.attach(projection)
            #expect(projection.applied.count.withLock { $0 } == 70)
            #expect(try StreamCounts.counts(store) == StreamCounts.expected(store))
            #expect(try StreamCounts.counts(store).values.reduce(0, +) == 70)
            // Attaching the same name at another version in one process is refused.
            await expectStoreError(.invalidArgument) { try await store.attach(StreamCounts(version: 3)) }
            store.close()
        }
    }

    @Test("a commit that fails for a full map is rolled back in the projection too, then applied once the map grows")
    func mapFullRollsBack() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data, options: .init(mapSize: 1 << 20, maxMapSize: 64 << 20))
        defer { store.close() }
        let projection = StreamCounts()
        try await store.attach(projection)
        let big = String(repeating: "x", count: 600_000)
        for i in 0..<6 {
            try await store.append(to: "big-\(i % 2)", [event("big", "{\"x\":\"\(big)\"}")])
        }
        // The map grew at least once: that commit was tried, rolled back and tried again.
        #expect(projection.applied.rolledBack.withLock { $0 } >= 1)
        #expect(try StreamCounts.counts(store) == ["big-0": 3, "big-1": 3])
        #expect(try StreamCounts.counts(store) == StreamCounts.expected(store))
    }

    @Test("reading a projection that is not attached is a clear error")
    func notAttached() throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        defer { store.close() }
        do {
            _ = try store.readProjection("nothing") { _ in 0 }
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("nothing"))
        }
    }
}
