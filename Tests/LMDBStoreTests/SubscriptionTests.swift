import EventStoreConformance
import Foundation
import RunlogTestSupport
import Testing
@testable import EventLog
@testable import LMDBStore

@Suite("Subscriptions")
struct SubscriptionTests {
    @Test("catch-up then live with no gap and no duplicate while appends run")
    func catchUpThenLive() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        for i in 0..<1500 { try await store.append(to: "s-\(i % 7)", [event("old")]) }
        let total: UInt64 = 4000
        let appender = Task {
            // Concurrent appenders keep writing while the subscriber catches up and goes live.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for a in 0..<5 {
                    group.addTask {
                        for _ in 0..<500 { try await store.append(to: "live-\(a)", [event("new")]) }
                    }
                }
                try await group.waitForAll()
            }
        }
        var expected: UInt64 = 1
        for try await e in store.subscribe(from: 1, pageSize: 100) {
            #expect(e.position == expected)
            expected += 1
            if e.position == total { break }
        }
        try await appender.value
        #expect(expected == total + 1)
    }

    @Test("a filtered subscription from the middle sees only its events, in order")
    func filtered() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        for i in 0..<100 { try await store.append(to: i % 2 == 0 ? "even" : "odd", [event(i % 2 == 0 ? "e" : "o")]) }
        let later = Task {
            try await Task.sleep(for: .milliseconds(50))
            for _ in 0..<20 { try await store.append(to: "odd", [event("o")]); try await store.append(to: "even", [event("e")]) }
        }
        var got: [RecordedEvent] = []
        for try await e in store.subscribe(from: 51, filter: EventFilter(types: ["e"])) {
            got.append(e)
            if got.count == 25 + 20 { break }
        }
        try await later.value
        #expect(got.allSatisfy { $0.type == "e" && $0.stream == "even" })
        #expect(got.first?.position == 51)
        #expect(got.map(\.position) == got.map(\.position).sorted())
        #expect(Set(got.map(\.position)).count == got.count)
    }

    @Test("a waiting subscription ends on cancel and when the store closes")
    func cancelAndClose() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await store.append(to: "s", [event()])
        let waiting = Task {
            var n = 0
            for try await _ in store.subscribe() { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }

        let untilClose = Task {
            var n = 0
            for try await _ in store.subscribe() { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(50))
        store.close()
        #expect(try await untilClose.value == 1)
    }
}
