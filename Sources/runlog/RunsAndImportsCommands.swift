import RunlogJSON
import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import Importers
import RunlogHTTP
import WorkflowModel
import Workflows

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "Inspect workflow runs.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A workflow's runs, oldest first, filtered as the API filters them; a page at a time.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: ArgumentHelp("Only runs with this status: \(RunRecord.Status.allCases.map(\.rawValue).joined(separator: ", ")).",
                                   valueName: "status"))
        var status: String?
        @Option(help: ArgumentHelp("Only runs on this arm: treatment, control or none.", valueName: "arm")) var arm: String?
        @Option(help: "Only runs of this version.") var version: Int?
        @Option(help: ArgumentHelp("The page after this run id (the previous page's next_after).", valueName: "run"))
        var after: String?
        @Option(help: "Runs per page, 1–1000.") var limit = 100

        func validate() throws {
            if let status, RunRecord.Status(rawValue: status) == nil {
                throw ValidationError("--status \(status) is invalid: must be one of "
                                      + RunRecord.Status.allCases.map(\.rawValue).joined(separator: ", "))
            }
            if let arm, Arm(rawValue: arm) == nil {
                throw ValidationError("--arm \(arm) is invalid: must be one of treatment, control, none")
            }
            if let version, version < 1 { throw ValidationError("--version \(version) is invalid: must be 1 or more") }
            guard (1...1000).contains(limit) else { throw ValidationError("--limit \(limit) is invalid: must be from 1 to 1000") }
        }

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/workflows/\(segment(workflow))/runs" + query([
                    ("status", status), ("arm", arm), ("version", version.map(String.init)), ("after", after),
                    ("limit", String(limit)),
                ]))
            } else {
                json = try await offline()
            }
            output.emit(json) { answer in
                var lines = ["RUN                                 STATUS     VERSION  ARM        CREATED                   DECISION"]
                for r in answer["runs"]?.arrayValue ?? [] {
                    lines.append(pad(r["id"]?.text ?? "?", 36) + pad(r["status"]?.text ?? "?", 11)
                                 + pad(versionText(r["version"]), 9) + pad(r["arm"]?.text ?? "?", 11)
                                 + pad(r["created_at"]?.text ?? "-", 26) + (r["decision"]?.text ?? "-"))
                }
                if let next = answer["next_after"]?.stringValue { lines.append("more: --after \(next)") }
                return lines
            }
        }

        /// The API's answer, from the run tables of the data directory.
        func offline() async throws -> JSONValue {
            let opened = try await store.open(readOnly: true)
            defer { opened.close() }
            _ = try requireWorkflow(try loadState(opened), workflow)
            do {
                // The run tables the server keeps beside the log.
                try await opened.attach(RunsProjection())
            } catch {
                throw CLIError(error.message)
            }
            do {
                let page = try RunTables(store: opened).listRuns(
                    of: workflow, status: status.flatMap(RunRecord.Status.init(rawValue:)),
                    arm: arm.flatMap(Arm.init(rawValue:)), version: version, after: after, limit: limit + 1)
                let runs = try page.prefix(limit).map { try $0.withDetails(from: opened) }
                let next: JSONValue = page.count > limit ? .string(runs.last!.id) : .null
                return ["runs": .array(runs.map(Representation.run)), "next_after": next]
            } catch {
                throw CLIError("\(error)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A run: status, version, arm, route and step history.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The run id.") var run: String

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/runs/\(segment(run))")
            } else {
                let opened = try await store.open(readOnly: true)
                defer { opened.close() }
                let state = try loadState(opened)
                guard let summary = state.runs[run] else { throw CLIError("run \(run) does not exist") }
                // The replayed state keeps a summary of each run; parameters and outputs are in its stream.
                do {
                    json = Representation.run(try summary.withDetails(from: opened))
                } catch {
                    throw CLIError(error.description)
                }
            }
            output.emit(json, Self.lines)
        }

        static func lines(_ r: JSONValue) -> [String] {
            var lines = ["run        \(r["id"]?.text ?? "?")"]
            lines.append("workflow   \(r["workflow_id"]?.text ?? "?") version \(r["version"]?.text ?? "?"), arm \(r["arm"]?.text ?? "?")"
                         + (r["rollout_id"]?.stringValue.map { " (rollout \($0))" } ?? ""))
            let source = r["source"] ?? [:]
            lines.append("source     \(source["kind"]?.text ?? "?")" + (source["reference"]?.stringValue.map { " \($0)" } ?? "")
                         + (source["row"]?.intValue.map { " row \($0)" } ?? "") + ", \(r["queue"]?.text ?? "?") queue")
            if let object = r["object"], object != .null {
                lines.append("object     \(object["type"]?.text ?? "?") \(object["token"]?.text ?? "?")")
            }
            lines.append("created    \(r["created_at"]?.text ?? "-")")
            lines.append("status     \(r["status"]?.text ?? "?")" + (r["decision"]?.stringValue.map { ", \($0)" } ?? "")
                         + (r["failure"]?.stringValue.map { ": \($0)" } ?? ""))
            let route = r["route_decided"] == true ? (r["route"]?.stringValue ?? "(none matched)") : "(not yet decided)"
            lines.append("route      \(route)")
            for step in r["steps"]?.arrayValue ?? [] {
                var line = "step       \(step["step_uid"]?.text ?? "?") \(step["type"]?.text ?? "?"): \(step["status"]?.text ?? "?")"
                if let attempts = step["attempts"]?.intValue, attempts > 1 { line += " after \(attempts) attempts" }
                if let output = step["output"], output != .null { line += " " + output.jsonText }
                if let error = step["error"]?.stringValue { line += " (\(error))" }
                lines.append(line)
            }
            return lines
        }
    }
}

// MARK: Importers

struct ImportsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imports",
        abstract: "Inspect importers and importer runs; cancel and resume runs.",
        discussion: "To start an import from a CSV file, see `runlog import`.",
        subcommands: [List.self, Show.self, ErroredRows.self, Cancel.self, Resume.self]
    )

    /// The importers' read models of the data directory.
    static func offlineState(_ store: StoreOptions) async throws -> ImportersState {
        let opened = try await store.open(readOnly: true)
        defer { opened.close() }
        do {
            return try ImportersState.rebuild(from: opened)
        } catch {
            throw CLIError("cannot replay the log: \(error)")
        }
    }

    static func requireRun(_ state: ImportersState, _ id: String) throws -> ImportRunRecord {
        guard let run = state.runs[id] else { throw CLIError("importer run \(id) does not exist") }
        return run
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The importers; with an importer id, its runs, newest first.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "An importer id (imp_…): list its runs.") var importer: String?

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, importer.map { "/v1/importers/\(segment($0))/runs" } ?? "/v1/importers")
            } else {
                let state = try await ImportsCommand.offlineState(store)
                if let importer {
                    guard state.importers[importer] != nil else { throw CLIError("importer \(importer) does not exist") }
                    let runs = state.runs.values.filter { $0.importerId == importer }.sorted { $0.startedAt > $1.startedAt }
                    json = ["runs": .array(runs.map(RunlogAPI.importRun))]
                } else {
                    let list = state.importers.values.sorted { $0.savedAt < $1.savedAt }
                    json = ["importers": .array(list.map(RunlogAPI.importer))]
                }
            }
            output.emit(json) { answer in
                if let runs = answer["runs"]?.arrayValue {
                    var lines = ["RUN                                 STATUS     STARTED                   READ      CREATED   ERRORED"]
                    for r in runs {
                        let p = r["progress"] ?? [:]
                        let created = r["dry_run"] == true ? "\(p["runs_to_create"]?.text ?? "0") (dry run)" : p["runs_created"]?.text ?? "0"
                        lines.append(pad(r["id"]?.text ?? "?", 36) + pad(r["status"]?.text ?? "?", 11)
                                     + pad(r["started_at"]?.text ?? "-", 26) + pad(p["rows_read"]?.text ?? "0", 10)
                                     + pad(created, 10) + (p["rows_errored"]?.text ?? "0"))
                    }
                    return lines
                }
                var lines = ["IMPORTER                            WORKFLOW                            VERSION  NAME"]
                for i in answer["importers"]?.arrayValue ?? [] {
                    lines.append(pad(i["id"]?.text ?? "?", 36) + pad(i["workflow_id"]?.text ?? "?", 36)
                                 + pad(versionText(i["version"]), 9) + (i["name"]?.text ?? ""))
                }
                return lines
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An importer run: status, progress, errors by reason and the first errored rows.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The importer run id (irun_…).") var run: String

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/import-runs/\(segment(run))")
            } else {
                json = RunlogAPI.importRun(try ImportsCommand.requireRun(try await ImportsCommand.offlineState(store), run))
            }
            output.emit(json, Self.lines)
        }

        static func lines(_ r: JSONValue) -> [String] {
            let p = r["progress"] ?? [:]
            func n(_ key: String) -> String { p[key]?.text ?? "0" }
            var lines = [
                "importer run \(r["id"]?.text ?? "?"): \(r["status"]?.text ?? "?")"
                    + (r["reason"]?.stringValue.map { " (\($0))" } ?? "") + (r["dry_run"] == true ? ", dry run" : ""),
                "importer   \(r["importer_id"]?.text ?? "?") into \(r["workflow_id"]?.text ?? "?") \(versionText(r["version"]))",
                "started    \(whenText(r["started_at"], r["started_by"]))"
                    + (r["finished_at"]?.stringValue.map { ", finished \($0)" } ?? ""),
            ]
            if let rerun = r["rerun_of"]?.stringValue { lines.append("re-run of  \(rerun)") }
            let runs = r["dry_run"] == true ? "runs to create (dry run) \(n("runs_to_create"))" : "runs created \(n("runs_created"))"
            lines.append("rows read \(n("rows_read")), \(runs), skipped \(n("rows_skipped")), errored \(n("rows_errored"))"
                         + (p["rows_left"]?.intValue.map { ", \($0) left" } ?? ""))
            for reason in r["errors_by_reason"]?.arrayValue ?? [] {
                lines.append("  \(reason["rows"]?.text ?? "0") × \(reason["error"]?.text ?? "")")
            }
            return lines
        }
    }

    struct ErroredRows: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "errored-rows",
            abstract: "The rows of an importer run that did not become runs, as CSV: the row's cells, then row, field, value, error.",
            discussion: "Fix the cells and import the file again (the extra columns are not mapped). With --json, "
                + "one JSON object per row keyed by the CSV's header, in an array."
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The importer run id (irun_…).") var run: String

        func run() async throws {
            let csv: String
            if let client = try server.readingClient(store) {
                let answer = try await client.call(.GET, "/v1/import-runs/\(segment(run))/errored-rows")
                csv = String(decoding: answer.body, as: UTF8.self)
            } else {
                let state = try await ImportsCommand.offlineState(store)
                _ = try ImportsCommand.requireRun(state, run)
                csv = state.erroredRowsCSV(run) ?? ""
            }
            if output.json {
                print(Self.json(csv).jsonText)
            } else {
                FileHandle.standardOutput.write(Data(csv.utf8))
            }
        }

        /// The CSV's records as objects keyed by its header.
        static func json(_ csv: String) -> JSONValue {
            var parser = CSVParser()
            var records: [[String]] = []
            let bytes = Array(csv.utf8)
            bytes.withUnsafeBytes { buffer in
                parser.parse(buffer) { record in if case .fields(let fields, _) = record { records.append(fields) } }
            }
            parser.finish { record in if case .fields(let fields, _) = record { records.append(fields) } }
            guard let header = records.first else { return [] }
            return .array(records.dropFirst().map { fields in
                var object: [String: JSONValue] = [:]
                for (i, name) in header.enumerated() {
                    let cell = i < fields.count ? fields[i] : ""
                    object[name] = name == "row" ? (Int64(cell).map(JSONValue.integer) ?? .string(cell)) : .string(cell)
                }
                return .object(object)
            })
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a running importer run after its current batch; the runs created stay (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The importer run id (irun_…).") var run: String

        func run() async throws {
            let client = try server.client("imports cancel")
            let json = try await client.send(.POST, "/v1/import-runs/\(segment(run))/cancel")
            output.emit(json, Show.lines)
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Continue a stopped (quota) or failed importer run after its last recorded row (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The importer run id (irun_…).") var run: String

        func run() async throws {
            let client = try server.client("imports resume")
            let json = try await client.send(.POST, "/v1/import-runs/\(segment(run))/resume")
            output.emit(json, Show.lines)
        }
    }
}
