import ArgumentParser
import EventStore
import Foundation
import Workflows

/// Admin commands over the read models, rebuilt from the log. Reading commands open the data
/// directory read-only (they work while a server runs); `revert` writes, so it needs the
/// directory to itself.
struct WorkflowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "Inspect and revert workflow versions.",
        subcommands: [List.self, Versions.self, Revert.self, AsOf.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every workflow: id, number, name, active version, rollout.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let state = try loadState(store)
            print("ID                                  NUMBER  ACTIVE  LATEST  ROLLOUT            NAME")
            for wf in state.workflows.values.sorted(by: { $0.number < $1.number }) {
                let rollout = wf.rollout.map { "v\($0.treatmentVersion) at \(formatPercent($0.percentage))" } ?? "-"
                print(pad(wf.id, 36) + pad(String(wf.number), 8) + pad(wf.active.map { "v\($0)" } ?? "-", 8)
                      + pad(wf.latestVersion == 0 ? "-" : "v\(wf.latestVersion)", 8) + pad(rollout, 19) + wf.name)
            }
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A workflow's version history, newest first.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let state = try loadState(store)
            try printVersions(state, workflow)
        }
    }

    struct AsOf: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "as-of",
            abstract: "A workflow's version history as it was at a log position or time."
        )
        @OptionGroup var store: StoreOptions
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
            let opened = try store.open(readOnly: true)
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
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "The version to copy.") var to: Int
        @Flag(help: "Make the new version active.") var activate = false
        @Option(help: "Recorded as the actor of the events (without --server; with it, the key's id is).")
        var actor = "runlog-cli"

        func run() async throws {
            if let client = try server.client() {
                let answer = try await client.send(.POST, "/v1/workflows/\(workflow)/revert",
                                                   body: ["to": .integer(Int64(to)), "activate": .bool(activate)])
                print("workflow \(workflow): version \(answer["version"]?.intValue ?? 0) created from "
                      + "version \(to)" + (activate ? " and activated" : ""))
                return
            }
            let opened = try store.openForWriting()
            defer { opened.close() }
            let engine = try await WorkflowEngine(store: opened)
            await engine.start()
            do {
                let version = try await engine.revert(workflowId: workflow, to: to, activate: activate, actor: actor)
                print("workflow \(workflow): version \(version.version) created from version \(to)"
                      + (activate ? " and activated" : ""))
            } catch {
                await engine.shutdown()
                throw CLIError(error.description)
            }
            await engine.shutdown()
        }
    }
}

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "Inspect workflow runs.",
        subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A run: status, version, arm, route and step history.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The run id.") var run: String

        func run() async throws {
            let opened = try store.open(readOnly: true)
            defer { opened.close() }
            let state = try loadState(opened)
            guard let summary = state.runs[run] else { throw CLIError("run \(run) does not exist") }
            // The replayed state keeps a summary of each run; parameters and outputs are in its stream.
            let r = try summary.withDetails(from: opened)
            let c = r.created
            print("run        \(r.id)")
            print("workflow   \(c.workflowId) version \(c.version), arm \(c.arm.rawValue)"
                  + (c.rolloutId.map { " (rollout \($0))" } ?? ""))
            print("source     \(c.source.kind)" + (c.source.reference.map { " \($0)" } ?? "")
                  + (c.source.row.map { " row \($0)" } ?? "") + ", \(c.queue.rawValue) queue")
            if let type = c.objectType, let token = c.objectToken { print("object     \(type) \(token)") }
            print("created    \(JSONText.timestamp(milliseconds: r.createdAt))")
            print("status     \(r.status.rawValue)" + (r.decision.map { ", \($0)" } ?? "")
                  + (r.failure.map { ": \($0)" } ?? ""))
            print("route      \(r.routeDecided ? (r.route ?? "(none matched)") : "(not yet decided)")")
            for step in r.steps {
                var line = "step       \(step.uid) \(step.type): \(step.status.rawValue)"
                if step.attempts > 1 { line += " after \(step.attempts) attempts" }
                if let output = step.output { line += " " + output.jsonText }
                if let error = step.error { line += " (\(error))" }
                print(line)
            }
        }
    }
}

func loadState(_ options: StoreOptions) throws -> WorkflowsState {
    let store = try options.open(readOnly: true)
    defer { store.close() }
    return try loadState(store)
}

func loadState(_ store: EventStore) throws -> WorkflowsState {
    do {
        return try WorkflowsState.rebuild(from: store)
    } catch {
        throw CLIError("cannot replay the log: \(error)")
    }
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
