import EventLog
import LMDBStore
import WorkflowModel
import Workflows
import Foundation

/// `runlog-bench`: the event store's and the workflow engine's headline figures in one run (see
/// "Performance targets" in the design notes). Run it through `tools/bench`, which builds it in
/// release mode.
@main
struct Bench {

    static func main() async {
        // Child mode for [6]: rebuild in a fresh process, as a server does at start.
        let arguments = CommandLine.arguments
        if arguments.count == 4, arguments[1] == "--rebuild-child", let passes = Int(arguments[3]) {
            do {
                let store = try LMDBEventStore(directory: arguments[2], options: .init(readOnly: true))
                for _ in 0..<passes {
                    let t0 = ContinuousClock.now
                    let state = try WorkflowsState.rebuild(from: store, keepsRuns: false)
                    print("\(state.position) \((ContinuousClock.now - t0).seconds)")
                }
                store.close()
                exit(0)
            } catch {
                FileHandle.standardError.write(Data("runlog-bench --rebuild-child: \(error)\n".utf8))
                exit(1)
            }
        }
        let settings: Settings
        do {
            settings = try Settings.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("runlog-bench: \(error)\n".utf8))
            exit(2)
        }
        let temp: TempDirs
        do {
            temp = try TempDirs()
        } catch {
            FileHandle.standardError.write(Data("runlog-bench: \(error)\n".utf8))
            exit(1)
        }
        let handlers = installSignalHandlers(temp)
        do {
            try await run(settings, temp)
            temp.removeAll()
        } catch {
            temp.removeAll()
            FileHandle.standardError.write(Data("runlog-bench: failed: \(error)\n".utf8))
            exit(1)
        }
        withExtendedLifetime(handlers) {}
    }

    /// `", load average: 0.10 0.20 0.30"` from /proc/loadavg (other work on the machine skews figures).
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "" }
        return ", load average: " + text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// "met" or "MISSED", for the summary's status column.
    static func status(_ met: Bool) -> String { met ? "met" : "MISSED" }

    static func run(_ s: Settings, _ temp: TempDirs) async throws {
        let clock = ContinuousClock()
        let began = clock.now
        let envelope = Workload.envelopeBytes(streamBytes: Workload.stream("appender", 0).utf8.count)
        let valueBytes = s.valueBytes ?? envelope
        let total = 13
        var summary: [[String]] = []

        say("runlog-bench: event store and workflow engine benchmarks")
        #if DEBUG
        say("WARNING: this is a debug build; figures are meaningless (use tools/bench)")
        #endif
        say("mode: \(s.quick ? "quick (smoke run: sizes too small to judge the targets)" : "full")"
            + ", cores: \(ProcessInfo.processInfo.activeProcessorCount)"
            + ", repetitions: \(s.repetitions)" + loadAverage()
            + (s.figures.count < total ? ", figures: " + s.figures.sorted().map(String.init).joined(separator: ",") : ""))
        if let build = ProcessInfo.processInfo.environment["RUNLOG_BENCH_BUILD"] { say("build: \(build)") }
        let fs = temp.fileSystem
        say("temp: \(temp.root) (\(fs))" + (fs == "tmpfs" ? "  WARNING: fsync is free on tmpfs; not a durable-disk figure" : ""))
        if !s.figures.isDisjoint(with: 1...4) {
            say("workload [1-4]: one \"\(Workload.type)\" event per append, \(Workload.json(0).utf8.count)-byte JSON payload, "
                + "stored envelope \(envelope) bytes")
        }

        // 1. Raw LMDB baseline.
        var baselineRate = 0.0
        if s.selected(1) {
            say()
            say("[1/\(total)] raw LMDB baseline: fresh environment, durable commits (fsync) of 1,000 puts with MDB_APPEND,")
            say("      UInt64 big-endian keys, \(valueBytes)-byte values; at least "
                + "\(fixed(s.baselineDuration.seconds, 1)) s and \(s.baselineMinCommits) commits per run")
            let baseline = Baseline(
                valueBytes: valueBytes, minDuration: s.baselineDuration, minCommits: s.baselineMinCommits,
                maxDuration: s.baselineDuration * 5
            )
            var baselineRates: [Double] = []
            for rep in 1...s.repetitions {
                let r = try baseline.run(temp)
                baselineRates.append(r.eventsPerSecond)
                say("  run \(rep): \(rate(r.eventsPerSecond))  (\(grouped(Double(r.commits))) commits, "
                    + "\(grouped(Double(r.events))) events in \(fixed(r.elapsed.seconds, 3)) s, "
                    + "\(fixed(r.elapsed.milliseconds / Double(r.commits), 3)) ms/commit)")
            }
            baselineRate = median(baselineRates)
            say("  median: \(rate(baselineRate))")
            summary.append(["[1] raw LMDB, 1,000 puts/commit", rate(baselineRate), "(reference)", "-"])
        }

        // 2. One appender.
        if s.selected(2) {
            say()
            say("[2/\(total)] durable append, 1 appender: \(grouped(Double(s.singleCount))) sequential appends of 1 event "
                + "after \(grouped(Double(s.singleWarmup))) warm-up appends, fresh store per run")
            let single = SingleAppender(warmup: s.singleWarmup, count: s.singleCount)
            var singleRuns: [AppendRun] = []
            for rep in 1...s.repetitions {
                let r = try await single.run(temp)
                singleRuns.append(r)
                say("  run \(rep): \(rate(r.eventsPerSecond)), p50 \(ms(r.p50)), p99 \(ms(r.p99)), max \(ms(r.max))  "
                    + "(\(grouped(Double(r.commits))) commits)")
            }
            let singleRate = median(singleRuns.map(\.eventsPerSecond))
            let singleP50 = median(singleRuns.map(\.p50))
            let singleP99 = median(singleRuns.map(\.p99))
            say("  median: \(rate(singleRate)), p50 \(ms(singleP50)), p99 \(ms(singleP99))")
            summary += [
                ["[2] durable append, 1 appender", rate(singleRate), "-", "-"],
                ["[2] durable append, 1 appender, p50", ms(singleP50), "-", "-"],
                ["[2] durable append, 1 appender, p99", ms(singleP99), "<= 2 ms", status(singleP99 <= 2)],
            ]
        }

        // 3. Concurrent appenders.
        if s.selected(3) {
            say()
            say("[3/\(total)] durable append, \(s.appenders) concurrent appenders (task group, one stream each, 1 event per append):")
            say("      \(grouped(Double(s.concurrentTotal))) events or \(fixed(s.concurrentDuration.seconds, 1)) s per run "
                + "after a warm-up of 10 appends per task, fresh store per run")
            let concurrent = ConcurrentAppenders(
                appenders: s.appenders, warmupPerTask: 10, total: s.concurrentTotal, maxDuration: s.concurrentDuration
            )
            var concurrentRuns: [AppendRun] = []
            for rep in 1...s.repetitions {
                let r = try await concurrent.run(temp)
                concurrentRuns.append(r)
                say("  run \(rep): \(rate(r.eventsPerSecond))  (\(grouped(Double(r.events))) events in "
                    + "\(fixed(r.elapsed.seconds, 3)) s, \(grouped(Double(r.commits))) commits of "
                    + "\(fixed(r.eventsPerCommit, 1)) events on average, "
                    + "\(fixed(r.elapsed.milliseconds / Double(max(r.commits, 1)), 3)) ms/commit; "
                    + "latency p50 \(ms(r.p50)), p99 \(ms(r.p99)))")
            }
            let concurrentRate = median(concurrentRuns.map(\.eventsPerSecond))
            let ratio = concurrentRate / baselineRate * 100
            say("  median: \(rate(concurrentRate)) = \(fixed(ratio, 1))% of the baseline's \(rate(baselineRate))")

            // Context for figure 3: with one event in flight per appender, no commit can hold more
            // than `appenders` events, so raw LMDB at that many puts per commit bounds it too.
            say("  context (no target): raw LMDB as in [1/\(total)] but \(s.appenders) puts per commit, "
                + "the most events \(s.appenders) one-event appenders can put in one commit:")
            let smallBaseline = Baseline(
                eventsPerCommit: s.appenders, valueBytes: valueBytes, minDuration: s.baselineDuration / 2,
                minCommits: s.baselineMinCommits, maxDuration: s.baselineDuration * 5
            )
            var smallRates: [Double] = []
            for rep in 1...s.repetitions {
                let r = try smallBaseline.run(temp)
                smallRates.append(r.eventsPerSecond)
                say("    run \(rep): \(rate(r.eventsPerSecond))  (\(grouped(Double(r.commits))) commits, "
                    + "\(fixed(r.elapsed.milliseconds / Double(r.commits), 3)) ms/commit)")
            }
            let smallRate = median(smallRates)
            say("    median: \(rate(smallRate)) = \(fixed(smallRate / baselineRate * 100, 1))% of the baseline; "
                + "the store reaches \(fixed(concurrentRate / smallRate * 100, 1))% of it")
            summary += [
                ["[3] durable append, \(s.appenders) appenders", "\(rate(concurrentRate)) (\(fixed(ratio, 1))% of raw)",
                 ">= 50% of raw", status(ratio >= 50)],
                ["[3] raw LMDB, \(s.appenders) puts/commit (context)",
                 "\(rate(smallRate)) (\(fixed(smallRate / baselineRate * 100, 1))% of raw)", "-", "-"],
            ]
        }

        // 4. Replay.
        if s.selected(4) {
            say()
            say("[4/\(total)] replay: a log of \(grouped(Double(s.replayEvents))) events (appends of 1,000 events, 8 streams), "
                + "then store.forEach(from: 1) over all of it, \(s.replayPasses) passes")
            let replay = Replay(events: s.replayEvents, passes: s.replayPasses)
            let passes = try await replay.run(temp) { build in
                let perEvent = Double(build.stats.usedBytes) / Double(build.events)
                say("  built in \(fixed(build.elapsed.seconds, 2)) s: \(rate(build.eventsPerSecond)) at 1,000 events per "
                    + "append (one commit each), \(fixed(build.eventsPerSecond / baselineRate * 100, 1))% of raw LMDB "
                    + "at the same 1,000 per commit; data.mdb uses \(bytes(build.stats.usedBytes)) "
                    + "(\(fixed(perEvent, 0)) bytes/event)")
            } passed: { pass, result in
                say("  pass \(pass): \(rate(result.eventsPerSecond))  (\(grouped(Double(result.events))) events in "
                    + "\(fixed(result.elapsed.seconds, 3)) s)")
            }
            let replayRate = median(passes.map(\.eventsPerSecond))
            say("  median: \(rate(replayRate))")
            summary.append(["[4] replay (read + decode)", rate(replayRate), ">= 2,000,000 events/s",
                            status(replayRate >= 2_000_000)])
        }

        // 5 and 6 share one store: 6 rebuilds the log that 5 wrote, plus object events.
        var shared: EngineHarness?
        var apiWorkflow = ""
        var runsWritten = 0
        let endToEnd = RunsEndToEnd(runs: s.runs, tasks: s.runTasks)
        if s.selected(5) || s.selected(6) {
            let h = try await EngineHarness(temp, "engine")
            shared = h
            apiWorkflow = try await Flows.activate(h.engine, name: "api", Flows.api)
            // Warm-up: one run per task.
            _ = try await RunsEndToEnd(runs: s.runTasks, tasks: s.runTasks).pass(h, workflowId: apiWorkflow, offset: 0)
            runsWritten = s.runTasks
        }

        // 5. Runs end to end.
        if s.selected(5), let h = shared {
            say()
            say("[5/\(total)] workflow runs end to end: an activated API-triggered workflow of 3 steps that stay inside Runlog")
            say("      (add_to_list, remove_from_list, approve); \(grouped(Double(s.runs))) runs per pass started by "
                + "\(s.runTasks) tasks (each awaiting its startRun) on the real-time queue,")
            say("      until every run is seen completed in the log; default engine (1 real-time + 3 shared workers); "
                + "one store for every pass")
            say("      latency: startRun call → run.completed seen by a log subscriber; commit-ts: finishedAt − createdAt (whole ms)")
            var passes: [RunsEndToEnd.Pass] = []
            for rep in 1...s.repetitions {
                let r = try await endToEnd.pass(h, workflowId: apiWorkflow, offset: runsWritten)
                runsWritten += s.runs
                passes.append(r)
                say("  pass \(rep): \(grouped(r.runsPerSecond)) runs/s  (\(grouped(Double(r.runs))) runs in "
                    + "\(fixed(r.elapsed.seconds, 3)) s, created in \(fixed(r.creation.seconds, 3)) s; "
                    + "\(fixed(Double(r.events) / Double(r.runs), 1)) events/run = \(rate(Double(r.events) / r.elapsed.seconds)), "
                    + "\(grouped(Double(r.commits))) commits of \(fixed(Double(r.events) / Double(max(r.commits, 1)), 1)) events)")
                say("          latency p50 \(ms(r.p50)), p99 \(ms(r.p99)), max \(ms(r.latencies.last ?? 0)); "
                    + "commit-ts p50 \(fixed(percentile(r.commitLatencies, 50), 0)) ms, "
                    + "p99 \(fixed(percentile(r.commitLatencies, 99), 0)) ms; "
                    + "startRun returns p50 \(ms(percentile(r.startLatencies, 50))), p99 \(ms(percentile(r.startLatencies, 99)))")
            }
            let runRate = median(passes.map(\.runsPerSecond))
            let p50 = median(passes.map(\.p50))
            let p99 = median(passes.map(\.p99))
            say("  median: \(grouped(runRate)) runs/s, latency p50 \(ms(p50)), p99 \(ms(p99))")
            summary += [
                ["[5] runs end to end, \(s.runTasks) tasks, 3 steps", "\(grouped(runRate)) runs/s",
                 "none set (imports: >= 100,000 rows/s)", "-"],
                ["[5] run latency (call → completed), p50", ms(p50), "-", "-"],
                ["[5] run latency (call → completed), p99", ms(p99), "-", "-"],
            ]
        }

        // 6. Full projection rebuild.
        if s.selected(6), let h = shared {
            say()
            let rebuild = Rebuild(objectEvents: s.objectEvents, passes: s.repetitions)
            say("[6/\(total)] full projection rebuild: WorkflowsState.rebuild(from:) over the whole log as a server does when it "
                + "starts (its runs are in the run tables, so it folds no runs), \(rebuild.passes) passes; then the run tables "
                + "built afresh from the log, as the first start after an upgrade does;")
            say("      the log: \(s.selected(5) ? "figure 5's" : "\(grouped(Double(s.runs))) API runs") "
                + "+ workflow edits (20 versions, a rollout with 200 runs) + \(grouped(Double(s.objectEvents))) object events "
                + "(postEvent, \(rebuild.tasks) tasks, 2 per object) starting event-triggered runs on the batch queue")
            if !s.selected(5) {
                _ = try await endToEnd.pass(h, workflowId: apiWorkflow, offset: runsWritten)
                runsWritten += s.runs
            }
            let mix = try await rebuild.addMix(h)
            say("  object events added in \(fixed(mix.elapsed.seconds, 2)) s: \(grouped(Double(mix.added))) events, "
                + "\(grouped(Double(mix.runsStarted))) event-triggered runs")
            let live = await h.engine.snapshot
            try await h.stopEngine()
            let stats = try h.store.stats()
            let breakdown = try rebuild.breakdown(h.store)
            let mixText = ["workflow", "run", "object", "list"].map { "\($0) \(grouped(Double(breakdown.byDomain[$0] ?? 0)))" }
                .joined(separator: ", ")
            say("  log: \(grouped(Double(stats.eventCount))) events (\(mixText)), \(grouped(Double(stats.streamCount))) streams, "
                + "payloads \(bytes(breakdown.payloadBytes)) (\(fixed(Double(breakdown.payloadBytes) / Double(stats.eventCount), 0)) "
                + "bytes/event on average), data.mdb uses \(bytes(stats.usedBytes))")
            var passes: [Rebuild.Pass] = []
            var equalsLive = true
            for pass in 1...rebuild.passes {
                let (state, r) = try rebuild.rebuild(h.store)
                if pass == 1 { equalsLive = state == live }
                passes.append(r)
                say("  pass \(pass): \(rate(r.eventsPerSecond))  (\(grouped(Double(r.events))) events in \(fixed(r.elapsed.seconds, 3)) s)")
            }
            let rebuildRate = median(passes.map(\.eventsPerSecond))
            let rebuildTime = median(passes.map(\.elapsed.seconds))
            say("  median: \(rate(rebuildRate)) in this process (whose heap still holds the live engine's state); "
                + "the rebuilt state \(equalsLive ? "equals" : "DIFFERS FROM") the live engine's read models")
            // The same rebuild in a fresh process, as a server does when it starts.
            let fresh = try Rebuild.inFreshProcess(directory: h.store.directory, passes: rebuild.passes)
            for (i, r) in fresh.enumerated() {
                say("  fresh process, pass \(i + 1): \(rate(r.eventsPerSecond))  (\(grouped(Double(r.events))) events in \(fixed(r.elapsed.seconds, 3)) s)")
            }
            let freshRate = median(fresh.map(\.eventsPerSecond))
            say("  median in a fresh process: \(rate(freshRate))")
            let liveRuns = try RunTables(store: h.store).count()
            let tables = try await rebuild.buildRunTables(h.store)
            say("  run tables built from the log (RunsProjection, in write transactions of 20,000 events): "
                + "\(rate(tables.pass.eventsPerSecond)) (\(grouped(Double(tables.pass.events))) events in "
                + "\(fixed(tables.pass.elapsed.seconds, 3)) s); \(grouped(Double(tables.runs))) runs, "
                + (tables.runs == liveRuns ? "as many as the live tables" : "the live tables hold \(grouped(Double(liveRuns)))"))
            let events = Double(stats.eventCount)
            func share(_ seconds: Double) -> String { fixed(seconds / rebuildTime * 100, 0) + "%" }
            let decodeOnly = breakdown.decode.seconds - breakdown.read.seconds
            let applyOnly = rebuildTime - breakdown.decode.seconds
            say("  where the time goes (one pass each of the same log, subtracted from the median rebuild):")
            say("    read + envelope decode (forEach alone):     \(fixed(breakdown.read.seconds, 3)) s  \(share(breakdown.read.seconds))  "
                + "(\(rate(events / breakdown.read.seconds)))")
            say("    DomainEvent.decode (payload JSON) on top:\(fixed(decodeOnly, 3)) s  \(share(decodeOnly))  "
                + "(\(rate(events / max(decodeOnly, 1e-9))) for the JSON alone)")
            say("    WorkflowsState.apply on top:                \(fixed(applyOnly, 3)) s  \(share(applyOnly))")
            let decodeTotal = breakdown.byType.values.reduce(Duration.zero) { $0 + $1.decode }.seconds
            say("  DomainEvent.decode by event type (timed per event in the decode pass; top 8 by time):")
            for (type, t) in breakdown.byType.sorted(by: { $0.value.decode > $1.value.decode }).prefix(8) {
                say("    \(pad(type, 28)) \(pad(grouped(Double(t.count)), 8)) events, \(pad(fixed(Double(t.bytes) / Double(t.count), 0), 4)) B avg, "
                    + "\(fixed(t.decode.seconds / Double(t.count) * 1e6, 2)) µs/event, \(fixed(t.decode.seconds / decodeTotal * 100, 0))% of decoding")
            }
            summary.append(["[6] full projection rebuild, fresh process (\(grouped(events)) events)", rate(freshRate),
                            ">= 500,000 events/s", status(freshRate >= 500_000)])
            summary.append(["[6] … in the process that built the log", rate(rebuildRate),
                            ">= 500,000 events/s", status(rebuildRate >= 500_000)])
            summary.append(["[6] … the run tables built from the log (an upgrade)", rate(tables.pass.eventsPerSecond),
                            "none set", "-"])
        }
        if let h = shared {
            try await h.close()
        }

        // 7 to 10 (Bench+Figures7to10).
        if s.selected(7) { try await realtimeLatency(s, temp, total: total, summary: &summary) }
        if s.selected(8) { try await httpCommands(s, temp, total: total, summary: &summary) }
        if s.selected(9) { try await importRows(s, temp, total: total, summary: &summary) }
        if s.selected(10) { try await batchTask(s, temp, total: total, summary: &summary) }
        // 11 and 12 (PostgresAppends).
        if s.selected(11) { try await postgresAppends(s, total: total, summary: &summary) }
        if s.selected(12) { try await postgresHTTP(s, temp, total: total, summary: &summary) }
        // 13 (Preview).
        if s.selected(13) { try await preview(s, temp, total: total, summary: &summary) }

        // Summary.
        say()
        say("summary (medians)" + (s.quick ? " — quick run: too small to judge the targets" : ""))
        table(["figure", "value", "target", "status"], summary)
        say()
        say("total wall time: \(fixed((clock.now - began).seconds, 1)) s" + loadAverage() + " at the end")
    }
}
