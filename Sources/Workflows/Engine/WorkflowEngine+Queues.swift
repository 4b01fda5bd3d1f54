import WorkflowModel
import EventLog
import Foundation

/// The engine's run queues and workers: which run a worker takes next (real-time work first),
/// batch work yielding to real-time work while the store defers background appends, and the
/// execution of a claimed run.
extension WorkflowEngine {
    // MARK: Queues and workers

    /// Takes the next run for a worker and claims it in the same actor turn, so the engine is
    /// never seen idle between a run leaving its queue and starting to execute.
    func nextRun(realtimeOnly: Bool) async -> (id: String, queue: RunQueue)? {
        while !stopped {
            if let (id, queue) = queues.pop(realtimeOnly: realtimeOnly) {
                if executing.contains(id) { continue }
                interruptedRuns.remove(id)
                if deferIfJobHalted(id) {
                    realtimeRunLeft(id)
                    continue
                }
                executing.insert(id)
                return (id, queue)
            }
            await withCheckedContinuation { queues.addWaiter(realtimeOnly: realtimeOnly, $0) }
        }
        return nil
    }

    func enqueue(_ runId: String, _ queue: RunQueue) {
        if queue == .realtime {
            realtimeRuns.insert(runId)
            realtimeBegan()
        }
        queues.push(runId, queue)
    }

    /// Real-time work is in flight: background appends (an importer's batches) wait in the store,
    /// but for a small share of the writer's time (`EventStore.Options.backgroundShare`), until
    /// real-time work has been quiet for `realtimeGrace`.
    func realtimeBegan() {
        guard !deferringBackground, !stopped else { return }
        deferringBackground = true
        store.deferBackground(true)
    }

    /// Waits while real-time runs are being created, queued or executed, for at most `limit`
    /// (default: the configuration's `batchYieldLimit`). Batch work (an importer's next batch, a
    /// batch run) calls it first, so it does not put its commits and CPU ahead of a real-time
    /// run's; the limit keeps a steady real-time load from starving batch work.
    public func yieldToRealtime(atMost limit: Duration? = nil) async {
        let limit = limit ?? configuration.batchYieldLimit
        guard !realtimeIsQuiet, !stopped, limit > .zero else { return }
        let token = nextQuietToken
        nextQuietToken += 1
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: limit) } catch { return }
            await self?.resumeQuietWaiter(token)
        }
        await withCheckedContinuation { quietWaiters[token] = $0 }
        timer.cancel()
    }

    private var realtimeIsQuiet: Bool { realtimeCreating == 0 && realtimeRuns.isEmpty }

    fileprivate func resumeQuietWaiter(_ token: Int) {
        quietWaiters.removeValue(forKey: token)?.resume()
    }

    /// Wakes the batch work waiting in `yieldToRealtime` once no real-time run has been in flight
    /// for `realtimeGrace` (at once when the engine stops): real-time runs often come one after
    /// another, and a batch let into the gap between two would delay the second.
    func realtimeRunLeft(_ runId: String? = nil) {
        if let runId { realtimeRuns.remove(runId) }
        if stopped { stopDeferring() }
        guard !quietWaiters.isEmpty || deferringBackground else { return }
        if stopped { return resumeQuietWaiters() }
        guard realtimeIsQuiet else { return }
        realtimeQuietSince = .now
        guard !graceRunning else { return }
        graceRunning = true
        waitOutGrace(Self.realtimeGrace)
    }

    fileprivate func waitOutGrace(_ duration: Duration) {
        Task { [weak self] in
            try? await Task.sleep(for: duration)
            await self?.graceEnded()
        }
    }

    /// How long no real-time run must be in flight before waiting batch work goes ahead.
    static let realtimeGrace = Duration.milliseconds(30)

    /// Batch work goes ahead only when real-time work has been quiet for the whole grace: a
    /// check that fell into the short gap between two real-time runs would let it in there.
    fileprivate func graceEnded() {
        let quietFor = ContinuousClock.now - realtimeQuietSince
        if !stopped, realtimeIsQuiet, quietFor < Self.realtimeGrace {
            return waitOutGrace(Self.realtimeGrace - quietFor)
        }
        graceRunning = false
        if realtimeIsQuiet || stopped {
            stopDeferring()
            resumeQuietWaiters()
        }
    }

    fileprivate func stopDeferring() {
        guard deferringBackground else { return }
        deferringBackground = false
        store.deferBackground(false)
    }

    fileprivate func resumeQuietWaiters() {
        let waiting = quietWaiters
        quietWaiters.removeAll()
        for continuation in waiting.values { continuation.resume() }
    }

    /// Executes a run to its end, recording every step; see `WorkflowEngine+Execute.swift`.
    func execute(_ runId: String) async {
        guard !executing.contains(runId) else { return }
        executing.insert(runId)
        await executeClaimed(runId)
    }

    func executeClaimed(_ runId: String) async {
        defer {
            executing.remove(runId)
            realtimeRunLeft(runId)
        }
        await executeRun(runId)
    }

    /// Waits until every queued run has finished (tests and benchmarks).
    public func waitUntilIdle(timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while queues.count > 0 || !executing.isEmpty {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }
}

/// The real-time and batch queues. Workers take real-time runs first; real-time-only workers
/// never take batch runs, so a batch backlog cannot delay a real-time run beyond the time a
/// real-time worker needs to finish the real-time run it is on.
///
/// A batch of imported runs waits as one entry, its run id prefix and a count: the ids are made
/// as workers take them (`RunsImported.runId(at:)`), so a backlog of a million imported runs
/// does not hold a million ids.
struct RunQueues {
    private var realtime: [String] = []
    private var realtimeHead = 0
    private var batch: [BatchEntry] = []
    private var batchHead = 0
    /// Runs waiting in `batch`.
    private var batchCount = 0
    private var waiting: [(realtimeOnly: Bool, continuation: CheckedContinuation<Void, Never>)] = []
    private var closed = false

    enum BatchEntry {
        case run(String)
        /// Runs `next..<count` of the imported batch whose ids start with `prefix`.
        case imported(prefix: String, next: Int, count: Int)
    }

    init() {}

    var count: Int { realtime.count - realtimeHead + batchCount }

    mutating func push(_ id: String, _ queue: RunQueue) {
        if queue == .realtime {
            realtime.append(id)
        } else {
            batch.append(.run(id))
            batchCount += 1
        }
        wake(queue)
    }

    /// Queues the `count` runs of an imported batch whose run ids start with `prefix`.
    mutating func pushImported(prefix: String, count: Int) {
        guard count > 0 else { return }
        batch.append(.imported(prefix: prefix, next: 0, count: count))
        batchCount += count
        for _ in 0..<min(count, waiting.count) { wake(.batch) }
    }

    /// Wakes one worker that can take a run of `queue`.
    private mutating func wake(_ queue: RunQueue) {
        if let i = waiting.firstIndex(where: { queue == .realtime || !$0.realtimeOnly }) {
            waiting.remove(at: i).continuation.resume()
        }
    }

    mutating func pop(realtimeOnly: Bool) -> (id: String, queue: RunQueue)? {
        if realtimeHead < realtime.count {
            defer { realtimeHead += 1; compact() }
            return (realtime[realtimeHead], .realtime)
        }
        guard !realtimeOnly, batchHead < batch.count else { return nil }
        batchCount -= 1
        switch batch[batchHead] {
        case .run(let id):
            batchHead += 1
            compact()
            return (id, .batch)
        case .imported(let prefix, let next, let count):
            if next + 1 == count {
                batchHead += 1
                compact()
            } else {
                batch[batchHead] = .imported(prefix: prefix, next: next + 1, count: count)
            }
            return (RunsImported.runId(prefix: prefix, index: next), .batch)
        }
    }

    private mutating func compact() {
        if realtimeHead > 1024 && realtimeHead * 2 > realtime.count {
            realtime.removeFirst(realtimeHead)
            realtimeHead = 0
        }
        if batchHead > 1024 && batchHead * 2 > batch.count {
            batch.removeFirst(batchHead)
            batchHead = 0
        }
    }

    /// Parks a worker until a run it can take is pushed (or the queues close).
    mutating func addWaiter(realtimeOnly: Bool, _ continuation: CheckedContinuation<Void, Never>) {
        if closed || pop(peekRealtimeOnly: realtimeOnly) {
            continuation.resume()
        } else {
            waiting.append((realtimeOnly, continuation))
        }
    }

    /// Whether a run is waiting that a worker of this kind could take.
    private func pop(peekRealtimeOnly realtimeOnly: Bool) -> Bool {
        realtimeHead < realtime.count || (!realtimeOnly && batchCount > 0)
    }

    mutating func close() {
        closed = true
        for w in waiting { w.continuation.resume() }
        waiting.removeAll()
    }
}

extension WorkflowEngine {
    /// Queues the unfinished runs of leases this node took over (`WorkLeases`): those created by
    /// an event their nodes wrote, as the log stood at the takeover. A failed read is tried again
    /// each second until it succeeds or the engine stops.
    func resume(_ takeover: WorkTakeover, _ leases: any WorkLeases) async {
        await caughtUp(to: takeover.head)
        while !stopped {
            do {
                let active = try runs.activeRuns()
                let owned = try await leases.written(Array(Set(active.map(\.position))), in: takeover)
                let taken = active.filter { owned.contains($0.position) && !executing.contains($0.id) }
                let records = try runs.runs(taken.map(\.id))
                for (run, record) in zip(taken, records) {
                    queues.push(run.id, run.queue)
                    if record?.created.source.kind == "job" { interruptedRuns.insert(run.id) }
                }
                return
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
