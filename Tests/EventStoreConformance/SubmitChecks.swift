import EventLog
import Foundation
import Testing

extension EventStoreConformance {
    static let submitChecks: [Check] = [
        Check("concurrent submits commit on their own: one at a wrong version fails alone") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "s", [event()])
            for round in 0..<5 {
                // Queued one after another with nothing awaited between: they may share a commit.
                let version = try store.streamVersion("s")
                let ok1 = try store.submit([StreamWrite(stream: "new-\(round)", expected: .noStream, events: [event()])])
                let bad = try store.submit([StreamWrite(stream: "s", expected: .exact(version + 7), events: [event()])])
                let ok2 = try store.submit([StreamWrite(stream: "s", expected: .exact(version), events: [event()])])
                let badNoStream = try store.submit([StreamWrite(stream: "s", expected: .noStream, events: [event()])])
                let ok3 = try store.submit([StreamWrite(stream: "other", events: [event(), event()])])
                #expect(try await ok1.result().events.map(\.streamVersion) == [1])
                #expect(try await ok2.result().events.map(\.streamVersion) == [version + 1])
                #expect(try await ok3.result().events.count == 2)
                let wrong = await attempt { try await bad.result() }
                let wrongNoStream = await attempt { try await badNoStream.result() }
                for (result, expected) in [(wrong, ExpectedVersion.exact(version + 7)), (wrongNoStream, .noStream)] {
                    guard case .failure(let error) = result else {
                        Issue.record("expected wrongExpectedVersion for \(expected), round \(round)")
                        continue
                    }
                    #expect(error.code == .wrongExpectedVersion)
                    #expect(error.conflict?.stream == "s")
                    #expect(error.conflict?.expected == expected)
                    // Which ran first decides the version it saw; either is the stream's state.
                    #expect(error.conflict.map { [version, version + 1].contains($0.actual) } == true)
                }
                #expect(try store.streamVersion("s") == version + 1)
            }
            #expect(try store.head().position == 1 + 5 * 4)
            #expect(try wholeLog(store).map(\.position) == Array(1...21))
        },

        Check("submits of one priority commit in the order they were queued") { stores in
            let store = try await stores.fresh()
            // A chain like an importer's: each append expects the version the one before creates.
            var pending: [PendingAppend] = []
            for version in 0..<50 {
                pending.append(try store.submit([
                    StreamWrite(stream: "chain", expected: version == 0 ? .noStream : .exact(UInt64(version)), events: [event()]),
                    StreamWrite(stream: "other-\(version)", expected: .noStream, events: [event()]),
                ]))
            }
            // And some with no expectation at all, which must keep their order too.
            for n in 0..<50 {
                pending.append(try store.submit([StreamWrite(stream: "free-\(n % 3)", events: [event()])]))
            }
            var last: UInt64 = 0
            for (n, handle) in pending.enumerated() {
                let result = try await handle.result()
                #expect(result.firstPosition > last, "append \(n) committed before one queued ahead of it")
                last = result.lastPosition
                // Awaiting again gives the same answer.
                #expect(try await handle.result() == result)
            }
            #expect(try store.readStream("chain").map(\.streamVersion) == Array(1...50))
            #expect(try store.head().position == 150)
        },

        Check("background appends all commit, each priority in its own order, deferred or not") { stores in
            let store = try await stores.fresh()
            func background(_ n: Int) throws -> PendingAppend {
                try store.submit([StreamWrite(stream: "bulk", expected: n == 0 ? .noStream : .exact(UInt64(n)),
                                              events: [event("bulk", "{\"n\":\(n)}")])], priority: .background)
            }
            var bulk: [PendingAppend] = []
            var live: [PendingAppend] = []
            for n in 0..<20 {
                bulk.append(try background(n))
                live.append(try store.submit([StreamWrite(stream: "live", events: [event()])]))
            }
            #expect(!store.backgroundDeferred)
            store.deferBackground(true)
            #expect(store.backgroundDeferred)
            for n in 20..<40 {
                bulk.append(try background(n))
                live.append(try store.submit([StreamWrite(stream: "live", events: [event()])], priority: .normal))
            }
            // A background append by `append` is answered while the deferral lasts.
            let direct = try await store.append([StreamWrite(stream: "bulk-direct", events: [event()])], priority: .background)
            #expect(direct.events.count == 1)
            for handles in [bulk, live] {
                var last: UInt64 = 0
                for handle in handles {
                    let position = try await handle.result().firstPosition
                    #expect(position > last)
                    last = position
                }
            }
            store.deferBackground(false)
            #expect(!store.backgroundDeferred)
            #expect(try store.readStream("bulk").map(\.streamVersion) == Array(1...40))
            #expect(try store.readStream("bulk").map { String(decoding: $0.payload, as: UTF8.self) }
                == (0..<40).map { "{\"n\":\($0)}" })
            #expect(try store.head().position == 81)
        },
    ]
}
