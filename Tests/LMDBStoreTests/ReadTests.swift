import EventStoreConformance
import Foundation
import RunlogTestSupport
import Testing
@testable import EventLog
@testable import LMDBStore

@Suite("Read")
struct ReadTests {
    /// 30 events over streams order-1, order-2, user-1 with types placed/paid/seen.
    func seeded() async throws -> (TemporaryDirectory, LMDBEventStore) {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        let streams = ["order-1", "order-2", "user-1"]
        let types = ["placed", "paid", "seen"]
        for i in 0..<30 {
            try await store.append(to: streams[i % 3], [event(types[(i / 3) % 3], "{\"i\":\(i)}")])
        }
        return (dir, store)
    }

    @Test("one stream forward and backward from a version")
    func streamReads() async throws {
        let (dir, store) = try await seeded()
        _ = dir
        let forward = try store.readStream("order-2")
        #expect(forward.map(\.streamVersion) == Array(1...10))
        #expect(forward.map(\.position) == stride(from: 2, through: 29, by: 3).map { UInt64($0) })
        #expect(try store.readStream("order-2", from: 4, limit: 3).map(\.streamVersion) == [4, 5, 6])
        #expect(try store.readStream("order-2", direction: .backward, limit: 3).map(\.streamVersion) == [10, 9, 8])
        #expect(try store.readStream("order-2", from: 3, direction: .backward).map(\.streamVersion) == [3, 2, 1])
        #expect(try store.readStream("order-2", from: 11).isEmpty)
        #expect(try store.readStream("order-2", from: 50, direction: .backward).count == 10)
        #expect(try store.readStream("order").isEmpty) // a prefix is not a stream
        #expect(try store.readStream("user-1", direction: .backward).first?.position == 30)
        // The last stream in key order, read backward from its end.
        #expect(try store.readStream("zzz", direction: .backward).isEmpty)
    }

    @Test("whole log forward and backward, filtered by type and stream prefix")
    func logReads() async throws {
        let (dir, store) = try await seeded()
        _ = dir
        #expect(try store.readAll().map(\.position) == Array(1...30))
        #expect(try store.readAll(from: 28).map(\.position) == [28, 29, 30])
        #expect(try store.readAll(direction: .backward, limit: 3).map(\.position) == [30, 29, 28])
        #expect(try store.readAll(from: 3, direction: .backward).map(\.position) == [3, 2, 1])
        #expect(try store.readAll(from: 31).isEmpty)

        let paid = try store.readAll(filter: EventFilter(types: ["paid"]))
        #expect(paid.count == 9 || paid.count == 10)
        #expect(paid.allSatisfy { $0.type == "paid" })
        #expect(paid.map(\.position) == paid.map(\.position).sorted())

        let orders = try store.readAll(filter: EventFilter(streamPrefix: "order-"))
        #expect(orders.count == 20)
        #expect(orders.allSatisfy { $0.stream.hasPrefix("order-") })

        let both = try store.readAll(direction: .backward, filter: EventFilter(types: ["seen", "placed"], streamPrefix: "user"), limit: 4)
        #expect(both.count == 4)
        #expect(both.allSatisfy { $0.stream == "user-1" && ($0.type == "seen" || $0.type == "placed") })
        #expect(both.map(\.position) == both.map(\.position).sorted(by: >))

        // Scans that cross read chunks.
        var seen: UInt64 = 0
        try store.forEach { e in
            seen += 1
            #expect(e.position == seen)
            return true
        }
        #expect(seen == 30)
    }

    @Test("streams counted by name prefix")
    func streamCounts() async throws {
        let (dir, store) = try await seeded()
        _ = dir
        try await store.append(to: "orders", [event()])
        #expect(try store.streamCount(prefix: "order-") == 2)
        #expect(try store.streamCount(prefix: "order") == 3)
        #expect(try store.streamCount(prefix: "user-1") == 1)
        #expect(try store.streamCount(prefix: "") == 4)
        #expect(try store.streamCount(prefix: "zzz") == 0)
    }

    @Test("the position and hash as of a timestamp")
    func asOf() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        #expect(try store.head(asOf: Int64.max) == .empty)
        try await store.append(to: "s", [event(), event()])
        try await Task.sleep(for: .milliseconds(15))
        let middle = try store.readAll().last!
        try await Task.sleep(for: .milliseconds(15))
        try await store.append(to: "s", [event()])
        let all = try store.readAll()
        #expect(try store.head(asOf: middle.recordedAt) == LogHead(position: 2, hash: all[1].hash, recordedAt: middle.recordedAt))
        #expect(try store.head(asOf: middle.recordedAt + 5).position == 2)
        #expect(try store.head(asOf: all[0].recordedAt - 1) == .empty)
        #expect(try store.head(asOf: all[2].recordedAt).position == 3)
        #expect(try store.head(asOf: Int64.max) == store.head())
    }

    @Test("checkpoints survive a reopen")
    func checkpoints() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try LMDBEventStore.open(dir.data)
            #expect(try store.checkpoint("projection.a") == nil)
            try await store.setCheckpoint("projection.a", to: 42)
            try await store.setCheckpoint("projection.b", to: 7)
            try await store.setCheckpoint("projection.a", to: 43)
            store.close()
        }
        let store = try LMDBEventStore(directory: dir.data, options: .init(readOnly: false))
        #expect(try store.checkpoint("projection.a") == 43)
        #expect(try store.checkpoints() == ["projection.a": 43, "projection.b": 7])
        #expect(try store.head().position == 0)
    }

    @Test("the map grows when full, and past its maximum appends fail clearly")
    func mapFull() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data, options: .init(mapSize: 1 << 20, maxMapSize: 4 << 20))
        let payload = [UInt8](repeating: 0x41, count: 100_000)
        var appended = 0
        var failure: EventStoreError?
        for _ in 0..<100 {
            do {
                try await store.append(to: "big", [NewEvent(type: "blob", payload: payload)])
                appended += 1
            } catch {
                failure = error
                break
            }
        }
        #expect(appended > 10) // well past the initial 1 MiB map
        let error = try #require(failure)
        #expect(error.code == .mapFull)
        #expect(error.message.contains("maximum"))
        // Everything acknowledged is intact and the store still serves reads and small appends fail the same way.
        #expect(try store.head().position == UInt64(appended))
        guard case .intact(let count, _) = try store.verify() else {
            Issue.record("chain broken after map full")
            return
        }
        #expect(count == UInt64(appended))
    }
}

@Suite("Replay and ids")
struct ReplayAndIdTests {
    struct Stop: Error, Equatable {}

    @Test("forEach rethrows the caller's own error unchanged")
    func forEachRethrows() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        for _ in 0..<3 { try await store.append(to: "s", [event()]) }
        var seen = 0
        #expect(throws: Stop.self) {
            try store.forEach { _ in
                seen += 1
                if seen == 2 { throw Stop() }
                return true
            }
        }
        #expect(seen == 2)
    }

    @Test("time-ordered ids are version 7, unique, strictly increasing, and sort by time")
    func timeOrderedIds() {
        // Ten thousand ids in one millisecond: the counter runs out and the ids borrow the next
        // milliseconds, still each after the one before (other tests make ids meanwhile, all of
        // them at the clock's time, which only moves the ids further up).
        let now = Date()
        let burst = (0..<10_000).map { _ in UUID.timeOrdered(now: now) }
        for (a, b) in zip(burst, burst.dropFirst()) {
            #expect(withUnsafeBytes(of: a.uuid) { a in withUnsafeBytes(of: b.uuid) { b in a.lexicographicallyPrecedes(b) } })
        }
        let ms = UInt64(now.timeIntervalSince1970 * 1000)
        let firstMs = withUnsafeBytes(of: burst[0].uuid) { b in b.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        let lastMs = withUnsafeBytes(of: burst[burst.count - 1].uuid) { b in b.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        #expect(firstMs >= ms && lastMs > firstMs)

        let earlier = Date(timeIntervalSince1970: 1_700_000_000)
        let later = Date(timeIntervalSince1970: 1_700_000_001)
        let ids = (0..<10_000).map { _ in UUID.timeOrdered(now: earlier) }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(50) {
            let text = id.uuidString.lowercased()
            #expect(Array(text)[14] == "7") // version
            #expect("89ab".contains(Array(text)[19])) // variant
            #expect(text.hasPrefix("018bcfe5-6800")) // 1,700,000,000,000 ms = 0x018bcfe56800
        }
        #expect(UUID.timeOrdered(now: earlier).uuidString < UUID.timeOrdered(now: later).uuidString)
    }
}
