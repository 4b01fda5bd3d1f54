// The settings of `runlog-bench`: its flags, their defaults and the smaller sizes of --quick.
import Foundation

extension Bench {
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
        /// Figures to run (1...13); 3 and 4 need 1's baseline, so it runs with them.
        var figures: Set<Int> = Set(1...13)
        var taskProfiles = 10_000
        var importRows = 1_000_000
        var runs = 5_000
        var runTasks = 64
        var objectEvents = 5_000
        var latencySamples = 300
        var backlog = 20_000
        var backlogDuration: Duration = .seconds(10)
        var previewRuns = 100_000

        func selected(_ figure: Int) -> Bool { figures.contains(figure) }

        static let usage = """
            usage: runlog-bench [--quick] [--events N] [--reps N] [--value-bytes N] [--appenders N]
                                [--runs N] [--backlog N] [--import-rows N] [--task-profiles N] [--preview-runs N]
                                [--only LIST]

              --quick          small sizes, for a smoke run (figures are not meaningful)
              --events N       events in the replay log (default 1,000,000; 50,000 with --quick)
              --reps N         repetitions of the baseline, append and run figures, and replay and
                               rebuild passes (default 3)
              --value-bytes N  value size of the raw LMDB baseline (default: the size of this
                               benchmark's stored envelope, so both write the same bytes)
              --appenders N    concurrent appenders of figure 3 (default 64)
              --runs N         workflow runs per pass of figure 5 (default 5,000; 500 with --quick)
              --backlog N      batch runs queued in figure 7 (default 20,000; 2,000 with --quick)
              --import-rows N  rows of the CSV of figure 9 (default 1,000,000; 50,000 with --quick)
              --task-profiles N  profiles in the batch task of figure 10 (default 10,000; 1,000 with --quick)
              --preview-runs N past runs the draft of figure 13 is previewed against (default 100,000;
                               5,000 with --quick; at most 100,000)
              --only LIST      run only these figures, e.g. 5,6,7 or 1-4 (figures 3 and 4 bring 1)

            RUNLOG_BENCH_TRACE=1 in the environment prints progress lines to standard error;
            RUNLOG_BENCH_IMPORT_BATCH=N sets the rows per append of figure 9 (default: the importer's, 200).
            RUNLOG_BENCH_IMPORT_DEPTH=N sets how many of its batches the importer keeps in flight (default: the importer's, 8).
            RUNLOG_BENCH_POSTGRES=URL is the PostgreSQL server of figures 11 and 12 (tools/bench starts one; without it the figure
            is skipped).
            RUNLOG_BENCH_IMPORT_ONLY=1 skips executing figure 9's imported runs afterwards (no drain figures; use it with
            --only 9: the engine is left running with its backlog and its temporary directory until the process exits).
            RUNLOG_BENCH_MALLOC_STATS=1 prints glibc's malloc arenas after the import of figure 9, then the heap
            after malloc_trim (memory held by the allocator against memory in use); the heap after the drain is
            then measured after that trim.
            """

        static func parse(_ arguments: [String]) throws -> Settings {
            var settings = Settings()
            var events: Int?
            var runs: Int?
            var backlog: Int?
            var importRows: Int?
            var taskProfiles: Int?
            var previewRuns: Int?
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
                case "--import-rows": importRows = try number(argument)
                case "--task-profiles": taskProfiles = try number(argument)
                case "--preview-runs": previewRuns = try number(argument)
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
                settings.importRows = 50_000
                settings.taskProfiles = 1_000
                settings.previewRuns = 5_000
            }
            if let previewRuns { settings.previewRuns = min(previewRuns, 100_000) }
            if let importRows { settings.importRows = importRows }
            if let taskProfiles { settings.taskProfiles = taskProfiles }
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
                guard let low = bounds.first ?? nil, let high = bounds.last ?? nil, 1 <= low, low <= high, high <= 13 else {
                    throw BenchError("--only takes figure numbers 1 to 13 like 5,6,7 or 1-4, got \"\(text)\"\n\(usage)")
                }
                figures.formUnion(low...high)
            }
            return figures
        }
    }
}
