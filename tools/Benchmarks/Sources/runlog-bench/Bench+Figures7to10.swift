// Figures 7 to 10 of `runlog-bench`, each in a function that `Bench.run` calls: real-time run
// latency under a batch backlog, commands over HTTP, an import, and a batch task.
import Foundation

extension Bench {
    /// 7. Real-time latency with a batch backlog.
    static func realtimeLatency(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        let latency = RealtimeLatency(samples: s.latencySamples, backlog: s.backlog, creationLimit: s.backlogDuration)
        say("[7/\(total)] real-time run latency, idle and with a batch backlog: default engine (1 real-time-only + 3 shared "
            + "workers), the workflow of [5];")
        say("      \(latency.samples) real-time runs one at a time after \(latency.warmup) warm-up runs, each timed from its "
            + "startRun call to its run.completed seen by a log subscriber;")
        say("      then \(latency.creators) tasks start up to \(grouped(Double(latency.backlog))) batch runs (for at most "
            + "\(fixed(latency.creationLimit.seconds, 0)) s): up to \(latency.samples) real-time runs are timed the same way "
            + "while they do")
        say("      (once \(grouped(Double(min(1_000, s.backlog / 10)))) are pending), and up to \(latency.samples) more after the last is created, while the backlog drains")
        let r = try await latency.run(temp)
        func line(_ name: String, _ p: RealtimeLatency.Phase) -> String {
            "  \(pad(name, 15)) p50 \(ms(p.p50)), p99 \(ms(p.p99)), max \(ms(p.latencies.last ?? 0)) "
                + "(commit-ts p50 \(fixed(percentile(p.commit, 50), 0)) ms, p99 \(fixed(percentile(p.commit, 99), 0)) ms; "
                + "startRun returns p50 \(ms(percentile(p.start, 50))), p99 \(ms(percentile(p.start, 99))))"
        }
        func context(_ p: RealtimeLatency.Phase) -> String {
            "      \(p.latencies.count) samples in \(fixed(p.window.seconds, 2)) s; batch runs pending: "
                + "\(grouped(Double(p.pendingAtStart))) at the start, \(grouped(Double(p.pendingAtEnd))) at the end"
                + (p.drained ? " (drained before the last sample)" : "")
                + "; \(grouped(Double(p.batchFinished))) batch runs finished meanwhile "
                + "(\(grouped(Double(p.batchFinished) / p.window.seconds)) runs/s)"
        }
        say(line("idle:", r.idle))
        for (name, phase) in [("while creating:", r.creating), ("while draining:", r.draining)] {
            guard !phase.latencies.isEmpty else {
                say("  \(pad(name, 15)) no sample: no batch run was pending")
                continue
            }
            say(line(name, phase) + "  p99 \(fixed(phase.p99 / r.idle.p99, 2))× idle")
            say(context(phase))
        }
        say("  \(grouped(Double(r.batchCreated))) batch runs created in \(fixed(r.creationTime.seconds, 2)) s "
            + "(\(grouped(Double(r.batchCreated) / r.creationTime.seconds)) runs/s), "
            + "\(grouped(Double(r.pendingAfterCreation))) of them pending when the last was created; "
            + "the last \(grouped(Double(r.rest))) drained in \(fixed(r.restDrainTime.seconds, 2)) s "
            + "(\(grouped(Double(r.rest) / r.restDrainTime.seconds)) runs/s, no real-time runs)")
        summary.append(["[7] real-time run latency idle, p50 / p99", "\(ms(r.idle.p50)) / \(ms(r.idle.p99))", "-", "-"])
        for (name, phase) in [("creating", r.creating), ("draining", r.draining)] where !phase.latencies.isEmpty {
            let ratio = phase.p99 / r.idle.p99
            summary += [
                ["[7] … while batch backlog \(name), p50 / p99", "\(ms(phase.p50)) / \(ms(phase.p99))", "-", "-"],
                ["[7] … \(name): p99 / idle p99 (\(phase.latencies.count) samples)", "\(fixed(ratio, 2))×", "<= 1.5×",
                 status(ratio <= 1.5)],
            ]
        }
    }

    /// 8. Commands over HTTP.
    static func httpCommands(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        let load = HTTPLoad(duration: s.quick ? 2 : 10, repetitions: s.quick ? 1 : s.repetitions)
        say("[8/\(total)] HTTP commands on loopback: runlog serve (release, --log-level warning, no rate limit), "
            + "wrk -t2 -c\(load.connections) for \(load.duration) s × \(load.repetitions) after a 2 s warm-up;")
        say("      each request POST /v1/workflows {\"name\"} with a service key: one command, one event; "
            + "wrk shares the 2 cores with the server")
        let results = try await load.run(temp)
        for (i, r) in results.enumerated() {
            say("  run \(i + 1): \(grouped(r.requestsPerSecond)) commands/s, p50 \(ms(r.p50)), p99 \(ms(r.p99)), "
                + "\(r.errors) errors")
        }
        let rps = median(results.map(\.requestsPerSecond))
        summary.append(["[8] HTTP commands, 64 connections, 1 event each", grouped(rps) + " commands/s",
                        ">= 20,000 commands/s", status(rps >= 20_000)])
        summary.append(["[8] … latency p50 / p99", "\(ms(median(results.map(\.p50)))) / \(ms(median(results.map(\.p99))))",
                        "-", "-"])
        say("  the same, each request with its own Idempotency-Key (the command's events, then its kept answer):")
        var keyed = load
        keyed.idempotent = true
        let keyedResults = try await keyed.run(temp)
        for (i, r) in keyedResults.enumerated() {
            say("  run \(i + 1): \(grouped(r.requestsPerSecond)) commands/s, p50 \(ms(r.p50)), p99 \(ms(r.p99)), "
                + "\(r.errors) errors")
        }
        summary.append(["[8] … with an Idempotency-Key each", grouped(median(keyedResults.map(\.requestsPerSecond)))
                            + " commands/s", "-", "-"])
    }

    /// 9. Import.
    static func importRows(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        let bench = ImportBenchmark(rows: s.importRows, samples: s.quick ? 50 : 200)
        say("[9/\(total)] import: a \(grouped(Double(bench.rows)))-row CSV (one IP per row) into the API workflow of [5] "
            + "through an importer (\(bench.batchSize) rows per append with its checkpoint, runs on the batch queue);")
        say("      real-time runs of another workflow timed one at a time (startRun → run.completed), "
            + "\(bench.samples) idle, then up to \(bench.samples) while the importer run creates runs")
        let r = try await bench.run(temp)
        let rowsPerSecond = Double(r.rows) / r.importTime.seconds
        say("  upload (streamed to disk, header read): \(grouped(Double(r.fileBytes))) bytes in "
            + "\(fixed(r.uploadTime.seconds, 2)) s")
        say("  importer run: \(grouped(Double(r.rows))) rows → \(grouped(Double(r.rows))) runs created in "
            + "\(fixed(r.importTime.seconds, 2)) s = \(grouped(rowsPerSecond)) rows/s")
        let drained = r.drainTime > .zero
        say(drained ? "  then executing the imported runs: \(fixed(r.drainTime.seconds, 1)) s = "
            + "\(grouped(Double(r.rows) / r.drainTime.seconds)) runs/s"
            : "  then executing the imported runs: skipped (RUNLOG_BENCH_IMPORT_ONLY)")
        say("  CPU (user + system, the whole process): import \(fixed(r.importCPU * 1_000_000 / Double(r.rows), 1)) µs per row "
            + "(\(fixed(r.importCPU / r.importTime.seconds, 2)) cores busy; 100,000 rows/s on 2 cores needs ≤ 20 µs)"
            + (drained ? ", drain \(fixed(r.drainCPU * 1_000_000 / Double(r.rows), 1)) µs per run "
                + "(\(fixed(r.drainCPU / r.drainTime.seconds, 2)) cores busy)" : ""))
        say("  peak RSS: \(grouped(Double(r.peakRSSBefore))) kB before the import, "
            + "\(grouped(Double(r.peakRSSAfterImport))) kB after it (with the pages of the memory-mapped log read so far)")
        say("  heap (RssAnon): \(grouped(Double(r.heapBefore))) kB before, \(grouped(Double(r.heapAfterImport))) kB "
            + "after the import, \(grouped(Double(r.heapAfterDrain))) kB after its runs executed "
            + "(\(fixed(Double(r.heapAfterImport - r.heapBefore) * 1024 / Double(r.rows), 0)) B per queued run, "
            + "\(fixed(Double(r.heapAfterDrain - r.heapBefore) * 1024 / Double(r.rows), 0)) B per finished run)")
        let idleP99 = percentile(r.idle, 99)
        let duringP99 = r.during.isEmpty ? 0 : percentile(r.during, 99)
        say("  real-time runs idle: p50 \(ms(percentile(r.idle, 50))), p99 \(ms(idleP99)); during the import "
            + "(\(r.during.count) samples): p50 \(ms(r.during.isEmpty ? 0 : percentile(r.during, 50))), p99 \(ms(duringP99))")
        summary.append(["[9] import, API workflow, \(grouped(Double(r.rows))) rows", grouped(rowsPerSecond) + " rows/s",
                        ">= 100,000 rows/s", status(rowsPerSecond >= 100_000)])
        summary.append(["[9] … peak RSS after / before the import",
                        "\(grouped(Double(r.peakRSSAfterImport))) / \(grouped(Double(r.peakRSSBefore))) kB", "flat", "-"])
        summary.append(["[9] … heap after the import / after its runs / before",
                        "\(grouped(Double(r.heapAfterImport))) / \(grouped(Double(r.heapAfterDrain))) / "
                        + "\(grouped(Double(r.heapBefore))) kB", "flat", "-"])
        if !r.during.isEmpty {
            let ratio = duringP99 / idleP99
            summary.append(["[9] … real-time p99 during the import / idle (\(r.during.count) samples)",
                            "\(fixed(ratio, 2))×", "<= 1.5×", status(ratio <= 1.5)])
        }
    }

    /// 10. A batch task.
    static func batchTask(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        let bench = BatchTaskBenchmark(profiles: s.taskProfiles)
        say("[10/\(total)] batch task: one import_and_start_batch_task of \(grouped(Double(bench.profiles))) new profiles "
            + "(matching email) into an action workflow on profiles (set_field + tag), then the same request again "
            + "(every profile found and updated); in process, no HTTP")
        let r = try await bench.run(temp)
        for (name, pass) in [("insert", r.insert), ("update", r.update)] {
            say("  \(name): accepted in \(fixed(pass.accept.seconds, 3)) s = "
                + "\(grouped(Double(bench.profiles) / pass.accept.seconds)) profiles/s; every run ended "
                + "\(fixed(pass.drain.seconds, 2)) s later = \(grouped(Double(bench.profiles) / pass.drain.seconds)) runs/s")
        }
        summary.append(["[10] batch task, \(grouped(Double(bench.profiles))) new profiles accepted",
                        grouped(Double(bench.profiles) / r.insert.accept.seconds) + " profiles/s", "-", "-"])
        summary.append(["[10] … the same profiles updated",
                        grouped(Double(bench.profiles) / r.update.accept.seconds) + " profiles/s", "-", "-"])
    }
}
