import EventLog
import Foundation
import Testing

extension EventStoreConformance {
    static let appendChecks: [Check] = [
        Check("positions are gap-free from 1 in commit order; stream versions contiguous from 1") { stores in
            let store = try await stores.fresh()
            #expect(try store.head() == .empty)
            var expected: UInt64 = 1
            var versions: [String: UInt64] = [:]
            for round in 0..<10 {
                // One event, several events, then two streams in one append.
                let writes: [StreamWrite] = switch round % 3 {
                case 0: [StreamWrite(stream: "a", events: [event()])]
                case 1: [StreamWrite(stream: "b-\(round)", events: [event(), event(), event()])]
                default: [StreamWrite(stream: "a", events: [event()]), StreamWrite(stream: "c", events: [event(), event()])]
                }
                let result = try await store.append(writes)
                #expect(!result.deduplicated)
                let ids = writes.flatMap { $0.events.map(\.id) }
                #expect(result.events.map(\.id) == ids, "the result lists the events in the order given")
                for (appended, write) in zip(result.events, writes.flatMap { w in w.events.map { _ in w.stream } }) {
                    #expect(appended.position == expected, "round \(round)")
                    #expect(appended.stream == write)
                    versions[write, default: 0] += 1
                    #expect(appended.streamVersion == versions[write])
                    expected += 1
                }
                #expect(result.firstPosition == result.events.first?.position)
                #expect(result.lastPosition == expected - 1)
                #expect(try store.head().position == expected - 1)
                #expect(try store.head().hash == result.events.last?.hash)
            }
            let all = try wholeLog(store)
            #expect(all.map(\.position) == Array(1..<expected))
            for (stream, version) in versions {
                #expect(try store.readStream(stream).map(\.streamVersion) == Array(1...version), "stream \(stream)")
                #expect(try store.streamVersion(stream) == version)
            }
        },

        Check("positions stay gap-free and stream versions contiguous under many concurrent appenders") { stores in
            let store = try await stores.fresh()
            let appenders = 16
            let perAppender = 25
            let results = try await withThrowingTaskGroup(of: [AppendResult].self) { group in
                for a in 0..<appenders {
                    group.addTask {
                        var mine: [AppendResult] = []
                        for n in 0..<perAppender {
                            // Half the appenders share one stream to contend on it; some appends write two events.
                            let stream = a % 2 == 0 ? "shared" : "own-\(a)"
                            let events = (0..<(n % 5 == 0 ? 2 : 1)).map { k in event("t", "{\"a\":\(a),\"n\":\(n),\"k\":\(k)}") }
                            mine.append(try await store.append(to: stream, events))
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let total = UInt64(results.reduce(0) { $0 + $1.events.count })
            #expect(results.flatMap { $0.events.map(\.position) }.sorted() == Array(1...total))
            for result in results {
                // One append's events are consecutive.
                #expect(result.events.map(\.position) == Array(result.firstPosition...result.lastPosition))
            }
            #expect(try store.head().position == total)
            let all = try wholeLog(store)
            #expect(all.map(\.position) == Array(1...total))
            var lastVersion: [String: UInt64] = [:]
            var lastN: [String: Int] = [:]
            for (a, b) in zip(all, all.dropFirst()) {
                #expect(b.previousHash == a.hash && b.recordedAt >= a.recordedAt, "position \(b.position)")
            }
            for e in all {
                #expect(e.streamVersion == (lastVersion[e.stream] ?? 0) + 1, "stream \(e.stream) at \(e.position)")
                lastVersion[e.stream] = e.streamVersion
                // Each appender's events are in the order it appended them.
                let json = try #require(try JSONSerialization.jsonObject(with: Data(e.payload)) as? [String: Int])
                let key = "\(json["a"] ?? -1)"
                let order = (json["n"] ?? 0) * 2 + (json["k"] ?? 0)
                #expect(order > lastN[key] ?? -1, "appender \(key) at \(e.position)")
                lastN[key] = order
            }
            #expect(lastVersion["shared"] == all.filter { $0.stream == "shared" }.count.asUInt64)
            #expect(try store.verify().intact?.count == total)
        },

        Check("every ExpectedVersion is accepted or refused as it says, with wrongExpectedVersion and the conflict") { stores in
            let store = try await stores.fresh()
            // (expected, version the stream is at first, accepted)
            let cases: [(ExpectedVersion, UInt64, Bool)] = [
                (.any, 0, true), (.any, 2, true),
                (.noStream, 0, true), (.noStream, 2, false),
                (.streamExists, 0, false), (.streamExists, 2, true),
                (.exact(0), 0, true), (.exact(0), 2, false),
                (.exact(1), 0, false), (.exact(2), 2, true),
                (.exact(1), 2, false), (.exact(3), 2, false),
            ]
            for (n, (expected, before, accepted)) in cases.enumerated() {
                let stream = "case-\(n)"
                if before > 0 {
                    try await store.append(to: stream, (0..<before).map { _ in event() })
                }
                let head = try store.head()
                let what = "expecting \(expected) of a stream at \(before)"
                if accepted {
                    let result = try await store.append(to: stream, expected: expected, [event(), event()])
                    #expect(result.events.map(\.streamVersion) == [before + 1, before + 2], "\(what)")
                    #expect(result.events.map(\.position) == [head.position + 1, head.position + 2], "\(what)")
                    #expect(try store.streamVersion(stream) == before + 2, "\(what)")
                } else {
                    let error = await expectStoreError(.wrongExpectedVersion) {
                        try await store.append(to: stream, expected: expected, [event()])
                    }
                    #expect(error?.conflict == .init(stream: stream, expected: expected, actual: before), "\(what)")
                    #expect(try store.streamVersion(stream) == before, "\(what)")
                    #expect(try store.head() == head, "\(what): nothing written")
                }
            }
            // A refused stream that does not exist is not created.
            #expect(try store.streamCount(prefix: "case-") == cases.filter { $0.1 > 0 || $0.2 }.count)
        },

        Check("a multi-stream append is atomic: one stream at the wrong version writes nothing of it") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "b", [event()])
            let result = try await store.append([
                StreamWrite(stream: "a", expected: .noStream, events: [event("a1"), event("a2")]),
                StreamWrite(stream: "b", expected: .exact(1), events: [event("b2")]),
            ])
            #expect(result.events.map(\.position) == [2, 3, 4])
            #expect(result.events.map(\.stream) == ["a", "a", "b"])
            #expect(result.events.map(\.streamVersion) == [1, 2, 2])
            let head = try store.head()
            let refused = [event("c1"), event("a3"), event("b3")]
            for wrong in 0..<3 {
                // The first, a middle or the last stream is the one at the wrong version.
                let error = await expectStoreError(.wrongExpectedVersion) {
                    try await store.append([
                        StreamWrite(stream: "c", expected: wrong == 0 ? .streamExists : .noStream, events: [refused[0]]),
                        StreamWrite(stream: "a", expected: wrong == 1 ? .exact(1) : .exact(2), events: [refused[1]]),
                        StreamWrite(stream: "b", expected: wrong == 2 ? .noStream : .streamExists, events: [refused[2]]),
                    ])
                }
                #expect(error?.conflict?.stream == ["c", "a", "b"][wrong])
                #expect(try store.head() == head)
                #expect(try store.readStream("c").isEmpty)
                #expect(try store.streamVersion("c") == 0)
                #expect(try store.streamVersion("a") == 2)
                #expect(try store.streamVersion("b") == 2)
                for e in refused {
                    #expect(try store.position(ofEventId: e.id) == nil)
                }
            }
            #expect(try store.readAll().count == 4)
        },

        Check("re-appending stored ids returns the original positions with deduplicated and writes nothing") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "before", [event()])
            let ids = [UUID(), UUID(), UUID()]
            func writes() -> [StreamWrite] {
                [
                    StreamWrite(stream: "a", expected: .noStream, events: [event("t", "{}", id: ids[0]), event("t", "{}", id: ids[1])]),
                    StreamWrite(stream: "b", events: [event("t", "{}", id: ids[2])]),
                ]
            }
            let first = try await store.append(writes())
            #expect(!first.deduplicated)
            #expect(first.events.map(\.position) == [2, 3, 4])
            try await store.append(to: "after", [event()])
            let head = try store.head()
            // Again, with the expectation of the first time (a retried command), and by submit.
            let again = try await store.append(writes())
            #expect(again.deduplicated)
            #expect(again.events == first.events)
            let submitted = try await store.submit(writes()).result()
            #expect(submitted.deduplicated)
            #expect(submitted.events == first.events)
            // A single event alone.
            let one = try await store.append(to: "b", [event("t", "{}", id: ids[2])])
            #expect(one.deduplicated)
            #expect(one.events == [first.events[2]])
            #expect(try store.head() == head)
            #expect(try store.streamVersion("a") == 2)
            #expect(try store.readAll().count == 5)
            for (id, appended) in zip(ids, first.events) {
                #expect(try store.position(ofEventId: id) == appended.position)
            }
        },

        Check("an append with some ids stored and some not fails with idempotencyConflict and writes nothing") { stores in
            let store = try await stores.fresh()
            let stored = UUID()
            try await store.append(to: "a", [event("t", "{}", id: stored)])
            let head = try store.head()
            let fresh = event()
            await expectStoreError(.idempotencyConflict) {
                try await store.append(to: "a", [fresh, event("t", "{}", id: stored)])
            }
            let other = event()
            await expectStoreError(.idempotencyConflict) {
                try await store.append([
                    StreamWrite(stream: "b", events: [other]),
                    StreamWrite(stream: "a", events: [event("t", "{}", id: stored)]),
                ])
            }
            #expect(try store.head() == head)
            #expect(try store.position(ofEventId: fresh.id) == nil)
            #expect(try store.position(ofEventId: other.id) == nil)
            #expect(try store.streamVersion("b") == 0)
        },

        Check("invalid appends fail with invalidArgument or payloadTooLarge and write nothing") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "s", [event()])
            let head = try store.head()
            let id = UUID()
            let meta = EventMetadata(actor: String(repeating: "a", count: EventLimits.maxMetadataBytes + 1))
            let invalid: [(String, [StreamWrite])] = [
                ("an empty stream name", [StreamWrite(stream: "", events: [event()])]),
                ("a stream name over 256 bytes", [StreamWrite(stream: String(repeating: "n", count: 257), events: [event()])]),
                ("a NUL in a stream name", [StreamWrite(stream: "a\u{0}b", events: [event()])]),
                ("no streams", []),
                ("a stream without events", [StreamWrite(stream: "s", events: [])]),
                ("an empty type", [StreamWrite(stream: "s", events: [event("")])]),
                ("metadata over 1024 bytes", [StreamWrite(stream: "s", events: [NewEvent(type: "t", json: "{}", metadata: meta)])]),
                ("duplicate ids in one append", [StreamWrite(stream: "s", events: [event("t", "{}", id: id), event("t", "{}", id: id)])]),
                ("duplicate ids across streams", [StreamWrite(stream: "s", events: [event("t", "{}", id: id)]),
                                                 StreamWrite(stream: "u", events: [event("t", "{}", id: id)])]),
                ("one stream twice", [StreamWrite(stream: "s", events: [event()]), StreamWrite(stream: "s", events: [event()])]),
            ]
            for (what, writes) in invalid {
                let error = await expectStoreError(.invalidArgument) { try await store.append(writes) }
                #expect(error != nil, "\(what)")
                await expectStoreError(.invalidArgument) { _ = try store.submit(writes) }
            }
            let big = NewEvent(type: "big", payload: [UInt8](repeating: 0x20, count: EventLimits.maxPayloadBytes + 1))
            let tooLarge = await expectStoreError(.payloadTooLarge) {
                try await store.append([StreamWrite(stream: "s", events: [event()]), StreamWrite(stream: "big", events: [big])])
            }
            #expect(tooLarge?.field == "payload")
            await expectStoreError(.payloadTooLarge) { _ = try store.submit([StreamWrite(stream: "big", events: [big])]) }
            #expect(try store.head() == head)
            #expect(try store.streamVersion("big") == 0)
            #expect(try store.streamVersion("s") == 1)
            // The limits themselves are accepted.
            let max = NewEvent(type: "max", payload: [UInt8](repeating: 0x20, count: EventLimits.maxPayloadBytes))
            try await store.append(to: "s", [max])
            try await store.append(to: String(repeating: "é", count: 128), [event()]) // 256 bytes
            let stored = try #require(try store.event(at: head.position + 1))
            #expect(stored.payload.count == EventLimits.maxPayloadBytes)
            #expect(try store.head().position == head.position + 2)
        },
    ]
}

extension Int {
    var asUInt64: UInt64 { UInt64(self) }
}
