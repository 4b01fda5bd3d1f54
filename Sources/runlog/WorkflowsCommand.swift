import RunlogJSON
import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import RunlogHTTP
import WorkflowModel
import Workflows

/// Admin commands over the read models, rebuilt from the log. Reading commands open the data
/// directory read-only (they work while a server runs); `revert` writes, so it needs the
/// directory to itself.
struct WorkflowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "Create, edit, publish, activate, inspect and revert workflows.",
        discussion: """
            Reading commands (list, show, draft without --file, versions, as-of) read the data \
            directory, or the server with --server. Writing commands (create, draft --file, publish, \
            activate, deactivate) go through --server URL --key KEY; revert also writes to a data \
            directory no server holds.
            """,
        subcommands: [List.self, Show.self, Create.self, DraftCommand.self, Publish.self, Activate.self, Deactivate.self,
                      Versions.self, Revert.self, AsOf.self, Preview.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every workflow: id, number, name, active version, rollout.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/workflows")
            } else {
                let state = try await loadState(store)
                json = ["workflows": .array(state.workflows.values.sorted { $0.number < $1.number }.map(Representation.workflow))]
            }
            output.emit(json) { answer in
                var lines = ["ID                                  NUMBER  ACTIVE  LATEST  ROLLOUT            NAME"]
                for wf in answer["workflows"]?.arrayValue ?? [] {
                    let rollout = wf["rollout"]?.present
                        .map { "v\($0["treatment_version"]?.text ?? "?") at \(percentText($0["percentage"]))" } ?? "-"
                    let latest = wf["latest_version"]?.intValue ?? 0
                    lines.append(pad(wf["id"]?.text ?? "?", 36) + pad(wf["number"]?.text ?? "?", 8)
                                 + pad(versionText(wf["active_version"]), 8) + pad(latest == 0 ? "-" : "v\(latest)", 8)
                                 + pad(rollout, 19) + (wf["name"]?.text ?? ""))
                }
                return lines
            }
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A workflow's version history, newest first.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let state = try await loadState(store)
            if output.json { return print(try versionsJSON(state, workflow).jsonText) }
            try printVersions(state, workflow)
        }
    }

    struct AsOf: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "as-of",
            abstract: "A workflow's version history as it was at a log position or time."
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "Replay the log up to this position.") var position: UInt64?
        @Option(help: "Replay the log up to this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).") var time: String?

        func validate() throws {
            if (position == nil) == (time == nil) { throw ValidationError("give exactly one of --position or --time") }
            if let time, parseTime(time) == nil {
                throw ValidationError("--time \"\(time)\" is invalid: use RFC 3339, e.g. 2026-11-22T10:00:00Z")
            }
        }

        func run() async throws {
            let opened = try await store.open(readOnly: true)
            defer { opened.close() }
            let state: WorkflowsState
            if let position {
                state = try WorkflowsState.rebuild(from: opened, upTo: position)
            } else {
                state = try WorkflowsState.rebuild(from: opened, asOf: parseTime(time!)!)
            }
            if state.workflows[workflow] == nil,
               let created = try opened.readStream(Streams.workflow(workflow), limit: 1).first {
                throw CLIError("workflow \(workflow) did not exist yet at position \(state.position): it was "
                               + "created at position \(created.position)")
            }
            if output.json {
                guard case .object(var json) = try versionsJSON(state, workflow) else { return }
                json["position"] = .integer(Int64(state.position))
                return print(JSONValue.object(json).jsonText)
            }
            print("as of position \(state.position)")
            try printVersions(state, workflow)
        }
    }

    struct Revert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new version with the content of an earlier one (history is kept)."
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "The version to copy.") var to: Int
        @Flag(help: "Make the new version active.") var activate = false
        @Option(help: "Recorded as the actor of the events (without --server; with it, the key's id is).")
        var actor = "runlog-cli"

        func run() async throws {
            let json: JSONValue
            if let client = try server.client() {
                json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/revert",
                                             body: ["to": .integer(Int64(to)), "activate": .bool(activate)])
            } else {
                json = try await revertHere()
            }
            output.emit(json) { v in
                ["workflow \(workflow): version \(v["version"]?.text ?? "?") created from version \(to)"
                 + (activate ? " and activated" : "")]
            }
        }

        /// Reverts on the data directory, which no server may hold; returns the new version as the API shows it.
        func revertHere() async throws -> JSONValue {
            let opened = try await store.openForWriting()
            defer { opened.close() }
            let engine = try await WorkflowEngine(store: opened)
            await engine.start()
            do {
                let version = try await engine.revert(workflowId: workflow, to: to, activate: activate, actor: actor)
                let record = await engine.read { $0.workflows[workflow] }
                await engine.shutdown()
                guard let record else { throw CLIError("workflow \(workflow) does not exist") }
                return Representation.version(record, version, definition: true)
            } catch let error as WorkflowError {
                await engine.shutdown()
                throw CLIError(error.description)
            }
        }
    }
}

func loadState(_ options: StoreOptions) async throws -> WorkflowsState {
    let store = try await options.open(readOnly: true)
    defer { store.close() }
    return try loadState(store)
}

func loadState(_ store: any EventStore) throws -> WorkflowsState {
    do {
        return try WorkflowsState.rebuild(from: store)
    } catch {
        throw CLIError("cannot replay the log: \(error)")
    }
}

/// The API's answer to GET /v1/workflows/{id}/versions, from the replayed state.
func versionsJSON(_ state: WorkflowsState, _ id: String) throws -> JSONValue {
    let wf = try requireWorkflow(state, id)
    return ["workflow_id": .string(wf.id), "active_version": Representation.int(wf.active),
            "rollout": wf.rollout.map(Representation.rollout) ?? .null,
            "versions": .array(wf.versions.map { Representation.version(wf, $0, definition: false) })]
}

func printVersions(_ state: WorkflowsState, _ id: String) throws {
    guard let wf = state.workflows[id] else { throw CLIError("workflow \(id) does not exist") }
    print("\(wf.name) (\(wf.id), number \(wf.number))")
    if let draft = wf.draft {
        let published = wf.publishedDraftVersion == draft.version ? "published" : "unpublished changes"
        print("draft      version \(draft.version), saved \(JSONText.timestamp(milliseconds: draft.savedAt))"
              + (draft.savedBy.map { " by \($0)" } ?? "") + " (\(published))")
    }
    if let r = wf.rollout {
        print("rollout    \(r.id): v\(r.treatmentVersion) (treatment) at \(formatPercent(r.percentage)) against "
              + "v\(r.controlVersion) (control); runs \(r.treatmentRuns) treatment, \(r.controlRuns) control")
    }
    for r in wf.pastRollouts.reversed() {
        let steps = r.history.map { formatPercent($0.percentage) }.joined(separator: " → ")
        print("rollout    \(r.id): v\(r.treatmentVersion) against v\(r.controlVersion), \(r.status.rawValue) "
              + (r.finishedAt.map { JSONText.timestamp(milliseconds: $0) } ?? "") + " (\(steps))")
    }
    for v in wf.versions.reversed() {
        var line = "v\(v.version)".padding(toLength: 6, withPad: " ", startingAt: 0) + wf.status(of: v.version).padding(toLength: 11, withPad: " ", startingAt: 0)
        line += JSONText.timestamp(milliseconds: v.publishedAt) + (v.publishedBy.map { " by \($0)" } ?? "")
        if let from = v.revertedFrom { line += " (revert of v\(from))" }
        line += "  \(v.description)"
        print(line)
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }

func formatPercent(_ p: Double) -> String { String(format: "%g%%", p) }

func parseTime(_ text: String) -> Int64? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = formatter.date(from: text) { return Int64(d.timeIntervalSince1970 * 1000) }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1000) }
}
