import EventLog
import Foundation
import Synchronization
import Testing

/// Counts events per type (table 0: type → count, UInt64 LE) and keeps the last `NewEvent.decoded` it was
/// handed as a string (table 1: "decoded" → text), counting its own `apply` calls.
struct TypeCounts: InlineProjection {
    var name = "conformance.types"
    var version: UInt32 = 1
    var tables: [String] { ["per_type", "decoded"] }
    let applied = Counter()

    final class Counter: Sendable {
        let value = Mutex(0)
    }

    func apply(_ event: EventView, _ tables: any ProjectionTables) throws {
        applied.value.withLock { $0 += 1 }
        let old = try tables.get(0, event.typeBytes).map { $0.loadUnaligned(as: UInt64.self) } ?? 0
        try withUnsafeBytes(of: old + 1) { try tables.put(0, event.typeBytes, $0) }
        if let decoded = event.decoded as? String {
            try Array("decoded".utf8).withUnsafeBytes { key in
                try Array(decoded.utf8).withUnsafeBytes { try tables.put(1, key, $0) }
            }
        }
    }

    var appliedCount: Int { applied.value.withLock { $0 } }

    /// Every type's count, as the projection has it.
    static func counts(_ store: any EventStore, name: String = "conformance.types") throws -> [String: UInt64] {
        try store.readProjection(name) { tables in
            var result: [String: UInt64] = [:]
            try tables.scan(0, from: nil) { key, value in
                result[String(decoding: key, as: UTF8.self)] = value.loadUnaligned(as: UInt64.self)
                return true
            }
            #expect(try tables.count(0) == result.count)
            return result
        }
    }

    /// Every type's count, from the log.
    static func expected(_ store: any EventStore) throws -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        try store.forEach { event in
            result[event.type, default: 0] += 1
            return true
        }
        return result
    }

    static func decoded(_ store: any EventStore) throws -> String? {
        try store.readProjection("conformance.types") { tables in
            try Array("decoded".utf8).withUnsafeBytes { try tables.get(1, $0).map { String(decoding: $0, as: UTF8.self) } }
        }
    }
}

extension EventStoreConformance {
    static let projectionChecks: [Check] = [
        Check("an inline projection folds the log when attached, then each append in its commit; a reopened store keeps it") { stores in
            var store = try await stores.fresh()
            try await seed(store)
            try await store.append([StreamWrite(stream: "m", events: [event("multi")]), StreamWrite(stream: "n", events: [event("multi")])])
            let projection = TypeCounts()
            try await store.attach(projection)
            #expect(projection.appliedCount == 32)
            #expect(try TypeCounts.counts(store) == ["placed": 12, "paid": 9, "seen": 9, "multi": 2])
            #expect(try TypeCounts.counts(store) == TypeCounts.expected(store))
            #expect(try store.projectionPosition("conformance.types") == 32)
            #expect(try TypeCounts.decoded(store) == nil, "events folded from the log carry no decoding")

            // Each append is in the projection as soon as it returns.
            var decodedEvent = event("decoded")
            decodedEvent.decoded = "as the appender has it"
            let result = try await store.append(to: "d", [decodedEvent])
            #expect(try TypeCounts.counts(store)["decoded"] == 1)
            #expect(try TypeCounts.decoded(store) == "as the appender has it")
            #expect(try store.projectionPosition("conformance.types") == result.lastPosition)
            let pending = try store.submit([StreamWrite(stream: "p", events: [event("submitted"), event("submitted")])])
            let background = try store.submit([StreamWrite(stream: "b", events: [event("background")])], priority: .background)
            _ = try await pending.result()
            _ = try await background.result()
            #expect(try TypeCounts.counts(store)["submitted"] == 2)
            #expect(try TypeCounts.counts(store)["background"] == 1)
            // Refused and deduplicated appends fold nothing in.
            await expectStoreError(.wrongExpectedVersion) { try await store.append(to: "d", expected: .noStream, [event("refused")]) }
            #expect(try await store.append(to: "d", [decodedEvent]).deduplicated)
            #expect(try TypeCounts.counts(store)["refused"] == nil)
            #expect(try TypeCounts.counts(store)["decoded"] == 1)
            let current = store
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<20 { group.addTask { try await current.append(to: "c-\(n % 4)", [event("concurrent")]) } }
                try await group.waitForAll()
            }
            #expect(try TypeCounts.counts(store) == TypeCounts.expected(store))
            #expect(try store.projectionPosition("conformance.types") == store.head().position)
            #expect(projection.appliedCount == 56)

            // Reopened, it resumes from its position: only what was appended meanwhile is folded in.
            store = try await stores.reopen(store)
            try await store.append(to: "while-detached", [event("later"), event("later")])
            let again = TypeCounts()
            try await store.attach(again)
            #expect(again.appliedCount == 2)
            #expect(try TypeCounts.counts(store) == TypeCounts.expected(store))
            #expect(try store.projectionPosition("conformance.types") == 58)
            try await store.append(to: "after", [event("later")])
            #expect(try TypeCounts.counts(store)["later"] == 3)
            #expect(try store.projectionPosition("conformance.types") == store.head().position)

            // Another version is emptied and built again from the whole log.
            store = try await stores.reopen(store)
            let rebuilt = TypeCounts(version: 2)
            try await store.attach(rebuilt)
            #expect(rebuilt.appliedCount == 59)
            #expect(try TypeCounts.counts(store) == TypeCounts.expected(store))
            #expect(try store.projectionPosition("conformance.types") == 59)
        },

        Check("two projections are kept apart, each in its own tables") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "s", [event("a")])
            let first = TypeCounts(name: "conformance.first")
            try await store.attach(first)
            try await store.append(to: "s", [event("b")])
            let second = TypeCounts(name: "conformance.second")
            try await store.attach(second)
            try await store.append(to: "s", [event("c")])
            #expect(try TypeCounts.counts(store, name: "conformance.first") == ["a": 1, "b": 1, "c": 1])
            #expect(try TypeCounts.counts(store, name: "conformance.second") == ["a": 1, "b": 1, "c": 1])
            #expect(first.appliedCount == 3 && second.appliedCount == 3)
            #expect(try store.projectionPosition("conformance.first") == 3)
            #expect(try store.projectionPosition("conformance.second") == 3)
            // The tables `readProjection` hands out are read-only.
            do {
                try store.readProjection("conformance.first") { tables in
                    try Array("a".utf8).withUnsafeBytes { key in
                        try withUnsafeBytes(of: UInt64(5)) { try tables.put(0, key, $0) }
                    }
                }
                Issue.record("a write to the tables readProjection handed out did not throw")
            } catch {}
            #expect(try TypeCounts.counts(store, name: "conformance.first")["a"] == 1)
        },
    ]
}
