import EventLog
import Foundation
import Synchronization
import Testing

extension EventStoreConformance {
    static let subscriptionChecks: [Check] = [
        Check("a subscription catches up, then goes live, with no gap and no duplicate while appends run") { stores in
            let store = try await stores.fresh()
            for i in 0..<300 { try await store.append(to: "s-\(i % 7)", [event("old")]) }
            let appenders = 4, perAppender = 100
            let total = UInt64(300 + appenders * perAppender * 2)
            let appending = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for a in 0..<appenders {
                        group.addTask {
                            for _ in 0..<perAppender { try await store.append(to: "live-\(a)", [event("new"), event("new")]) }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let got = try await within(60, "a subscription from 1 reaching \(total)") {
                var got: [RecordedEvent] = []
                for try await e in store.subscribe(from: 1, pageSize: 37) {
                    got.append(e)
                    if e.position >= total { break }
                }
                return got
            }
            try await appending.value
            #expect(got.map(\.position) == Array(1...total))
            #expect(got == (try wholeLog(store)))
            // From the middle, and from past the head once it is reached.
            let fromMiddle = try await within(30, "a subscription from \(total - 9) reaching \(total + 1)") {
                var fromMiddle: [UInt64] = []
                for try await e in store.subscribe(from: total - 9, pageSize: 4) {
                    fromMiddle.append(e.position)
                    if e.position >= total + 1 { break }
                    if e.position == total { try await store.append(to: "last", [event()]) }
                }
                return fromMiddle
            }
            #expect(fromMiddle == Array((total - 9)...(total + 1)))
        },

        Check("a filtered subscription sees only the events its filter selects, in order, also live") { stores in
            let store = try await stores.fresh()
            for i in 0..<100 {
                try await store.append(to: i % 2 == 0 ? "even-\(i % 3)" : "odd", [event(i % 4 < 2 ? "x" : "y")])
            }
            let later = Task {
                try await Task.sleep(for: .milliseconds(20))
                for i in 100..<140 { try await store.append(to: i % 2 == 0 ? "even-\(i % 3)" : "odd", [event(i % 4 < 2 ? "x" : "y")]) }
            }
            let filters = [EventFilter(types: ["x"]), EventFilter(streamPrefix: "even-"), EventFilter(types: ["y"], streamPrefix: "even-1")]
            for filter in filters {
                let expected = (51...140).filter { p in
                    let i = p - 1
                    let stream = i % 2 == 0 ? "even-\(i % 3)" : "odd", type = i % 4 < 2 ? "x" : "y"
                    return (filter.types?.contains(type) ?? true) && stream.hasPrefix(filter.streamPrefix ?? "")
                }.map { UInt64($0) }
                let got = try await within(30, "a subscription with \(filter) seeing \(expected.count) events") {
                    var got: [RecordedEvent] = []
                    for try await e in store.subscribe(from: 51, filter: filter, pageSize: 8) {
                        got.append(e)
                        if got.count == expected.count { break }
                    }
                    return got
                }
                #expect(got.map(\.position) == expected, "\(filter)")
                #expect(got.allSatisfy { (filter.types?.contains($0.type) ?? true) && $0.stream.hasPrefix(filter.streamPrefix ?? "") })
            }
            try await later.value
        },

        Check("a subscription ends (next() returns nil) when the store closes; waitForCommit then answers false") { stores in
            let store = try await stores.fresh()
            try await store.append(to: "s", [event(), event()])
            let caughtUp = Mutex(0)
            let waiting = Task {
                var n = 0
                for try await _ in store.subscribe() {
                    n += 1
                    caughtUp.withLock { $0 = n }
                }
                return n
            }
            let waiter = Task { try await store.waitForCommit(reaching: 100) }
            let deadline = ContinuousClock.now + .seconds(20)
            while caughtUp.withLock({ $0 }) < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            try await Task.sleep(for: .milliseconds(20))
            store.close()
            #expect(try await within(10, "the subscription ending on close") { try await value(of: waiting) } == 2)
            #expect(try await within(10, "waitForCommit ending on close") { try await value(of: waiter) } == false)
            let next = try await within(10, "a subscription of a closed store ending at once") {
                var iterator = store.subscribe().makeAsyncIterator()
                return try await iterator.next()
            }
            #expect(next == nil)
            #expect(try await within(10, "waitForCommit of a closed store") { try await store.waitForCommit(reaching: 1) } == false)
        },

        Check("waitForCommit(reaching:) returns once the committed head reaches the position") { stores in
            let store = try await stores.fresh()
            #expect(try await store.waitForCommit(reaching: 0))
            try await store.append(to: "s", [event()])
            #expect(try await store.waitForCommit(reaching: 1))
            let reached = Mutex<UInt64?>(nil)
            let waiter = Task {
                let open = try await store.waitForCommit(reaching: 4)
                let head = try store.head().position
                reached.withLock { $0 = head }
                return open
            }
            try await Task.sleep(for: .milliseconds(20))
            try await store.append(to: "s", [event()])
            try await Task.sleep(for: .milliseconds(50))
            #expect(reached.withLock { $0 } == nil, "waitForCommit(reaching: 4) returned at head 2")
            try await store.append(to: "s", [event(), event(), event()])
            #expect(try await within(10, "waitForCommit(reaching: 4) at head 5") { try await value(of: waiter) })
            #expect(reached.withLock { $0 }.map { $0 >= 4 } == true)
        },
    ]
}
