import EventLog
import LMDBStore
import Foundation
import Importers
import WorkflowModel
import Workflows

/// Figure 9: a CSV of `rows` rows into the API-triggered workflow of [5] through an importer,
/// and real-time run latency idle and while the import runs.
struct ImportBenchmark {
    var rows: Int
    var samples: Int
    /// Rows per append; the importer's default unless $RUNLOG_BENCH_IMPORT_BATCH says otherwise.
    var batchSize = Int(ProcessInfo.processInfo.environment["RUNLOG_BENCH_IMPORT_BATCH"] ?? "") ?? 200
    /// Batches of the importer run in flight at once; the importer's default unless
    /// $RUNLOG_BENCH_IMPORT_DEPTH says otherwise.
    var depth = Int(ProcessInfo.processInfo.environment["RUNLOG_BENCH_IMPORT_DEPTH"] ?? "")

    struct Result {
        var rows: Int
        var fileBytes: Int
        var uploadTime: Duration
        /// Importer run start → completed: every row read, mapped, validated, and its run
        /// created durably (with the checkpoint) on the batch queue.
        var importTime: Duration
        /// Import completed → every created run executed.
        var drainTime: Duration
        var peakRSSBefore: Int
        var peakRSSAfterImport: Int
        /// Anonymous (heap) resident memory, kB: before the import, after it, after the drain.
        /// Resident pages of the memory-mapped log count in the peak RSS but not here: the
        /// kernel's page cache, shared and reclaimable.
        var heapBefore: Int
        var heapAfterImport: Int
        var heapAfterDrain: Int
        /// CPU time (user + system, every thread) of this process during the import and the drain:
        /// steadier than wall time on a shared machine, and what bounds rows/s on 2 cores.
        var importCPU: Double
        var drainCPU: Double
        var idle: [Double]
        var during: [Double]
    }

    /// CPU seconds (user + system) this process has used so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Peak resident set size of this process (kB).
    static func peakRSS() -> Int { status("VmHWM:") }

    /// Anonymous resident memory of this process (kB).
    static func heap() -> Int { status("RssAnon:") }

    static func status(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    func run(_ temp: TempDirs) async throws -> Result {
        let h = try await EngineHarness(temp, "import")
        let engine = h.engine
        let store = h.store
        let workflowId = try await Flows.activate(engine, name: "import", Flows.api)
        let realtimeId = try await Flows.activate(engine, name: "realtime", Flows.api)
        let service = try depth.map { try ImporterService(engine: engine, uploads: h.dir + "/uploads", batchSize: batchSize,
                                                          recordingDepth: $0) }
            ?? ImporterService(engine: engine, uploads: h.dir + "/uploads", batchSize: batchSize)
        await service.start()

        // The file: one IP address per row.
        let file = h.dir + "/rows.csv"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        var text = "ip\n"
        for i in 0..<rows {
            text += "10.\((i >> 16) & 255).\((i >> 8) & 255).\(i & 255)\n"
            if text.utf8.count > 1 << 20 {
                try handle.write(contentsOf: Array(text.utf8))
                text = ""
            }
        }
        try handle.write(contentsOf: Array(text.utf8))
        try handle.close()
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0

        let watcher = CompletionWatcher(store: store, from: try store.head().position + 1, remember: 4_096)
        defer { watcher.stop() }
        var n = 0
        func sample() async throws -> Double {
            let t0 = ContinuousClock.now
            let run = try await engine.startRun(workflowId: realtimeId, parameters: Flows.parameters(n), queue: .realtime)
            n += 1
            guard let seen = await watcher.wait(for: run.id, timeout: .seconds(60)) else {
                throw BenchError("[9] real-time run \(run.id) did not finish within 60 s")
            }
            return (seen.at - t0).milliseconds
        }
        for _ in 0..<20 { _ = try await sample() }
        var idle: [Double] = []
        for _ in 0..<samples { idle.append(try await sample()) }

        let peakBefore = Self.peakRSS()
        let heapBefore = Self.heap()
        let uploadStart = ContinuousClock.now
        let source = try await service.createCSVDataSource(name: "rows", chunks: FileChunks(path: file), actor: "bench")
        let uploadTime = ContinuousClock.now - uploadStart
        let importer = try await service.saveImporter(
            id: nil, name: "bench", dataSourceId: source.id, workflowId: workflowId,
            mapping: ImporterMapping(columns: ["ip": "ip"]), query: ImporterQuery(), actor: "bench")
        let start = ContinuousClock.now
        let cpuStart = Self.cpuSeconds()
        let started = try await service.startRun(importerId: importer.id, actor: "bench")
        // Real-time samples while the import creates runs (and its runs wait on the batch queue).
        var during: [Double] = []
        while during.count < samples, await service.snapshot.runs[started.id]?.status == .running {
            during.append(try await sample())
        }
        await service.waitUntilIdle()
        let importTime = ContinuousClock.now - start
        let importCPU = Self.cpuSeconds() - cpuStart
        let peakAfter = Self.peakRSS()
        let heapAfterImport = Self.heap()
        if ProcessInfo.processInfo.environment["RUNLOG_BENCH_MALLOC_STATS"] != nil {
            typealias Stats = @convention(c) () -> Void
            typealias Trim = @convention(c) (Int) -> Int32
            let handle = dlopen(nil, RTLD_NOW)
            unsafeBitCast(dlsym(handle, "malloc_stats"), to: Stats.self)()
            _ = unsafeBitCast(dlsym(handle, "malloc_trim"), to: Trim.self)(0)
            FileHandle.standardError.write(Data("heap after import \(heapAfterImport) kB, after malloc_trim \(Self.heap()) kB\n".utf8))
        }
        guard let record = await service.snapshot.runs[started.id], record.status == .completed,
              record.runsCreated == rows else {
            throw BenchError("[9] the import did not complete: \(String(describing: await service.snapshot.runs[started.id]))")
        }
        let drainStart = ContinuousClock.now
        let drainCPUStart = Self.cpuSeconds()
        if ProcessInfo.processInfo.environment["RUNLOG_BENCH_IMPORT_ONLY"] != nil {
            // The engine is left with its backlog (stopping it waits for the drain); the
            // process exits after the figure.
            watcher.stop()
            await service.shutdown()
            return Result(rows: rows, fileBytes: fileBytes, uploadTime: uploadTime, importTime: importTime,
                          drainTime: .zero, peakRSSBefore: peakBefore, peakRSSAfterImport: peakAfter,
                          heapBefore: heapBefore, heapAfterImport: heapAfterImport, heapAfterDrain: heapAfterImport,
                          importCPU: importCPU, drainCPU: 0, idle: idle.sorted(), during: during.sorted())
        }
        guard await engine.waitUntilIdle(timeout: .seconds(3_600)) else {
            throw BenchError("[9] the imported runs did not finish within an hour")
        }
        let drainTime = ContinuousClock.now - drainStart
        let drainCPU = Self.cpuSeconds() - drainCPUStart
        let heapAfterDrain = Self.heap()
        watcher.stop()
        await service.shutdown()
        try await h.close()
        return Result(rows: rows, fileBytes: fileBytes, uploadTime: uploadTime, importTime: importTime,
                      drainTime: drainTime, peakRSSBefore: peakBefore, peakRSSAfterImport: peakAfter,
                      heapBefore: heapBefore, heapAfterImport: heapAfterImport, heapAfterDrain: heapAfterDrain,
                      importCPU: importCPU, drainCPU: drainCPU, idle: idle.sorted(), during: during.sorted())
    }
}
