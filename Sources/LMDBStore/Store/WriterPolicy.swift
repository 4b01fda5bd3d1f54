import EventLog
/// What the writer queues, as far as its scheduling sees it: a size.
protocol WriterQueueItem {
    /// Events it writes (counted against `maxBatchEvents` and `maxBackgroundEvents`).
    var eventCount: Int { get }
    /// Payload bytes it writes (counted against `maxBatchBytes`, `maxBackgroundBytes` and
    /// `rideAlongBytes`).
    var byteCount: Int { get }
}

/// The writer's scheduling rules, without its thread, lock, clock or LMDB: the queue of normal
/// work and that of background work, the deferral of background work and its pacing, and the
/// collection of a group commit. The writer calls `next(now:)` with its lock held each time it
/// wakes, waits or commits as answered, and reports each commit (`committed`), with the time
/// the commit took. Times are offsets from the writer's start on `ContinuousClock`, passed in by
/// the caller.
struct WriterPolicy<Item: WriterQueueItem> {
    /// What the writer does next.
    enum Decision {
        /// Commit these items in one write transaction, then report it (`committed`).
        case commit(Batch)
        /// Wait until this time, or (nil) until woken; `add` says when queued work should wake
        /// the writer, `deferBackground` when turning the deferral off should.
        case wait(until: Duration?)
        /// Stopped, and nothing is left to commit.
        case exit
    }

    /// The work of one commit: the normal work first, in the order queued, then background work.
    struct Batch {
        var items: [Item]
        /// How many of `items`, from the first, are normal work.
        var normalCount: Int
        /// Whether the commit is background work's own turn (not what rode along with normal
        /// work): only such a commit counts for `backgroundShare`.
        var backgroundTurn: Bool

        var backgroundCount: Int { items.count - normalCount }
    }

    let options: LMDBEventStore.Options
    /// 0.1 ms: while collecting, callers that come back do so a few microseconds apart; one that
    /// does not come back costs the others at most this much.
    static var collectGap: Duration { .microseconds(100) }

    private var normal: [Item] = []
    /// Background appends (`AppendPriority.background`), oldest first: they commit after the
    /// normal work waiting with them, and while `deferring` only as `backgroundShare` allows.
    private var background: [Item] = []
    /// While true (real-time work is in flight) background appends wait, but one still commits
    /// now and then (`backgroundShare`), so they are never starved.
    private(set) var deferring = false
    /// False once stopping: what is queued then commits without deferral or collection.
    private(set) var running = true
    /// While true no batch is taken (tests use it to put appends into one commit).
    private(set) var held = false
    /// When the last commit of background work's own turn ended, and how long it took.
    private var lastBackground: Duration
    private var lastBackgroundTook = Duration.zero
    /// When the last commit with normal work ended.
    private var lastNormal: Duration
    /// What the last commit answered (its normal work) and how long it took: the callers it
    /// resumed usually append again at once, and waiting for them a fraction of a commit fills
    /// the next one instead of committing the first to come back nearly alone.
    private var answered = 0
    private var lastCommitTook = Duration.zero
    private var collecting: Collecting?
    /// What the writer is waiting for, if it waits: which queued work wakes it.
    private var waiting = Waiting.none
    /// An empty buffer, reserved by the writer, that the next batch (or the queue) takes over.
    private var spare: [Item] = []

    private struct Collecting {
        /// The queue length that ends the collection (what the last commit answered).
        let expected: Int
        let deadline: Duration
        /// The queue length when the current step began.
        var seen: Int
        /// When the current step ends: a step that ends with no new arrival ends the collection.
        var step: Duration
    }

    private enum Waiting {
        case none
        /// Idle: any work queued wakes the writer.
        case anyWork
        /// Collecting: normal work wakes the writer once the queue holds this many.
        case normalCount(Int)
    }

    init(options: LMDBEventStore.Options, now: Duration = .zero) {
        self.options = options
        lastBackground = now
        lastNormal = now
    }

    /// Normal and background work waiting.
    var queuedCount: Int { normal.count + background.count }

    /// Queues `item`; returns whether the waiting writer should be woken for it. Background work
    /// commits after the normal work waiting with it (in the order queued among itself).
    mutating func add(_ item: Item, background isBackground: Bool) -> Bool {
        if isBackground {
            background.append(item)
            if case .anyWork = waiting { return true }
            return false
        }
        normal.append(item)
        switch waiting {
        case .none: return false
        case .anyWork: return true
        case .normalCount(let count): return normal.count >= count
        }
    }

    /// Turns the deferral of background work on or off; returns whether the writer should be
    /// woken (it was turned off).
    mutating func deferBackground(_ on: Bool) -> Bool {
        guard deferring != on else { return false }
        deferring = on
        return !on
    }

    /// Takes no batch until `release()`; what is queued meanwhile commits together.
    mutating func hold() { held = true }

    mutating func release() { held = false }

    /// From now on commits what is queued, without deferral or collection, then exits.
    mutating func stop() { running = false }

    /// What to do at `now`: the next batch to commit, or how long to wait.
    mutating func next(now: Duration) -> Decision {
        if held && running {
            collecting = nil
            waiting = .anyWork
            return .wait(until: nil)
        }
        if normal.isEmpty {
            // Only background work (or none): wait for normal work, or for its turn.
            guard let due = backgroundDue() else {
                waiting = .none
                guard running else { return .exit }
                waiting = .anyWork
                return .wait(until: nil)
            }
            if due.at > now {
                waiting = .anyWork
                return .wait(until: due.at)
            }
        } else if running, let collect = collect(now: now) {
            waiting = .normalCount(collect.expected)
            return .wait(until: collect.step)
        }
        waiting = .none
        let batch = takeBatch(now: now)
        // Work is taken only when some is due: never an empty batch.
        assert(!batch.items.isEmpty)
        return .commit(batch)
    }

    /// Records the commit of `batch`, which ended at `now` and took `took`. `spare` is an empty
    /// buffer for the next batch.
    mutating func committed(_ batch: Batch, took: Duration, at now: Duration, spare: [Item] = []) {
        answered = batch.normalCount
        lastCommitTook = took
        // Only a commit that was the background work's turn counts for its share; riding along
        // cost the writer almost nothing.
        if batch.backgroundTurn {
            lastBackground = now
            lastBackgroundTook = took
        }
        if batch.normalCount > 0 { lastNormal = now }
        self.spare = spare
    }

    /// When background work may next commit on its own (nil: none waits). While deferring, that
    /// is after a quiet `backgroundGap` without normal commits, or else on a paced turn
    /// (`backgroundShare`), which takes one append.
    private func backgroundDue() -> (at: Duration, paced: Bool)? {
        guard !background.isEmpty else { return nil }
        guard deferring && running else { return (lastBackground, false) }
        let share = options.backgroundShare
        let paced = lastBackground + lastBackgroundTook * ((1 - share) / share)
        let quiet = lastNormal + options.backgroundGap
        return quiet < paced ? (quiet, false) : (paced, true)
    }

    /// With normal work queued: the collection under way or begun at `now`, or nil when the
    /// batch is to be taken now. The writer waits up to the shorter of `collectWindow` and the
    /// last commit's time for the queue to hold as many as that commit answered, giving up as
    /// soon as no new request arrives for `collectGap`.
    private mutating func collect(now: Duration) -> Collecting? {
        guard var collect = collecting else {
            let window = min(options.collectWindow, lastCommitTook)
            guard answered > 1, window > .zero, normal.count < answered else { return nil }
            let deadline = now + window
            collecting = Collecting(expected: answered, deadline: deadline, seen: normal.count,
                                    step: min(now + Self.collectGap, deadline))
            return collecting
        }
        // Woken at the end of a step, or by enough arrivals, or by something else.
        if normal.count >= collect.expected
            || now >= collect.step && (normal.count == collect.seen || now >= collect.deadline) {
            collecting = nil
            return nil
        }
        collect.seen = normal.count
        collect.step = min(now + Self.collectGap, collect.deadline)
        collecting = collect
        return collect
    }

    /// Takes the next batch: normal work in the order queued up to `maxBatchEvents` and
    /// `maxBatchBytes` (at least one), then background work as its rules allow at `now`.
    private mutating func takeBatch(now: Duration) -> Batch {
        collecting = nil
        var events = 0
        var bytes = 0
        var taken = 0
        for work in normal {
            if taken > 0 && (events + work.eventCount > options.maxBatchEvents
                             || bytes + work.byteCount > options.maxBatchBytes) {
                break
            }
            events += work.eventCount
            bytes += work.byteCount
            taken += 1
        }
        var batch: [Item] = []
        swap(&batch, &spare)
        if taken == normal.count {
            swap(&batch, &normal)
        } else {
            batch.append(contentsOf: normal[0..<taken])
            normal.removeFirst(taken)
        }
        // Background work fills the rest of the commit. While deferring: what fits in
        // `rideAlongBytes` rides along with normal work; after a quiet gap without normal
        // commits it goes as when not deferring; and one append of it now and then
        // (`backgroundShare`) commits whatever its size. So a real-time append rarely waits
        // behind a commit of it.
        var backgroundTurn = false
        var backgroundTaken = 0
        if let due = backgroundDue() {
            let deferred = deferring && running
            // A quiet gap ends when normal work comes: then only what rides along.
            backgroundTurn = due.at <= now && (!deferred || due.paced || taken == 0)
            let riding = deferred && !backgroundTurn && taken > 0
            let limit = deferred && backgroundTurn && due.paced ? 1 : background.count
            var backgroundEvents = 0
            var backgroundBytes = 0
            for work in background where backgroundTurn || riding {
                if backgroundTaken == limit || (taken + backgroundTaken > 0
                    && (events + work.eventCount > options.maxBatchEvents
                        || bytes + work.byteCount > options.maxBatchBytes
                        || backgroundEvents + work.eventCount > options.maxBackgroundEvents
                        || backgroundBytes + work.byteCount > options.maxBackgroundBytes))
                    || (riding && backgroundBytes + work.byteCount > options.rideAlongBytes) {
                    break
                }
                backgroundBytes += work.byteCount
                backgroundEvents += work.eventCount
                events += work.eventCount
                bytes += work.byteCount
                backgroundTaken += 1
            }
            if backgroundTaken > 0 {
                batch.append(contentsOf: background[0..<backgroundTaken])
                background.removeFirst(backgroundTaken)
            }
            if backgroundTaken == 0 { backgroundTurn = false }
        }
        return Batch(items: batch, normalCount: taken, backgroundTurn: backgroundTurn)
    }
}
