import Testing
@testable import LMDBStore

/// What these tests queue: a name ("n…" normal, "b…" background) and a size.
private struct Item: WriterQueueItem {
    var name: String
    var eventCount: Int
    var byteCount: Int
}

/// A decision of the policy, in names.
private enum Step: Equatable {
    case commit(normal: [String], background: [String], turn: Bool)
    case wait(until: Duration?)
    case exit
}

/// Drives a `WriterPolicy` as the writer does, on a clock that moves only when told: `now` is
/// set by the test, and a commit moves it on by the time the commit takes.
private final class Driver {
    var policy: WriterPolicy<Item>
    var now = Duration.zero

    init(_ options: LMDBEventStore.Options) {
        policy = WriterPolicy(options: options)
    }

    /// Queues one item; returns whether the policy says to wake the writer.
    @discardableResult
    func add(_ name: String, events: Int = 1, bytes: Int = 100) -> Bool {
        policy.add(Item(name: name, eventCount: events, byteCount: bytes), background: name.hasPrefix("b"))
    }

    /// Turns the deferral of background work on or off; returns whether to wake the writer.
    func deferBackground(_ on: Bool) -> Bool {
        policy.deferBackground(on)
    }

    /// Asks the policy at `now`; a commit it answers takes `took`, and is reported at its end.
    func next(took: Duration = .milliseconds(1)) -> Step {
        switch policy.next(now: now) {
        case .commit(let batch):
            now += took
            policy.committed(batch, took: took, at: now)
            return .commit(normal: batch.items[..<batch.normalCount].map(\.name),
                           background: batch.items[batch.normalCount...].map(\.name), turn: batch.backgroundTurn)
        case .wait(let until):
            return .wait(until: until)
        case .exit:
            return .exit
        }
    }
}

private func ms(_ value: Int) -> Duration { .milliseconds(value) }
private func µs(_ value: Int) -> Duration { .microseconds(value) }

@Suite("WriterPolicy")
struct WriterPolicyTests {
    @Test("normal work commits in the order queued, up to maxBatchEvents and maxBatchBytes; a larger request alone")
    func normalBatches() {
        let d = Driver(.init(maxBatchEvents: 10, maxBatchBytes: 1_000, collectWindow: .zero))
        #expect(d.next() == .wait(until: nil))
        d.add("n1", events: 4)
        d.add("n2", events: 4)
        d.add("n3", events: 4)
        #expect(d.next() == .commit(normal: ["n1", "n2"], background: [], turn: false))
        #expect(d.next() == .commit(normal: ["n3"], background: [], turn: false))
        d.add("n4", bytes: 600)
        d.add("n5", bytes: 600)
        d.add("n6", bytes: 300)
        #expect(d.next() == .commit(normal: ["n4"], background: [], turn: false))
        #expect(d.next() == .commit(normal: ["n5", "n6"], background: [], turn: false))
        d.add("n7", events: 25)
        d.add("n8", bytes: 2_000)
        d.add("n9")
        #expect(d.next() == .commit(normal: ["n7"], background: [], turn: false))
        #expect(d.next() == .commit(normal: ["n8"], background: [], turn: false))
        #expect(d.next() == .commit(normal: ["n9"], background: [], turn: false))
        #expect(d.next() == .wait(until: nil))
        #expect(d.policy.queuedCount == 0)
    }

    @Test("background work commits after the normal work queued with it, in its own order, within the batch limits")
    func backgroundAfterNormal() {
        let d = Driver(.init(maxBatchEvents: 4, collectWindow: .zero))
        d.add("b1")
        d.add("b2")
        d.add("n1")
        d.add("n2")
        #expect(d.policy.queuedCount == 4)
        #expect(d.next() == .commit(normal: ["n1", "n2"], background: ["b1", "b2"], turn: true))
        // Normal work that fills the commit leaves the background work for the next one.
        d.add("b3")
        d.add("b4")
        d.add("n3")
        d.add("n4")
        d.add("n5")
        d.add("n6")
        #expect(d.next() == .commit(normal: ["n3", "n4", "n5", "n6"], background: [], turn: false))
        #expect(d.next() == .commit(normal: [], background: ["b3", "b4"], turn: true))
        #expect(d.next() == .wait(until: nil))
    }

    @Test("a commit takes at most maxBackgroundEvents and maxBackgroundBytes of background work (a larger append alone)")
    func backgroundLimits() {
        let d = Driver(.init(collectWindow: .zero, maxBackgroundEvents: 5, maxBackgroundBytes: 8_000))
        for (i, bytes) in [3_000, 3_000, 3_000, 3_000, 9_000, 1_000].enumerated() { d.add("b\(i + 1)", bytes: bytes) }
        #expect(d.next() == .commit(normal: [], background: ["b1", "b2"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b3", "b4"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b5"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b6"], turn: true))
        d.add("b7", events: 3)
        d.add("b8", events: 3)
        d.add("b9", events: 6)
        d.add("b10", events: 1)
        #expect(d.next() == .commit(normal: [], background: ["b7"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b8"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b9"], turn: true))
        // The normal work of a commit does not count against these limits.
        d.add("n1", events: 6, bytes: 8_000)
        d.add("b11", events: 4, bytes: 7_000)
        #expect(d.next() == .commit(normal: ["n1"], background: ["b10", "b11"], turn: true))
    }

    @Test("not deferred, background work commits as soon as the writer is free, whatever its last commit took")
    func deferralOffRunsFreely() {
        let d = Driver(.init(collectWindow: .zero, backgroundShare: 0.5, rideAlongBytes: 0, backgroundGap: .seconds(3_600)))
        d.add("b1", bytes: 50_000)
        #expect(d.next(took: ms(100)) == .commit(normal: [], background: ["b1"], turn: true))
        d.add("b2", bytes: 50_000)
        #expect(d.next(took: ms(100)) == .commit(normal: [], background: ["b2"], turn: true))
        d.add("n1")
        d.add("b3")
        d.add("b4")
        #expect(d.next() == .commit(normal: ["n1"], background: ["b3", "b4"], turn: true))
        #expect(d.now == ms(201))

        // Deferred: the next one waits for its paced turn (as long as the last commit of it took).
        #expect(!d.deferBackground(true))
        #expect(!d.deferBackground(true))
        #expect(d.policy.deferring)
        d.add("b5")
        #expect(d.next() == .wait(until: ms(202)))
        // Turning the deferral off wakes the writer, and the append goes at once.
        #expect(d.deferBackground(false))
        #expect(!d.deferBackground(false))
        #expect(d.next() == .commit(normal: [], background: ["b5"], turn: true))
    }

    @Test("deferred, background work rides along with normal commits up to rideAlongBytes, in order; a larger append waits for its turn and keeps its place")
    func deferredRideAlong() {
        // A share of a quarter: after a commit of background work that took t, the next turn
        // waits 3 t. No quiet gap lets background work go.
        let d = Driver(.init(collectWindow: .zero, backgroundShare: 0.25, rideAlongBytes: 2_000,
                             backgroundGap: .seconds(3_600)))
        _ = d.deferBackground(true)
        // With no commit of background work yet, its turn is due at once; this one sets the
        // next turn to 10 + 3 × 10 ms.
        d.add("b0")
        #expect(d.next(took: ms(10)) == .commit(normal: [], background: ["b0"], turn: true))
        d.add("b1", bytes: 900)
        d.add("b2", bytes: 900)
        d.add("b3", bytes: 2_500)
        d.add("b4", bytes: 10)
        d.add("n1")
        #expect(d.next() == .commit(normal: ["n1"], background: ["b1", "b2"], turn: false))
        #expect(d.policy.queuedCount == 2)
        #expect(d.next() == .wait(until: ms(40)))
        // A normal append alone carries neither the large one nor the small one behind it.
        d.now = ms(20)
        #expect(d.add("n2"))
        #expect(d.next() == .commit(normal: ["n2"], background: [], turn: false))
        #expect(d.next() == .wait(until: ms(40)))
        // Its paced turn: one append, whatever its size.
        d.now = ms(40)
        #expect(d.next(took: ms(2)) == .commit(normal: [], background: ["b3"], turn: true))
        // Riding along cost the turn nothing: the next is 3 × 2 ms after that commit.
        d.add("n3")
        d.add("b5", bytes: 3_000)
        #expect(d.next() == .commit(normal: ["n3"], background: ["b4"], turn: false))
        #expect(d.next() == .wait(until: ms(48)))
    }

    @Test("deferred, background work commits as when not deferred once no normal work has committed for backgroundGap; normal work ends the gap")
    func deferredQuietGap() {
        // A share of 1/16: the next paced turn waits 15 times as long as the last took.
        let d = Driver(.init(collectWindow: .zero, backgroundShare: 0.0625, backgroundGap: ms(5)))
        _ = d.deferBackground(true)
        d.add("b0")
        #expect(d.next(took: ms(10)) == .commit(normal: [], background: ["b0"], turn: true))
        d.add("n1")
        #expect(d.next() == .commit(normal: ["n1"], background: [], turn: false))
        #expect(d.now == ms(11))
        d.add("b1")
        d.add("b2")
        d.add("b3")
        // The gap (11 + 5 ms) comes before the paced turn (10 + 150 ms).
        #expect(d.next() == .wait(until: ms(16)))
        d.now = ms(12)
        #expect(d.next() == .wait(until: ms(16)))
        d.now = ms(16)
        #expect(d.next() == .commit(normal: [], background: ["b1", "b2", "b3"], turn: true))
        // The gap lasts (no normal commit since 11 ms), but a normal append ends it: only what
        // rides along goes with it.
        d.now = ms(20)
        d.add("b4", bytes: 10_000)
        d.add("n2")
        #expect(d.next() == .commit(normal: ["n2"], background: [], turn: false))
        #expect(d.next() == .wait(until: ms(26)))
        d.now = ms(26)
        #expect(d.next() == .commit(normal: [], background: ["b4"], turn: true))
    }

    @Test("deferred, one background append per paced turn, at most backgroundShare of the writer's time")
    func deferredPacedTurns() {
        let d = Driver(.init(collectWindow: .zero, backgroundShare: 0.25, rideAlongBytes: 0,
                             backgroundGap: .seconds(3_600)))
        _ = d.deferBackground(true)
        for i in 1...4 { d.add("b\(i)") }
        #expect(d.next(took: ms(10)) == .commit(normal: [], background: ["b1"], turn: true))
        #expect(d.next() == .wait(until: ms(40)))
        // Queued background work wakes an idle writer, which finds it still not due.
        #expect(d.add("b5"))
        #expect(d.next() == .wait(until: ms(40)))
        // Normal work goes at once, without background work.
        d.now = ms(15)
        #expect(d.add("n1"))
        #expect(d.next() == .commit(normal: ["n1"], background: [], turn: false))
        #expect(d.next() == .wait(until: ms(40)))
        d.now = ms(40)
        #expect(d.next(took: ms(10)) == .commit(normal: [], background: ["b2"], turn: true))
        #expect(d.next() == .wait(until: ms(80)))
        // Normal work there when the turn is due goes first, in the same commit as one append.
        d.now = ms(85)
        d.add("n2")
        d.add("n3")
        #expect(d.next(took: ms(4)) == .commit(normal: ["n2", "n3"], background: ["b3"], turn: true))
        #expect(d.next() == .wait(until: ms(101)))
    }

    @Test("deferred, under steady real-time work: an append waits behind at most one commit of background work, which still progresses at its share")
    func deferredUnderLoad() {
        let share = 0.25
        let d = Driver(.init(collectWindow: .zero, backgroundShare: share, rideAlongBytes: 0, backgroundGap: .seconds(3_600)))
        _ = d.deferBackground(true)
        for i in 0..<20 { d.add("b\(i)", bytes: 10_000) }
        // A normal append every 2 ms for 0.4 s; a commit takes 1 ms, and 5 ms more for background work.
        let arrivals = (0..<200).map { ms(2 * $0) }
        var next = 0
        var arrived: [String: Duration] = [:]
        var committedAt: [String: Duration] = [:]
        var backgroundCommits: [(start: Duration, end: Duration, took: Duration, normal: Set<String>)] = []
        var steps = 0
        simulation: while steps < 10_000 {
            steps += 1
            while next < arrivals.count && arrivals[next] <= d.now {
                arrived["n\(next)"] = arrivals[next]
                d.add("n\(next)")
                next += 1
            }
            let start = d.now
            let upcoming = next < arrivals.count ? arrivals[next] : nil
            switch d.policy.next(now: start) {
            case .commit(let batch):
                let took = ms(1) + ms(5) * batch.backgroundCount
                let normal = batch.items[..<batch.normalCount].map(\.name)
                for name in normal { committedAt[name] = start }
                if batch.backgroundCount > 0 {
                    #expect(batch.backgroundTurn)
                    backgroundCommits.append((start, start + took, took, Set(normal)))
                }
                d.now = start + took
                d.policy.committed(batch, took: took, at: d.now)
            case .wait(until: let until):
                guard let wake = [until, upcoming].compactMap({ $0 }).min() else { break simulation }
                #expect(wake > d.now)
                d.now = wake
                continue
            case .exit:
                Issue.record("exit while running")
                break simulation
            }
            if next == arrivals.count && d.policy.queuedCount == 0 { break simulation }
        }
        #expect(committedAt.count == arrivals.count)
        #expect(backgroundCommits.count == 20)
        // Each real-time append waited behind at most one of them (and some did).
        var most = 0
        for (name, at) in arrived {
            let start = committedAt[name] ?? .zero
            let behind = backgroundCommits.filter { $0.end > at && $0.start < start && !$0.normal.contains(name) }.count
            most = max(most, behind)
        }
        #expect(most == 1)
        // Between two of them the writer's time is at least (1 − share) / share times the first.
        for (a, b) in zip(backgroundCommits, backgroundCommits.dropFirst()) {
            #expect(b.start - a.end >= a.took * ((1 - share) / share))
        }
    }

    @Test("the collect window: after a commit that answered several, the writer waits for as many, up to the shorter of collectWindow and that commit's time")
    func collectWindow() {
        let d = Driver(.init(collectWindow: ms(1)))
        d.add("n1")
        d.add("n2")
        d.add("n3")
        #expect(d.next(took: µs(400)) == .commit(normal: ["n1", "n2", "n3"], background: [], turn: false))
        // One comes back: the writer waits a step of collectGap for the others, and is woken
        // once all three are there (background work does not wake it).
        d.now = µs(500)
        d.add("n4")
        #expect(d.next() == .wait(until: µs(600)))
        #expect(!d.add("b1"))
        #expect(!d.add("n5"))
        #expect(d.add("n6"))
        d.now = µs(550)
        #expect(d.next(took: µs(300)) == .commit(normal: ["n4", "n5", "n6"], background: ["b1"], turn: true))

        // A step with no new arrival ends it: the one back commits alone.
        d.now = ms(2)
        d.add("n7")
        #expect(d.next() == .wait(until: ms(2) + µs(100)))
        d.now = ms(2) + µs(100)
        #expect(d.next(took: µs(300)) == .commit(normal: ["n7"], background: [], turn: false))
        // That commit answered one: nothing to wait for.
        d.add("n8")
        #expect(d.next(took: µs(300)) == .commit(normal: ["n8"], background: [], turn: false))
    }

    @Test("the collect window: arrivals that keep coming extend it step by step, up to its end; a wake before the step's end starts a new step")
    func collectWindowEnds() {
        let d = Driver(.init(collectWindow: ms(1)))
        for i in 1...8 { d.add("n\(i)") }
        // The writer now expects 8 back, for at most 250 µs (that commit's time).
        #expect(d.next(took: µs(250)) == .commit(normal: (1...8).map { "n\($0)" }, background: [], turn: false))
        d.now = ms(1)
        d.add("a1")
        #expect(d.next() == .wait(until: ms(1) + µs(100)))
        // Woken early (by something else): a new step from then.
        d.now = ms(1) + µs(30)
        #expect(d.next() == .wait(until: ms(1) + µs(130)))
        d.now = ms(1) + µs(130)
        #expect(!d.add("a2"))
        #expect(d.next() == .wait(until: ms(1) + µs(230)))
        d.now = ms(1) + µs(230)
        d.add("a3")
        // The step is cut at the window's end (1 ms + 250 µs).
        #expect(d.next() == .wait(until: ms(1) + µs(250)))
        d.now = ms(1) + µs(250)
        d.add("a4")
        #expect(d.next() == .commit(normal: ["a1", "a2", "a3", "a4"], background: [], turn: false))

        // A zero window commits whatever is queued at once.
        let zero = Driver(.init(collectWindow: .zero))
        zero.add("n1")
        zero.add("n2")
        #expect(zero.next() == .commit(normal: ["n1", "n2"], background: [], turn: false))
        zero.add("n3")
        #expect(zero.next() == .commit(normal: ["n3"], background: [], turn: false))
    }

    @Test("held, the writer takes no batch, and what is queued meanwhile commits together on release")
    func holdAndRelease() {
        let d = Driver(.init(collectWindow: .zero))
        d.policy.hold()
        #expect(!d.add("n1"))
        #expect(d.next() == .wait(until: nil))
        #expect(d.add("b1"))
        #expect(d.add("n2"))
        #expect(d.next() == .wait(until: nil))
        d.policy.release()
        #expect(d.next() == .commit(normal: ["n1", "n2"], background: ["b1"], turn: true))
        // Hold also ends a collection under way.
        let c = Driver(.init(collectWindow: ms(1)))
        c.add("n1")
        c.add("n2")
        #expect(c.next() == .commit(normal: ["n1", "n2"], background: [], turn: false))
        c.add("n3")
        #expect(c.next() == .wait(until: ms(1) + µs(100)))
        c.policy.hold()
        #expect(c.next() == .wait(until: nil))
        c.policy.release()
        // A new collection, from now.
        c.now = ms(1) + µs(50)
        #expect(c.next() == .wait(until: ms(1) + µs(150)))
    }

    @Test("stopping, what is queued commits without deferral or collection, then the writer exits")
    func stopDrains() {
        let d = Driver(.init(collectWindow: ms(1), backgroundShare: 0.25, maxBackgroundEvents: 2, backgroundGap: .seconds(3_600)))
        _ = d.deferBackground(true)
        d.add("b0")
        #expect(d.next(took: ms(10)) == .commit(normal: [], background: ["b0"], turn: true))
        for i in 1...3 { d.add("b\(i)", bytes: 10_000) }
        #expect(d.next() == .wait(until: ms(40)))
        d.add("n1")
        d.add("n2")
        #expect(d.next() == .commit(normal: ["n1", "n2"], background: [], turn: false))
        // The writer waits for two to come back; stopping ends that, and the deferral.
        d.add("n3")
        #expect(d.next() == .wait(until: ms(11) + µs(100)))
        d.policy.stop()
        d.policy.hold()
        #expect(d.next() == .commit(normal: ["n3"], background: ["b1", "b2"], turn: true))
        #expect(d.next() == .commit(normal: [], background: ["b3"], turn: true))
        #expect(d.next() == .exit)
        #expect(!d.policy.running)
    }
}
