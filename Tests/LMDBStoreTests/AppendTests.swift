import EventStoreConformance
import Foundation
import RunlogTestSupport
import Testing
@testable import EventLog
@testable import LMDBStore

@Suite("Append")
struct AppendTests {
    @Test("a request mark goes into the append's transaction, only when events are written and none is there")
    func requestMark() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        let mark = RequestMark(name: "idem/k/1", value: Array("first".utf8))
        // Outside a marked task nothing is written to the request table.
        try await store.append(to: "s", expected: .noStream, [event()])
        #expect(try store.requestRecord("idem/k/1") == nil)
        // A refused append writes no mark.
        await expectStoreError(.wrongExpectedVersion) {
            try await RequestMark.$current.withValue(mark) {
                _ = try await store.append(to: "s", expected: .noStream, [event()])
            }
        }
        #expect(try store.requestRecord("idem/k/1") == nil)
        // A written one does, durably with its events; later marked appends keep the first.
        let same = event()
        try await RequestMark.$current.withValue(mark) {
            _ = try await store.append(to: "s", [same])
            try await RequestMark.$current.withValue(.init(name: "idem/k/1", value: Array("second".utf8))) {
                _ = try await store.append(to: "s", [event()])
            }
        }
        #expect(try store.requestRecord("idem/k/1") == Array("first".utf8))
        // An answer put later replaces it; a deduplicated append writes nothing.
        try await store.putRequestRecord("idem/k/1", Array("answer".utf8))
        try await RequestMark.$current.withValue(.init(name: "idem/k/2", value: Array("x".utf8))) {
            let again = try await store.append(to: "s", [same])
            #expect(again.deduplicated)
        }
        #expect(try store.requestRecord("idem/k/1") == Array("answer".utf8))
        #expect(try store.requestRecord("idem/k/2") == nil)
        store.close()
        let reopened = try LMDBEventStore.open(dir.data)
        #expect(try reopened.requestRecord("idem/k/1") == Array("answer".utf8))
        reopened.close()
    }

    @Test("positions are gap-free and streams contiguous under concurrent appenders")
    func concurrentOrder() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        let appenders = 32
        let perAppender = 40
        let results = try await withThrowingTaskGroup(of: [AppendResult].self) { group in
            for a in 0..<appenders {
                group.addTask {
                    var mine: [AppendResult] = []
                    for n in 0..<perAppender {
                        // Half the appenders share one stream to contend on it.
                        let stream = a % 2 == 0 ? "shared" : "own-\(a)"
                        mine.append(try await store.append(to: stream, [event("t", "{\"a\":\(a),\"n\":\(n)}")]))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let total = UInt64(appenders * perAppender)
        let positions = results.flatMap { $0.events.map(\.position) }.sorted()
        #expect(positions == Array(1...total))
        #expect(try store.head().position == total)

        let all = try store.readAll(limit: Int(total) + 10)
        #expect(all.map(\.position) == Array(1...total))
        // Every stream's versions are 1...n in log order.
        var lastVersion: [String: UInt64] = [:]
        for e in all {
            #expect(e.streamVersion == (lastVersion[e.stream] ?? 0) + 1, "stream \(e.stream) at \(e.position)")
            lastVersion[e.stream] = e.streamVersion
        }
        #expect(lastVersion["shared"] == UInt64(appenders / 2 * perAppender))
        // Group commit coalesced concurrent appends.
        #expect(store.writerStatistics.commits < total)
        // Each appender's events appear in the order it appended them.
        var lastN: [Int: Int] = [:]
        for e in all {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(e.payload)) as? [String: Int])
            let (a, n) = (try #require(json["a"]), try #require(json["n"]))
            #expect(n == (lastN[a] ?? -1) + 1)
            lastN[a] = n
        }
        guard case .intact(let count, _) = try store.verify() else {
            Issue.record("chain does not verify")
            return
        }
        #expect(count == total)
    }

    @Test("a wrong expected version fails that append alone, inside a shared batch")
    func conflictFailsAlone() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await store.append(to: "s", [event()])
        let writer = try #require(store.writer)
        writer.hold()
        async let ok1 = store.append(to: "a", expected: .noStream, [event()])
        async let bad = attempt { try await store.append(to: "s", expected: .exact(7), [event()]) }
        async let ok2 = store.append(to: "s", expected: .exact(1), [event()])
        async let badNoStream = attempt { try await store.append(to: "s", expected: .noStream, [event()]) }
        // Wait until all four are queued, then let them commit together.
        while writer.queuedCount < 4 { try await Task.sleep(for: .milliseconds(1)) }
        let commitsBefore = store.writerStatistics.commits
        writer.release()
        let (newStream, wrongExact, rightExact, wrongNoStream) = try await (ok1, bad, ok2, badNoStream)
        #expect(store.writerStatistics.commits == commitsBefore + 1)
        #expect(newStream.events.count == 1)
        #expect(rightExact.events.first?.streamVersion == 2)
        for result in [wrongExact, wrongNoStream] {
            guard case .failure(let error) = result else {
                Issue.record("expected a conflict")
                continue
            }
            #expect(error.code == .wrongExpectedVersion)
            #expect(error.conflict?.stream == "s")
            #expect(error.message.contains("\"s\""))
        }
        if case .failure(let error) = wrongExact {
            #expect(error.conflict?.expected == .exact(7))
        }
        // Which one ran first decides the actual version it saw; both name the stream's state.
        #expect(try store.readStream("s").count == 2)
        #expect(try store.head().position == 3)
    }

    @Test(
        "appends are answered when fewer callers come back than the last commit answered",
        .timeLimit(.minutes(1))
    )
    func collectWindowEndsWhenArrivalsStop() async throws {
        let dir = TemporaryDirectory()
        // A window far longer than the time limit: a wait must end by the gap rule or by the
        // cap of one commit's duration, never by the window.
        let store = try LMDBEventStore.open(dir.data, options: .init(mapSize: 64 << 20, collectWindow: .seconds(600)))
        let writer = try #require(store.writer)
        // Eight appends answered by one commit: the writer now expects eight callers back.
        writer.hold()
        let first = Task {
            try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for i in 0..<8 { group.addTask { try await store.append(to: "s-\(i)", [event()]) } }
                return try await group.reduce(into: 0) { n, _ in n += 1 }
            }
        }
        while writer.queuedCount < 8 { try await Task.sleep(for: .milliseconds(1)) }
        writer.release()
        #expect(try await first.value == 8)
        // Only one comes back: it is committed without waiting for the other seven.
        let lone = try await store.append(to: "s-0", [event()])
        #expect(lone.events.first?.streamVersion == 2)
        // Eight callers again: all are answered, in however many commits.
        let commitsBefore = store.writerStatistics.commits
        let again = try await withThrowingTaskGroup(of: AppendResult.self) { group in
            for i in 0..<8 { group.addTask { try await store.append(to: "s-\(i)", [event()]) } }
            return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
        }
        #expect(again.count == 8)
        #expect(store.writerStatistics.commits > commitsBefore)
        #expect(try store.head().position == 17)
        store.close()
    }

    @Test("re-appending stored ids returns the original positions, also after a reopen")
    func idempotentAcrossReopen() async throws {
        let dir = TemporaryDirectory()
        let ids = [UUID(), UUID(), UUID()]
        let first: AppendResult
        do {
            let store = try LMDBEventStore.open(dir.data)
            try await store.append(to: "before", [event()])
            first = try await store.append([
                StreamWrite(stream: "a", expected: .noStream, events: [event("t", "{}", id: ids[0]), event("t", "{}", id: ids[1])]),
                StreamWrite(stream: "b", events: [event("t", "{}", id: ids[2])]),
            ])
            let again = try await store.append([
                StreamWrite(stream: "a", expected: .noStream, events: [event("t", "{}", id: ids[0]), event("t", "{}", id: ids[1])]),
                StreamWrite(stream: "b", events: [event("t", "{}", id: ids[2])]),
            ])
            #expect(again.deduplicated)
            #expect(again.events == first.events)
            store.close()
        }
        let store = try LMDBEventStore.open(dir.data)
        let head = try store.head()
        let retried = try await store.append([
            StreamWrite(stream: "a", expected: .noStream, events: [event("t", "{}", id: ids[0]), event("t", "{}", id: ids[1])]),
            StreamWrite(stream: "b", events: [event("t", "{}", id: ids[2])]),
        ])
        #expect(retried.deduplicated)
        #expect(retried.events.map(\.position) == [2, 3, 4])
        #expect(retried.events == first.events)
        #expect(try store.head() == head)

        // A partial overlap is an error and writes nothing.
        let error = await expectStoreError(.idempotencyConflict) {
            try await store.append(to: "a", [event("t", "{}", id: ids[1]), event()])
        }
        #expect(error?.value == ids[1].uuidString.lowercased())
        #expect(try store.head() == head)
    }

    @Test("submitted appends commit in the order they were queued; one expecting a failed one's version fails too")
    func submitInOrder() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        // A chain like an importer's: each append expects the version the one before creates.
        var pending: [PendingAppend] = []
        for version in 0..<50 {
            pending.append(try store.submit([
                StreamWrite(stream: "chain", expected: version == 0 ? .noStream : .exact(UInt64(version)), events: [event()]),
                StreamWrite(stream: "other-\(version)", expected: .noStream, events: [event()]),
            ]))
        }
        var last: UInt64 = 0
        for handle in pending {
            let result = try await handle.result()
            #expect(result.events[0].position > last)
            last = result.events[0].position
            // Awaiting again gives the same answer.
            #expect(try await handle.result().events[0].position == result.events[0].position)
        }
        #expect(try store.readStream("chain").map(\.streamVersion) == Array(1...50))

        // The first of three fails its expectation: the two after it, queued before its
        // outcome was known, fail with it and write nothing.
        let writer = try #require(store.writer)
        writer.hold()
        let failing = [UInt64(7), 51, 52].map { version in
            try? store.submit([StreamWrite(stream: "chain", expected: .exact(version), events: [event()])])
        }
        writer.release()
        for handle in failing {
            let error = await expectStoreError(.wrongExpectedVersion) { _ = try await #require(handle).result() }
            #expect(error?.conflict?.stream == "chain")
        }
        #expect(try store.readStream("chain").count == 50)

        // Bad input throws at once and queues nothing.
        let head = try store.head().position
        await expectStoreError(.invalidArgument) { _ = try store.submit([StreamWrite(stream: "", events: [event()])]) }
        #expect(try store.head().position == head)
        store.close()
        await expectStoreError(.closed) { _ = try await store.submit([StreamWrite(stream: "s", events: [event()])]).result() }
    }

    @Test(
        "background appends commit after the normal ones waiting with them, in their own order; deferred, one per commit, never starved",
        .timeLimit(.minutes(1))
    )
    func backgroundAppends() async throws {
        let dir = TemporaryDirectory()
        // A share of one half: a deferred background commit waits as long as the last one took.
        // Nothing rides along with normal commits here, and no quiet gap lets them go: the
        // writer waits for each paced turn (WriterPolicyTests checks the rules themselves).
        let store = try LMDBEventStore.open(dir.data, options: .init(mapSize: 64 << 20, backgroundShare: 0.5, rideAlongBytes: 0,
                                                                 backgroundGap: .seconds(3_600)))
        let writer = try #require(store.writer)
        func background(_ version: UInt64) throws -> PendingAppend {
            try store.submit([StreamWrite(stream: "bulk", expected: version == 0 ? .noStream : .exact(version),
                                          events: [event()])], priority: .background)
        }
        // Queued before a normal append, the background ones still commit after it, in order.
        writer.hold()
        let first = try (0..<3).map { try background($0) }
        let normal = try store.submit([StreamWrite(stream: "live", events: [event()])])
        #expect(writer.queuedCount == 4)
        let commitsBefore = store.writerStatistics.commits
        writer.release()
        let live = try await normal.result().firstPosition
        var positions: [UInt64] = []
        for pending in first { positions.append(try await pending.result().firstPosition) }
        #expect(store.writerStatistics.commits == commitsBefore + 1)
        #expect(positions == [live + 1, live + 2, live + 3])

        // Deferred: the normal append first, then the background ones one commit each, all of
        // them written although the deferral lasts.
        store.deferBackground(true)
        #expect(store.backgroundDeferred)
        writer.hold()
        let deferred = try (3..<6).map { try background($0) }
        let normalAgain = try store.submit([StreamWrite(stream: "live", events: [event()])])
        let commitsDeferred = store.writerStatistics.commits
        writer.release()
        let liveAgain = try await normalAgain.result().firstPosition
        positions = []
        for pending in deferred { positions.append(try await pending.result().firstPosition) }
        #expect(positions == [liveAgain + 1, liveAgain + 2, liveAgain + 3])
        #expect(store.writerStatistics.commits >= commitsDeferred + 3)
        #expect(try store.readStream("bulk").count == 6)
        store.deferBackground(false)
        #expect(!store.backgroundDeferred)
        // A background append closing the store is written before it closes.
        let last = try background(6)
        store.close()
        #expect(try await last.result().events.count == 1)
    }

    @Test("a commit takes at most maxBackgroundBytes of background appends (a larger one alone)")
    func backgroundCommitBytes() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data, options: .init(mapSize: 64 << 20, maxBackgroundBytes: 8_000))
        let writer = try #require(store.writer)
        func background(_ bytes: Int) throws -> PendingAppend {
            try store.submit([StreamWrite(stream: "bulk", events: [NewEvent(type: "bulk.rows", payload: [UInt8](repeating: 0x20, count: bytes))])],
                             priority: .background)
        }
        writer.hold()
        // 3,000 + 3,000 fit; 3,000 more would not. The 9,000-byte one commits alone.
        let pending = try [3_000, 3_000, 3_000, 3_000, 9_000, 1_000].map(background)
        let commits = store.writerStatistics.commits
        writer.release()
        var positions: [UInt64] = []
        for p in pending { positions.append(try await p.result().firstPosition) }
        #expect(positions == Array(1...6))
        #expect(store.writerStatistics.commits == commits + 4)
        store.close()
    }

    @Test("invalid appends are rejected with the field, value and rule, and write nothing")
    func validation() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        let big = NewEvent(type: "big", payload: [UInt8](repeating: 0x20, count: EventLimits.maxPayloadBytes + 1))
        let tooLarge = await expectStoreError(.payloadTooLarge) { try await store.append(to: "s", [big]) }
        #expect(tooLarge?.message.contains("1048576") == true)
        #expect(tooLarge?.field == "payload")
        // Exactly 1 MiB is fine.
        let max = NewEvent(type: "max", payload: [UInt8](repeating: 0x20, count: EventLimits.maxPayloadBytes))
        try await store.append(to: "s", [max])

        let longName = String(repeating: "n", count: 257)
        let e1 = await expectStoreError(.invalidArgument) { try await store.append(to: longName, [event()]) }
        #expect(e1?.field == "stream")
        #expect(e1?.message.contains("256") == true)
        try await store.append(to: String(repeating: "é", count: 128), [event()]) // 256 bytes
        await expectStoreError(.invalidArgument) { try await store.append(to: "", [event()]) }
        await expectStoreError(.invalidArgument) { try await store.append(to: "a\u{0}b", [event()]) }
        await expectStoreError(.invalidArgument) { try await store.append(to: "s", []) }
        await expectStoreError(.invalidArgument) { try await store.append(to: "s", [event("")]) }
        let id = UUID()
        let dup = await expectStoreError(.invalidArgument) {
            try await store.append(to: "s", [event("t", "{}", id: id), event("t", "{}", id: id)])
        }
        #expect(dup?.field == "id")
        await expectStoreError(.invalidArgument) {
            try await store.append([StreamWrite(stream: "s", events: [event()]), StreamWrite(stream: "s", events: [event()])])
        }
        #expect(try store.head().position == 2)
    }

    @Test("envelopes carry metadata, recorded-at never decreases, the chain links")
    func envelope() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        let meta = EventMetadata(actor: "key_1", correlationId: "req-9", causationId: "cmd-3")
        let id = UUID()
        try await store.append(to: "s", [NewEvent(id: id, type: "made", json: "{\"x\":1}", metadata: meta)])
        for _ in 0..<20 { try await store.append(to: "s", [event()]) }
        let all = try store.readAll()
        #expect(all[0].metadata == meta)
        #expect(all[0].id == id)
        #expect(all[0].payload == Array("{\"x\":1}".utf8))
        #expect(all[0].previousHash == .zero)
        for (a, b) in zip(all, all.dropFirst()) {
            #expect(b.previousHash == a.hash)
            #expect(b.recordedAt >= a.recordedAt)
        }
        let line = all[0].jsonLine()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["position"] as? Int == 1)
        #expect((parsed["payload"] as? [String: Int])?["x"] == 1)
        #expect((parsed["metadata"] as? [String: String])?["actor"] == "key_1")
        #expect(parsed["hash"] as? String == all[0].hash.hex)
    }
}
