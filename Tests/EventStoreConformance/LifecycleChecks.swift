import EventLog
import Foundation
import Testing

extension EventStoreConformance {
    static let lifecycleChecks: [Check] = [
        Check("everything written is there after close and reopen, with the same head hash, and the log goes on from it") { stores in
            var store = try await stores.fresh()
            #expect(!store.isReadOnly)
            #expect(!store.location.isEmpty)
            try await seed(store)
            let meta = EventMetadata(actor: "key_1", correlationId: "req-1", causationId: nil)
            let multi = try await store.append([
                StreamWrite(stream: "a", expected: .noStream, events: [NewEvent(type: "m", json: "{\"k\":1}", metadata: meta)]),
                StreamWrite(stream: "b", events: [event(), event()]),
            ])
            try await store.putVaultEntry("vault/1", [1, 2])
            try await store.putRequestRecord("req/1", [3])
            try await RequestMark.$current.withValue(.init(name: "req/2", value: [4])) {
                _ = try await store.append(to: "marked", [event()])
            }
            try await store.setCheckpoint("cp", to: 12)
            let background = try store.submit([StreamWrite(stream: "bg", events: [event()])], priority: .background)
            _ = try await background.result()
            let head = try store.head()
            let log = try wholeLog(store)
            let stats = try store.stats()
            #expect(head.position == 35)

            store = try await stores.reopen(store)
            #expect(try store.head() == head)
            #expect(try wholeLog(store) == log)
            #expect(try store.verify() == .intact(count: 35, head: head.hash))
            #expect(try store.stats().eventCount == stats.eventCount)
            #expect(try store.stats().streamCount == stats.streamCount)
            #expect(try store.streamVersion("b") == 2)
            #expect(try store.readStream("a").first?.metadata == meta)
            #expect(try store.position(ofEventId: multi.events[1].id) == multi.events[1].position)
            #expect(try store.vaultEntry("vault/1") == [1, 2])
            #expect(try store.requestRecord("req/1") == [3])
            #expect(try store.requestRecord("req/2") == [4])
            #expect(try store.checkpoint("cp") == 12)
            #expect(try store.head(asOf: head.recordedAt) == head)

            // Ids stay deduplicated, versions are still checked, and the chain goes on from the head.
            let retried = try await store.append(to: "a", expected: .noStream, [NewEvent(id: multi.events[0].id, type: "m", json: "{\"k\":1}", metadata: meta)])
            #expect(retried.deduplicated)
            #expect(retried.events == [multi.events[0]])
            await expectStoreError(.wrongExpectedVersion) { try await store.append(to: "b", expected: .exact(1), [event()]) }
            let next = try await store.append(to: "b", expected: .exact(2), [event()])
            #expect(next.events.map(\.position) == [36])
            #expect(next.events.map(\.streamVersion) == [3])
            #expect(try store.event(at: 36)?.previousHash == head.hash)
            #expect(try store.verify().intact?.count == 36)
            // A second reopen, with nothing appended between, changes nothing.
            let after = try store.head()
            store = try await stores.reopen(store)
            #expect(try store.head() == after)
            #expect(try wholeLog(store).count == 36)
        },

        Check("after close(), appends, side writes and reads throw closed, and waits answer false") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "s", [event()])
            try await store.attach(TypeCounts())
            #expect(try store.projectionPosition("conformance.types") == 1)
            store.close()
            await expectStoreError(.closed) { try await store.append(to: "s", [event()]) }
            await expectStoreError(.closed) { _ = try await store.append([StreamWrite(stream: "s", events: [event()])], priority: .background) }
            await expectStoreError(.closed) { _ = try await store.submit([StreamWrite(stream: "s", events: [event()])]).result() }
            await expectStoreError(.closed) { try await store.putVaultEntry("v", [1]) }
            await expectStoreError(.closed) { try await store.deleteVaultEntry("v") }
            await expectStoreError(.closed) { try await store.putRequestRecord("r", [1]) }
            await expectStoreError(.closed) { try await store.deleteRequestRecords(["r"]) }
            await expectStoreError(.closed) { try await store.setCheckpoint("c", to: 1) }
            await expectStoreError(.closed) { _ = try store.head() }
            await expectStoreError(.closed) { _ = try store.head(asOf: Int64.max) }
            await expectStoreError(.closed) { _ = try store.readStream("s") }
            await expectStoreError(.closed) { _ = try store.streamVersion("s") }
            await expectStoreError(.closed) { _ = try store.streamCount(prefix: "") }
            await expectStoreError(.closed) { _ = try store.readAll() }
            await expectStoreError(.closed) { _ = try store.readPage(from: 1, filter: .all, limit: 10) }
            await expectStoreError(.closed) { try store.forEach { _ in true } }
            await expectStoreError(.closed) { try store.forEachView { _ in true } }
            await expectStoreError(.closed) { _ = try store.event(at: 1) }
            await expectStoreError(.closed) { _ = try store.position(ofEventId: UUID()) }
            await expectStoreError(.closed) { _ = try store.stats() }
            await expectStoreError(.closed) { _ = try store.verify() }
            await expectStoreError(.closed) { _ = try store.vaultEntry("v") }
            await expectStoreError(.closed) { _ = try store.requestRecord("r") }
            await expectStoreError(.closed) { _ = try store.requestRecords(limit: 10) { _ in true } }
            await expectStoreError(.closed) { _ = try store.checkpoint("c") }
            await expectStoreError(.closed) { _ = try store.checkpoints() }
            await expectStoreError(.closed) { _ = try store.projectionPosition("conformance.types") }
            await expectStoreError(.closed) { _ = try store.projectionPosition("never.attached") }
            await expectStoreError(.closed) { _ = try store.readProjection("conformance.types") { try $0.count(0) } }
            await expectStoreError(.closed) { try await store.attach(TypeCounts(name: "conformance.late")) }
            #expect(try await store.waitForCommit(reaching: 5) == false)
            // Closing again is harmless.
            store.close()
        },
    ]
}
