import EventLog
import Foundation
import Testing

extension EventStoreConformance {
    static let chainChecks: [Check] = [
        Check("the hash chain links every event to the one before from .zero, and verify() ends at the head") { stores in
            let store = try await stores.fresh()
            #expect(try store.verify() == .intact(count: 0, head: .zero))
            try await seed(store)
            try await store.append([StreamWrite(stream: "x", events: [event(), event()]), StreamWrite(stream: "y", events: [event()])])
            let all = try wholeLog(store)
            #expect(all.count == 33)
            #expect(all.first?.previousHash == .zero)
            for (a, b) in zip(all, all.dropFirst()) {
                #expect(b.previousHash == a.hash, "position \(b.position)")
                #expect(b.recordedAt >= a.recordedAt, "recordedAt decreases at \(b.position)")
            }
            #expect(Set(all.map(\.hash)).count == all.count)
            let head = try store.head()
            #expect(head == LogHead(position: 33, hash: all[32].hash, recordedAt: all[32].recordedAt))
            var progress: [UInt64] = []
            let report = try store.verify { progress.append($0) }
            #expect(report == .intact(count: 33, head: head.hash))
            #expect(progress.allSatisfy { $0 <= 33 } && progress == progress.sorted())
            #expect(try store.stats().head == head)
        },

        Check("every stored event hashes as Envelope lays out its fields: the same bytes in every backend") { stores in
            let store = try await stores.fresh()
            let meta = EventMetadata(actor: "key_1", correlationId: "req-9", causationId: "cmd-3")
            let first = NewEvent(id: UUID(), type: "made", json: "{\"x\":1}", metadata: meta)
            try await store.append(to: "s", [first])
            try await store.append(to: "ünïcode/流", [NewEvent(type: "t", payload: [0, 1, 2, 255], metadata: .init(actor: ""))])
            try await store.append(to: "s", [NewEvent(type: "empty", payload: [], metadata: .init(correlationId: "c"))])
            try await store.append(to: "big", [NewEvent(type: "big", payload: [UInt8](repeating: 7, count: 70_000))])
            try await seed(store)
            let all = try wholeLog(store)
            #expect(all[0].id == first.id)
            #expect(all[0].type == "made")
            #expect(all[0].metadata == meta)
            #expect(all[0].payload == first.payload)
            #expect(all[1].metadata == EventMetadata(actor: ""), "an empty actor is not an absent one")
            #expect(all[1].payload == [0, 1, 2, 255])
            #expect(all[2].payload.isEmpty)
            #expect(all[2].metadata == EventMetadata(correlationId: "c"))
            var canonical: [UInt64: [UInt8]] = [:]
            for e in all {
                let (bytes, hash) = canonicalEnvelope(of: e)
                #expect(e.hash == hash, "the hash at \(e.position) is not SHA-256(previous hash ‖ canonical envelope)")
                canonical[e.position] = bytes
            }
            // The envelopes a replay sees are those bytes, and decode to the events read.
            var seen = 0
            try store.forEachView(from: 1) { view in
                let stored = [UInt8](view.view.bytes)
                #expect(stored == canonical[view.position], "the envelope at \(view.position)")
                #expect(view.decode() == all[Int(view.position) - 1])
                seen += 1
                return true
            }
            #expect(seen == all.count)
        },
    ]
}
