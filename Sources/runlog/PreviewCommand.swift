import RunlogJSON
import ArgumentParser
import EventLog
import Foundation
import RunlogHTTP
import WorkflowModel
import Workflows

extension WorkflowsCommand {
    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What the draft (or a version, or a definition file) would have decided for past runs.",
            discussion: """
                Evaluates the candidate on the workflow's latest runs, each with objects and lists \
                as they were when it chose its route, beside the run's own version, and prints the \
                runs whose outcome changes (before → after, with examples). Nothing is appended, \
                no http_request is made and no run is started. Reads the data directory, or the \
                server with --server.
                """
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "Preview this published version instead of the draft.") var version: Int?
        @Option(help: ArgumentHelp("Preview the definition in this JSON file (- reads standard input) instead of the draft.",
                                   valueName: "file"))
        var file: String?
        @Option(help: "The latest runs to preview (1 to 100000).") var runs = 1_000
        @Option(help: "Only runs created at or after this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).") var since: String?
        @Option(help: "Example runs shown per changed before → after cell (0 to 50).") var examples = 3
        @Flag(help: "Take --runs runs spread over all of the workflow's runs (the same sample each time), not the latest.")
        var sample = false

        func validate() throws {
            if version != nil && file != nil { throw ValidationError("give --version or --file, not both") }
            if let version, version < 1 { throw ValidationError("--version \(version) is invalid: versions start at 1") }
            guard (1...PreviewScope.maxRuns).contains(runs) else {
                throw ValidationError("--runs \(runs) is invalid: give 1 to \(PreviewScope.maxRuns)")
            }
            guard (0...PreviewScope.maxExamples).contains(examples) else {
                throw ValidationError("--examples \(examples) is invalid: give 0 to \(PreviewScope.maxExamples)")
            }
            if let since, parseTime(since) == nil {
                throw ValidationError("--since \"\(since)\" is invalid: use RFC 3339, e.g. 2026-11-22T10:00:00Z")
            }
        }

        func run() async throws {
            let definition = try file.map(DraftCommand.readDefinition)
            let json: JSONValue
            if let client = try server.readingClient(store) {
                var body: [String: JSONValue] = ["runs": .integer(Int64(runs)), "examples": .integer(Int64(examples)),
                                                 "sample": .bool(sample)]
                if let since { body["since"] = .string(since) }
                if let definition { body["definition"] = definition }
                let path = version.map { "/v1/workflows/\(segment(workflow))/versions/\($0)/preview" }
                    ?? "/v1/workflows/\(segment(workflow))/draft/preview"
                json = try await client.send(.POST, path, body: .object(body))
            } else {
                json = try await previewHere(definition)
            }
            output.emit(json, Self.lines)
        }

        /// Previews on the data directory (read-only: a server may hold it).
        func previewHere(_ given: JSONValue?) async throws -> JSONValue {
            let opened = try await store.open(readOnly: true)
            defer { opened.close() }
            // The workflow's versions and draft only: no runs in memory (the preview's own pass reads them).
            let state: WorkflowsState
            do {
                state = try WorkflowsState.rebuild(from: opened, keepsRuns: false)
            } catch {
                throw CLIError("cannot replay the log: \(error)")
            }
            let record = try requireWorkflow(state, workflow)
            do {
                // The run tables the server keeps beside the log: the runs to preview are chosen there.
                try await opened.attach(RunsProjection())
            } catch {
                throw CLIError(error.message)
            }
            let candidate: JSONValue
            let label: String
            if let given {
                (candidate, label) = (given, "definition")
            } else if let version {
                guard version <= record.versions.count else { throw CLIError("workflow \(workflow) has no version \(version)") }
                (candidate, label) = (record.versions[version - 1].definition, "version \(version)")
            } else {
                guard let draft = record.draft else {
                    throw CLIError("workflow \(workflow) has no draft: save one, or give --file or --version")
                }
                (candidate, label) = (draft.definition, "draft")
            }
            do {
                let definition = try WorkflowDefinition(json: candidate)
                let scope = PreviewScope(runs: runs, since: since.flatMap(parseTime), examples: examples, sample: sample)
                return Representation.preview(try HistoryPreview(store: opened).run(
                    workflowId: workflow, candidate: definition, label: label, scope: scope))
            } catch {
                throw CLIError(error.description)
            }
        }

        static func lines(_ r: JSONValue) -> [String] {
            func count(_ key: String) -> Int { r[key]?.intValue ?? 0 }
            func runs(_ n: Int) -> String { n == 1 ? "1 run" : "\(n) runs" }
            var lines = ["\(r["candidate"]?.text ?? "?") of workflow \(r["workflow_id"]?.text ?? "?") on \(runs(count("runs"))) "
                         + "(log up to position \(r["position"]?.text ?? "?"))",
                         "evaluated \(count("evaluated")): \(count("unchanged")) unchanged, \(count("changed")) changed"]
            let parts = (r["changes"]?.objectValue ?? [:]).filter { ($0.value.intValue ?? 0) > 0 }.sorted { $0.key < $1.key }
            if !parts.isEmpty { lines.append("changed: " + parts.map { "\($0.key) \($0.value.text)" }.joined(separator: ", ")) }
            for cell in r["matrix"]?.arrayValue ?? [] {
                lines.append("  \(cell["before"]?.text ?? "?") → \(cell["after"]?.text ?? "?"): \(runs(cell["runs"]?.intValue ?? 0))")
                for example in cell["examples"]?.arrayValue ?? [] {
                    let before = example["before"], after = example["after"]
                    /// A route with the condition that chose it.
                    func route(_ plan: JSONValue?) -> String {
                        guard let name = plan?["route"]?.present?.text else { return "no route" }
                        return plan?["condition"]?.present.map { "\(name) \($0.jsonText)" } ?? name
                    }
                    lines.append("    run \(example["run_id"]?.text ?? "?") (position \(example["position"]?.text ?? "?")): "
                                 + "route \(route(before)) → \(route(after))")
                    for call in after?["calls"]?.arrayValue ?? [] {
                        lines.append("      would call \(call["would_call"]?.text ?? "?")")
                    }
                }
            }
            for item in r["not_evaluated"]?.arrayValue ?? [] {
                lines.append("not evaluated: \(runs(item["runs"]?.intValue ?? 0)): \(item["reason"]?.text ?? "?")")
            }
            if count("with_unknown_steps") > 0 {
                lines.append("\(count("with_unknown_steps")) runs meet an http_request step whose answer is unknown; "
                             + "later steps assume it succeeded")
            }
            if count("drift") > 0 {
                lines.append("\(count("drift")) runs recorded another route or decision than their own version gives here")
            }
            return lines
        }
    }
}
