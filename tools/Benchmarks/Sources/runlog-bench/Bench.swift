import EventStore
import Foundation

/// `runlog-bench`: the event store's headline figures in one run (see "Performance targets" in
/// the design notes). Run it through `tools/bench`, which builds it in release mode.
@main
struct Bench {
    struct Settings {
        var quick = false
        var repetitions = 3
        var valueBytes: Int?
        var baselineDuration: Duration = .seconds(2)
        var baselineMinCommits = 200
        var singleWarmup = 200
        var singleCount = 3_000
        var appenders = 64
        var concurrentTotal = 100_000
        var concurrentDuration: Duration = .seconds(3)
        var replayEvents = 1_000_000
        var replayPasses = 3
        /// Figures to run (1...7); 3 and 4 need 1's baseline, so it runs with them.
        var figures: Set<Int> = Set(1...7)
        var runs = 5_000
        var runTasks = 64
        var objectEvents = 5_000
        var latencySamples = 300
        var backlog = 20_000
        var backlogDuration: Duration = .seconds(10)

        func selected(_ figure: Int) -> Bool { figures.contains(figure) }

        static let usage = """
            usage: runlog-bench [--quick] [--events N] [--reps N] [--value-bytes N] [--appenders N]
                                [--runs N] [--backlog N] [--only LIST]

              --quick          small sizes, for a smoke run (figures are not meaningful)
              --events N       events in the replay log (default 1,000,000; 50,000 with --quick)
              --reps N         repetitions of the baseline, append and run figures, and replay and
                               rebuild passes (default 3)
              --value-bytes N  value size of the raw LMDB baseline (default: the size of this
                               benchmark's stored envelope, so both write the same bytes)
              --appenders N    concurrent appenders of figure 3 (default 64)
              --runs N         workflow runs per pass of figure 5 (default 5,000; 500 with --quick)
              --backlog N      batch runs queued in figure 7 (default 20,000; 2,000 with --quick)
              --only LIST      run only these figures, e.g. 5,6,7 or 1-4 (figures 3 and 4 bring 1)
            """

        static func parse(_ arguments: [String]) throws -> Settings {
            var settings = Settings()
            var events: Int?
            var runs: Int?
            var backlog: Int?
            var rest = arguments[...]
            func number(_ flag: String) throws -> Int {
                guard let text = rest.popFirst() else { throw BenchError("\(flag) needs a number\n\(usage)") }
                guard let n = Int(text.replacingOccurrences(of: "_", with: "")), n > 0 else {
                    throw BenchError("\(flag) needs a positive whole number, got \"\(text)\"\n\(usage)")
                }
                return n
            }
            while let argument = rest.popFirst() {
                switch argument {
                case "--quick": settings.quick = true
                case "--events": events = try number(argument)
                case "--reps": settings.repetitions = try number(argument)
                case "--value-bytes": settings.valueBytes = try number(argument)
                case "--appenders": settings.appenders = try number(argument)
                case "--runs": runs = try number(argument)
                case "--backlog": backlog = try number(argument)
                case "--only":
                    guard let text = rest.popFirst() else { throw BenchError("--only needs a list\n\(usage)") }
                    settings.figures = try figureList(text)
                case "-h", "--help":
                    print(usage)
                    exit(0)
                default: throw BenchError("unknown argument \"\(argument)\"\n\(usage)")
                }
            }
            if settings.quick {
                settings.baselineDuration = .milliseconds(300)
                settings.baselineMinCommits = 20
                settings.singleWarmup = 20
                settings.singleCount = 300
                settings.concurrentTotal = 10_000
                settings.concurrentDuration = .seconds(1)
                settings.replayEvents = 50_000
                settings.runs = 500
                settings.objectEvents = 500
                settings.latencySamples = 50
                settings.backlog = 2_000
                settings.backlogDuration = .seconds(2)
            }
            if let events { settings.replayEvents = events }
            if let runs { settings.runs = runs }
            if let backlog { settings.backlog = backlog }
            if !settings.figures.isDisjoint(with: [3, 4]) { settings.figures.insert(1) }
            settings.replayPasses = settings.repetitions
            return settings
        }

        /// `"5,6,7"`, `"1-4"`, `"2,5-7"` → figure numbers.
        static func figureList(_ text: String) throws -> Set<Int> {
            var figures: Set<Int> = []
            for part in text.split(separator: ",") {
                let bounds = part.split(separator: "-", maxSplits: 1).map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard let low = bounds.first ?? nil, let high = bounds.last ?? nil, 1 <= low, low <= high, high <= 7 else {
                    throw BenchError("--only takes figure numbers 1 to 7 like 5,6,7 or 1-4, got \"\(text)\"\n\(usage)")
                }
                figures.formUnion(low...high)
            }
            return figures
        }
    }

    static func main() async {
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

    static func run(_ s: Settings, _ temp: TempDirs) async throws {
        let clock = ContinuousClock()
        let began = clock.now
        let envelope = Workload.envelopeBytes(streamBytes: Workload.stream("appender", 0).utf8.count)
        let valueBytes = s.valueBytes ?? envelope

        say("runlog-bench: event store benchmarks")
        #if DEBUG
        say("WARNING: this is a debug build; figures are meaningless (use tools/bench)")
        #endif
        say("mode: \(s.quick ? "quick (smoke run: sizes too small to judge the targets)" : "full")"
            + ", cores: \(ProcessInfo.processInfo.activeProcessorCount)"
            + ", repetitions: \(s.repetitions)" + loadAverage())
        let fs = temp.fileSystem
        say("temp: \(temp.root) (\(fs))" + (fs == "tmpfs" ? "  WARNING: fsync is free on tmpfs; not a durable-disk figure" : ""))
        say("workload: one \"\(Workload.type)\" event per append, \(Workload.json(0).utf8.count)-byte JSON payload, "
            + "stored envelope \(envelope) bytes")

        // 1. Raw LMDB baseline.
        say()
        say("[1/4] raw LMDB baseline: fresh environment, durable commits (fsync) of 1,000 puts with MDB_APPEND,")
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
        let baselineRate = median(baselineRates)
        say("  median: \(rate(baselineRate))")

        // 2. One appender.
        say()
        say("[2/4] durable append, 1 appender: \(grouped(Double(s.singleCount))) sequential appends of 1 event "
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

        // 3. Concurrent appenders.
        say()
        say("[3/4] durable append, \(s.appenders) concurrent appenders (task group, one stream each, 1 event per append):")
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
        say("  context (no target): raw LMDB as in [1/4] but \(s.appenders) puts per commit, "
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

        // 4. Replay.
        say()
        say("[4/4] replay: a log of \(grouped(Double(s.replayEvents))) events (appends of 1,000 events, 8 streams), "
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

        // Summary.
        func status(_ met: Bool) -> String { met ? "met" : "MISSED" }
        say()
        say("summary (medians)" + (s.quick ? " — quick run: too small to judge the targets" : ""))
        table(["figure", "value", "target", "status"], [
            ["raw LMDB, 1,000 puts/commit", rate(baselineRate), "(reference)", "-"],
            ["durable append, 1 appender", rate(singleRate), "-", "-"],
            ["durable append, 1 appender, p50", ms(singleP50), "-", "-"],
            ["durable append, 1 appender, p99", ms(singleP99), "<= 2 ms", status(singleP99 <= 2)],
            ["durable append, \(s.appenders) appenders", "\(rate(concurrentRate)) (\(fixed(ratio, 1))% of raw)",
             ">= 50% of raw", status(ratio >= 50)],
            ["raw LMDB, \(s.appenders) puts/commit (context)", "\(rate(smallRate)) (\(fixed(smallRate / baselineRate * 100, 1))% of raw)",
             "-", "-"],
            ["replay (read + decode)", rate(replayRate), ">= 2,000,000 events/s", status(replayRate >= 2_000_000)],
        ])
        say()
        say("total wall time: \(fixed((clock.now - began).seconds, 1)) s" + loadAverage() + " at the end")
    }
}
