import EventLog
import Foundation
import Synchronization
import Testing

extension EventStoreConformance {
    static let sideTableChecks: [Check] = [
        Check("vault entries: put, get, replace, delete; outside the log") { stores in
            let store = try await stores.fresh()
            #expect(try store.vaultEntry("key/a") == nil)
            try await store.putVaultEntry("key/a", [1, 2, 3])
            try await store.putVaultEntry("key/b", [])
            try await store.putVaultEntry("key/c", [UInt8](repeating: 9, count: 4_000))
            #expect(try store.vaultEntry("key/a") == [1, 2, 3])
            #expect(try store.vaultEntry("key/b") == [], "an empty value is not an absent one")
            #expect(try store.vaultEntry("key/c")?.count == 4_000)
            #expect(try store.vaultEntry("key") == nil)
            try await store.putVaultEntry("key/a", [4])
            #expect(try store.vaultEntry("key/a") == [4])
            try await store.deleteVaultEntry("key/a")
            try await store.deleteVaultEntry("never/there")
            #expect(try store.vaultEntry("key/a") == nil)
            #expect(try store.vaultEntry("key/b") == [])
            #expect(try store.requestRecord("key/b") == nil, "the vault and the request records are separate tables")
            #expect(try store.head() == .empty, "side writes append no event")
        },

        Check("request records: put, get, list in name order a page at a time, delete") { stores in
            let store = try await stores.fresh()
            #expect(try store.requestRecords(limit: 10) { Array($0) }.records.isEmpty)
            let names = ["idem/b", "idem/a", "other", "idem/c/1", "idem/c", "z", "a"]
            for name in names { try await store.putRequestRecord(name, Array(name.utf8)) }
            #expect(try store.requestRecord("idem/a") == Array("idem/a".utf8))
            #expect(try store.requestRecord("idem") == nil)
            try await store.putRequestRecord("idem/a", Array("again".utf8))
            #expect(try store.requestRecord("idem/a") == Array("again".utf8))
            #expect(try store.vaultEntry("idem/a") == nil)
            let sorted = names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }

            let everything = try store.requestRecords(after: nil, limit: 100) { String(decoding: $0, as: UTF8.self) }
            #expect(everything.records.map(\.name) == sorted)
            #expect(everything.records.first { $0.name == "idem/a" }?.value == "again")
            #expect(everything.records.filter { $0.name != "idem/a" }.allSatisfy { $0.name == $0.value })
            for limit in [1, 2, 3, 7] {
                // Page by the last name examined until it is nil; `select` skips the records it returns nil for.
                var after: String?
                var seen: [String] = []
                var kept: [String] = []
                var pages = 0
                repeat {
                    let page = try store.requestRecords(after: after, limit: limit) { bytes -> String? in
                        let value = String(decoding: bytes, as: UTF8.self)
                        return value.hasPrefix("idem") ? value : nil
                    }
                    let examined = sorted.filter { name in after.map { $0.utf8.lexicographicallyPrecedes(name.utf8) } ?? true }
                    #expect(page.records.map(\.name) == Array(examined.prefix(limit)).filter { $0.hasPrefix("idem") && $0 != "idem/a" },
                            "limit \(limit) after \(after ?? "nil")")
                    if let last = page.last { #expect(last == examined.prefix(limit).last, "limit \(limit)") }
                    if page.last == nil { #expect(examined.count <= limit, "records remain after a page without a last name") }
                    kept += page.records.map(\.name)
                    seen += examined.prefix(limit)
                    after = page.last
                    pages += 1
                } while after != nil && pages < 20
                #expect(seen == sorted, "limit \(limit)")
                #expect(kept == sorted.filter { $0.hasPrefix("idem") && $0 != "idem/a" })
                #expect(pages <= sorted.count / limit + 1)
            }
            let tail = try store.requestRecords(after: "idem/c", limit: 2) { _ in true }
            #expect(tail.records.map(\.name) == ["idem/c/1", "other"], "after a name that is there")
            let between = try store.requestRecords(after: "b", limit: 1) { _ in true }
            #expect(between.records.map(\.name) == ["idem/a"], "after a name that is not there")

            try await store.deleteRequestRecords(["idem/a", "z", "not-there"])
            try await store.deleteRequestRecords([])
            #expect(try store.requestRecord("idem/a") == nil)
            #expect(try store.requestRecord("z") == nil)
            #expect(try store.requestRecords(limit: 100) { _ in true }.records.map(\.name)
                == sorted.filter { $0 != "idem/a" && $0 != "z" })
            #expect(try store.head() == .empty)
        },

        Check("a RequestMark is written in the commit of its append's events, never over a record, never by a failed append") { stores in
            let store = try await stores.fresh()
            let mark = RequestMark(name: "idem/k/1", value: Array("first".utf8))
            try await store.append(to: "s", expected: .noStream, [event()])
            #expect(try store.requestRecord("idem/k/1") == nil, "an unmarked append writes no record")
            // Refused appends write no mark: a wrong version, an id conflict, bad input.
            let stored = try #require(try store.readAll().first?.id)
            try await RequestMark.$current.withValue(mark) {
                await expectStoreError(.wrongExpectedVersion) { try await store.append(to: "s", expected: .noStream, [event()]) }
                await expectStoreError(.idempotencyConflict) { try await store.append(to: "s", [event("t", "{}", id: stored), event()]) }
                await expectStoreError(.invalidArgument) { try await store.append(to: "", [event()]) }
                let failing = try store.submit([StreamWrite(stream: "s", expected: .exact(9), events: [event()])])
                await expectStoreError(.wrongExpectedVersion) { _ = try await failing.result() }
            }
            #expect(try store.requestRecord("idem/k/1") == nil)
            // Written with the events: once the append has returned, the mark is there.
            let same = event()
            try await RequestMark.$current.withValue(mark) {
                let result = try await store.append(to: "s", [same])
                #expect(try store.requestRecord("idem/k/1") == Array("first".utf8))
                #expect(try store.head().position == result.lastPosition)
                // A later marked append keeps the record there.
                try await RequestMark.$current.withValue(.init(name: "idem/k/1", value: Array("second".utf8))) {
                    _ = try await store.append(to: "s", [event()])
                }
            }
            #expect(try store.requestRecord("idem/k/1") == Array("first".utf8))
            // A record put on its own is not overwritten by a mark either, and a deduplicated append writes none.
            try await store.putRequestRecord("idem/k/1", Array("answer".utf8))
            try await RequestMark.$current.withValue(.init(name: "idem/k/1", value: Array("third".utf8))) {
                _ = try await store.append(to: "t", [event()])
            }
            try await RequestMark.$current.withValue(.init(name: "idem/k/2", value: Array("x".utf8))) {
                let again = try await store.append(to: "s", [same])
                #expect(again.deduplicated)
            }
            #expect(try store.requestRecord("idem/k/1") == Array("answer".utf8))
            #expect(try store.requestRecord("idem/k/2") == nil)
            // Submitted appends carry the mark of the task that submits them; concurrent marked appends each write theirs.
            try await RequestMark.$current.withValue(.init(name: "idem/k/3", value: [3])) {
                _ = try await store.submit([StreamWrite(stream: "u", events: [event()])]).result()
            }
            #expect(try store.requestRecord("idem/k/3") == [3])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<10 {
                    group.addTask {
                        try await RequestMark.$current.withValue(.init(name: "idem/c/\(n)", value: [UInt8(n)])) {
                            _ = try await store.append(to: "c-\(n % 3)", [event()])
                        }
                    }
                }
                try await group.waitForAll()
            }
            for n in 0..<10 { #expect(try store.requestRecord("idem/c/\(n)") == [UInt8(n)]) }
            #expect(try store.head().position == 15)
        },

        Check("a queued request record commits with the next commit, in order with appends, and reports when durable; close flushes it") { stores in
            var store = try await stores.fresh()
            let mark = RequestMark(name: "idem/q/1", value: Array("mark".utf8))
            try await RequestMark.$current.withValue(mark) { _ = try await store.append(to: "q", [event()]) }
            // Queued after the marked append: it replaces the mark, and the callback comes once, after it is readable.
            let durable = Mutex<[EventStoreError?]>([])
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                do {
                    try store.queueRequestRecord("idem/q/1", Array("answer".utf8)) { error in
                        durable.withLock { $0.append(error) }
                        done.resume()
                    }
                } catch {
                    Issue.record("queueRequestRecord threw \(error)")
                    done.resume()
                }
            }
            #expect(durable.withLock { $0.count == 1 && $0[0] == nil })
            #expect(try store.requestRecord("idem/q/1") == Array("answer".utf8))
            // Queued before an append that is awaited: durable once that append returns (the same or an earlier commit).
            try store.queueRequestRecord("idem/q/2", [2]) { _ in }
            _ = try await store.append(to: "q", [event()])
            #expect(try store.requestRecord("idem/q/2") == [2])
            // Bad input throws at once and queues nothing.
            await expectStoreError(.invalidArgument) { try store.queueRequestRecord("", [1]) { _ in } }
            await expectStoreError(.invalidArgument) {
                try store.queueRequestRecord(String(repeating: "n", count: 600), [1]) { _ in }
            }
            // Queued just before a close: written by the close, there after a reopen.
            try store.queueRequestRecord("idem/q/3", [3]) { _ in }
            store = try await stores.reopen(store)
            #expect(try store.requestRecord("idem/q/3") == [3])
            #expect(try store.head().position == 2)
        },

        Check("checkpoints: set, get, move, list") { stores in
            let store = try await stores.fresh()
            #expect(try store.checkpoint("projection.a") == nil)
            #expect(try store.checkpoints().isEmpty)
            try await store.setCheckpoint("projection.a", to: 42)
            try await store.setCheckpoint("projection.b", to: 7)
            try await store.setCheckpoint("projection.c", to: 0)
            try await store.setCheckpoint("projection.a", to: 43)
            try await store.setCheckpoint("projection.b", to: 3)
            #expect(try store.checkpoint("projection.a") == 43)
            #expect(try store.checkpoint("projection.b") == 3, "a checkpoint may move back (a rebuild)")
            #expect(try store.checkpoint("projection") == nil)
            #expect(try store.checkpoints() == ["projection.a": 43, "projection.b": 3, "projection.c": 0])
            #expect(try store.head() == .empty)
        },
    ]
}
