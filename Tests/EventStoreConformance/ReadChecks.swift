import EventLog
import Foundation
import Testing

extension EventStoreConformance {
    /// The positions of `seed(_:)`'s events that `filter` selects, in log order.
    private static func seeded(_ filter: EventFilter) -> [UInt64] {
        (1...30).filter { p in
            let stream = seedStreams[(p - 1) % 3], type = seedTypes[((p - 1) / 3) % 3]
            return (filter.types?.contains(type) ?? true) && stream.hasPrefix(filter.streamPrefix ?? "")
        }.map { UInt64($0) }
    }

    static let readChecks: [Check] = [
        Check("readStream forward and backward, from a version, with a limit; streamVersion; streamCount(prefix:)") { stores in
            let store = try await stores.fresh()
            #expect(try store.readStream("order-2").isEmpty)
            #expect(try store.streamVersion("order-2") == 0)
            #expect(try store.streamCount(prefix: "") == 0)
            try await seed(store)
            let forward = try store.readStream("order-2")
            #expect(forward.map(\.streamVersion) == Array(1...10))
            #expect(forward.map(\.position) == stride(from: 2, through: 29, by: 3).map { UInt64($0) })
            #expect(forward.allSatisfy { $0.stream == "order-2" })
            #expect(forward.compactMap(seedIndex) == stride(from: 1, through: 28, by: 3).map { $0 })
            #expect(try store.readStream("order-2", limit: 4).map(\.streamVersion) == [1, 2, 3, 4])
            #expect(try store.readStream("order-2", from: 4, limit: 3).map(\.streamVersion) == [4, 5, 6])
            #expect(try store.readStream("order-2", from: 8).map(\.streamVersion) == [8, 9, 10])
            #expect(try store.readStream("order-2", direction: .backward).map(\.streamVersion) == Array((1...10).reversed()))
            #expect(try store.readStream("order-2", direction: .backward, limit: 3).map(\.streamVersion) == [10, 9, 8])
            #expect(try store.readStream("order-2", from: 3, direction: .backward).map(\.streamVersion) == [3, 2, 1])
            #expect(try store.readStream("order-2", from: 6, direction: .backward, limit: 2).map(\.streamVersion) == [6, 5])
            #expect(try store.readStream("order-2", from: 11).isEmpty)
            #expect(try store.readStream("order-2", from: 50, direction: .backward).count == 10)
            #expect(try store.readStream("order").isEmpty, "a prefix is not a stream")
            #expect(try store.readStream("order-22").isEmpty)
            #expect(try store.readStream("user-1", direction: .backward).first?.position == 30)
            #expect(try store.readStream("zzz", direction: .backward).isEmpty)
            #expect(try store.readStream("a", direction: .backward).isEmpty)
            #expect(try store.readStream("order-2") == forward, "reads are repeatable")
            #expect(try store.streamVersion("order-1") == 10)
            #expect(try store.streamVersion("order") == 0)
            try await store.append(to: "orders", [event()])
            #expect(try store.streamCount(prefix: "order-") == 2)
            #expect(try store.streamCount(prefix: "order") == 3)
            #expect(try store.streamCount(prefix: "user-1") == 1)
            #expect(try store.streamCount(prefix: "") == 4)
            #expect(try store.streamCount(prefix: "zzz") == 0)
        },

        Check("readAll both directions, from a position, with a limit, filtered by type and stream prefix") { stores in
            let store = try await stores.fresh()
            #expect(try store.readAll().isEmpty)
            #expect(try store.readAll(direction: .backward).isEmpty)
            try await seed(store)
            let all = try store.readAll()
            #expect(all.map(\.position) == Array(1...30))
            #expect(all.compactMap(seedIndex) == Array(0..<30))
            #expect(try store.readAll(limit: 5).map(\.position) == Array(1...5))
            #expect(try store.readAll(from: 28).map(\.position) == [28, 29, 30])
            #expect(try store.readAll(from: 0).map(\.position) == Array(1...30))
            #expect(try store.readAll(direction: .backward).map(\.position) == Array((1...30).reversed()))
            #expect(try store.readAll(direction: .backward, limit: 3).map(\.position) == [30, 29, 28])
            #expect(try store.readAll(from: 3, direction: .backward).map(\.position) == [3, 2, 1])
            #expect(try store.readAll(from: 99, direction: .backward, limit: 2).map(\.position) == [30, 29])
            #expect(try store.readAll(from: 31).isEmpty)
            let filters = [
                EventFilter(types: ["paid"]),
                EventFilter(streamPrefix: "order-"),
                EventFilter(types: ["seen", "placed"], streamPrefix: "user"),
                EventFilter(types: ["nothing"]),
                EventFilter(streamPrefix: "order-2"),
            ]
            for filter in filters {
                let expected = seeded(filter)
                let forward = try store.readAll(filter: filter)
                #expect(forward.map(\.position) == expected, "\(filter)")
                #expect(forward == expected.map { all[Int($0) - 1] }, "\(filter)")
                #expect(try store.readAll(direction: .backward, filter: filter).map(\.position) == expected.reversed(), "\(filter)")
                // Only selected events count towards the limit.
                #expect(try store.readAll(filter: filter, limit: 4).map(\.position) == Array(expected.prefix(4)), "\(filter)")
                #expect(try store.readAll(direction: .backward, filter: filter, limit: 4).map(\.position)
                    == Array(expected.reversed().prefix(4)), "\(filter)")
                #expect(try store.readAll(from: 10, filter: filter, limit: 3).map(\.position)
                    == Array(expected.filter { $0 >= 10 }.prefix(3)), "\(filter)")
                #expect(try store.readAll(from: 20, direction: .backward, filter: filter, limit: 3).map(\.position)
                    == Array(expected.filter { $0 <= 20 }.reversed().prefix(3)), "\(filter)")
            }
        },

        Check("readPage pages through the selected events; forEach and forEachView replay what readAll reads") { stores in
            let store = try await stores.fresh()
            #expect(try store.readPage(from: 1, filter: .all, limit: 10).events.isEmpty)
            try await seed(store)
            let all = try store.readAll()
            for filter in [EventFilter.all, EventFilter(types: ["seen"]), EventFilter(streamPrefix: "user-"), EventFilter(types: ["no"])] {
                for limit in [1, 4, 100] {
                    var next: UInt64 = 1
                    var got: [RecordedEvent] = []
                    for _ in 0..<100 {
                        let page = try store.readPage(from: next, filter: filter, limit: limit)
                        #expect(page.events.count <= limit)
                        // The page holds every selected event of [next, page.next), in order.
                        #expect(page.next >= next && page.next <= 31, "\(filter) limit \(limit)")
                        #expect(page.events.map(\.position) == seeded(filter).filter { $0 >= next && $0 < page.next },
                                "\(filter) limit \(limit) from \(next)")
                        got += page.events
                        if page.events.isEmpty && page.next == 31 { break }
                        next = page.next
                    }
                    #expect(got.map(\.position) == seeded(filter), "\(filter) limit \(limit)")
                    #expect(got == seeded(filter).map { all[Int($0) - 1] })
                }
            }
            #expect(try store.readPage(from: 31, filter: .all, limit: 10).events.isEmpty)

            var replayed: [RecordedEvent] = []
            try store.forEach { replayed.append($0); return true }
            #expect(replayed == all)
            replayed = []
            try store.forEach(from: 25) { replayed.append($0); return true }
            #expect(replayed == Array(all[24...]))
            replayed = []
            try store.forEach(from: 5, filter: EventFilter(types: ["paid"])) { replayed.append($0); return replayed.count < 3 }
            #expect(replayed.map(\.position) == Array(seeded(EventFilter(types: ["paid"])).filter { $0 >= 5 }.prefix(3)))

            var views = 0
            try store.forEachView { view in
                let e = all[Int(view.position) - 1]
                #expect(view.streamVersion == e.streamVersion)
                #expect(view.recordedAt == e.recordedAt)
                #expect(view.stream == e.stream)
                #expect(String(decoding: view.streamBytes, as: UTF8.self) == e.stream)
                #expect(String(decoding: view.typeBytes, as: UTF8.self) == e.type)
                #expect([UInt8](view.payloadBytes) == e.payload)
                #expect(view.actor == e.metadata.actor)
                #expect(view.decoded == nil, "an event read from the log has no appender's decoding")
                #expect(view.decode() == e)
                views += 1
                return true
            }
            #expect(views == 30)
            var positions: [UInt64] = []
            try store.forEachView(from: 11) { positions.append($0.position); return positions.count < 5 }
            #expect(positions == Array(11...15))

            // The caller's own error comes back unchanged.
            struct Stop: Error, Equatable {}
            var calls = 0
            #expect(throws: Stop.self) { try store.forEach { _ in calls += 1; if calls == 2 { throw Stop() }; return true } }
            #expect(calls == 2)
            #expect(throws: Stop.self) { try store.forEachView { _ in throw Stop() } }
        },

        Check("event(at:), position(ofEventId:), head(asOf:) before, between and after, and stats()") { stores in
            let store = try await stores.fresh()
            #expect(try store.event(at: 1) == nil)
            #expect(try store.head(asOf: Int64.max) == .empty)
            let stats0 = try store.stats()
            #expect(stats0.eventCount == 0 && stats0.streamCount == 0 && stats0.head == .empty)
            try await store.append(to: "s", [event(), event()])
            try await Task.sleep(for: .milliseconds(15))
            try await store.append(to: "t", [event()])
            try await Task.sleep(for: .milliseconds(15))
            try await store.append(to: "s", [event()])
            let all = try store.readAll()
            for e in all {
                #expect(try store.event(at: e.position) == e)
                #expect(try store.position(ofEventId: e.id) == e.position)
            }
            #expect(try store.event(at: 0) == nil)
            #expect(try store.event(at: 5) == nil)
            #expect(try store.position(ofEventId: UUID()) == nil)
            func head(_ e: RecordedEvent) -> LogHead { LogHead(position: e.position, hash: e.hash, recordedAt: e.recordedAt) }
            #expect(try store.head(asOf: all[0].recordedAt - 1) == .empty)
            #expect(try store.head(asOf: 0) == .empty)
            #expect(try store.head(asOf: all[1].recordedAt) == head(all[1]))
            #expect(try store.head(asOf: all[2].recordedAt - 1) == head(all[1]), "between two commits")
            #expect(try store.head(asOf: all[2].recordedAt) == head(all[2]))
            #expect(try store.head(asOf: all[3].recordedAt + 1_000) == head(all[3]))
            #expect(try store.head(asOf: Int64.max) == store.head())
            let stats = try store.stats()
            #expect(stats.eventCount == 4)
            #expect(stats.streamCount == 2)
            #expect(stats.head == head(all[3]))
        },
    ]
}
