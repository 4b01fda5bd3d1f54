import RunlogJSON
import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import RunlogHTTP
import WorkflowModel
import Workflows

/// The workflow commands that go through the HTTP API (`--server`) or, for reading ones, read
/// the data directory. Each prints text for people or, with `--json`, the API's representation.
extension WorkflowsCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A workflow: name, number, active, latest and draft version, rollout in progress.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/workflows/\(segment(workflow))")
            } else {
                json = Representation.workflow(try requireWorkflow(try await loadState(store), workflow))
            }
            output.emit(json, Self.lines)
        }

        static func lines(_ w: JSONValue) -> [String] {
            var lines = [
                "workflow   \(w["id"]?.text ?? "?") (number \(w["number"]?.text ?? "?"))",
                "name       \(w["name"]?.text ?? "")",
                "created    \(whenText(w["created_at"], w["created_by"]))",
                "active     \(versionText(w["active_version"]))",
                "latest     \(versionText(w["latest_version"]).replacingOccurrences(of: "v0", with: "-"))",
                "draft      " + (w["draft_version"]?.intValue.map { "version \($0)" } ?? "-"),
            ]
            if let r = w["rollout"], r != .null {
                lines.append("rollout    " + rolloutText(r))
            } else {
                lines.append("rollout    -")
            }
            return lines
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a workflow (through --server); it has no draft or version yet.")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow's name.") var name: String

        func run() async throws {
            let client = try server.client("workflows create")
            let json = try await client.send(.POST, "/v1/workflows", body: ["name": .string(name)])
            output.emit(json) { w in
                ["workflow \(w["id"]?.text ?? "?") created: \(w["name"]?.text ?? ""), number \(w["number"]?.text ?? "?")"]
            }
        }
    }

    struct DraftCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "draft",
            abstract: "Save a workflow's draft from a JSON file (through --server), or print the draft.",
            discussion: """
                With --file, saves the definition as the new draft, with If-Match set to the draft \
                version it replaces (read from the server first, or --if-match N): a draft saved \
                meanwhile by someone else is not overwritten. Without --file, prints the current \
                draft's definition.
                """
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: ArgumentHelp("The definition to save, a JSON file; - reads standard input.", valueName: "file"))
        var file: String?
        @Option(name: .customLong("if-match"),
                help: ArgumentHelp("Save only if the current draft is this version (0: no draft yet).", valueName: "version"))
        var ifMatch: Int?

        func validate() throws {
            if let ifMatch, ifMatch < 0 { throw ValidationError("--if-match \(ifMatch) is invalid: must be 0 or more") }
            if ifMatch != nil, file == nil { throw ValidationError("--if-match goes with --file") }
        }

        func run() async throws {
            guard let file else { return try await show() }
            guard let client = try server.client() else {
                throw CLIError("runlog workflows draft --file writes through the server, not to a data directory: "
                               + "pass --server URL --key KEY (or set $RUNLOG_SERVER and $RUNLOG_KEY)")
            }
            let definition = try Self.readDefinition(file)
            let path = "/v1/workflows/\(segment(workflow))"
            let expected: Int
            if let ifMatch {
                expected = ifMatch
            } else {
                expected = try await client.send(.GET, path)["draft_version"]?.intValue ?? 0
            }
            let json = try await client.send(.PUT, path + "/draft", body: definition,
                                             headers: [("If-Match", "\"\(expected)\"")])
            output.emit(json) { d in
                ["workflow \(workflow): draft version \(d["version"]?.text ?? "?") saved"]
            }
        }

        func show() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/workflows/\(segment(workflow))/draft")
            } else {
                let record = try requireWorkflow(try await loadState(store), workflow)
                guard let draft = record.draft else { throw CLIError("workflow \(workflow) has no draft") }
                json = Representation.draft(record.id, draft)
            }
            output.emit(json) { d in
                ["draft version \(d["version"]?.text ?? "?"), saved \(whenText(d["saved_at"], d["saved_by"]))",
                 prettyText(d["definition"] ?? .null)]
            }
        }

        /// The file's JSON, checked here so that a typo is reported before anything is sent.
        static func readDefinition(_ file: String) throws -> JSONValue {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let read = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
                data = read
            }
            let name = file == "-" ? "standard input" : file
            do {
                let value = try JSONValue(parsing: data)
                guard case .object = value else { throw CLIError("\(name) is not a workflow definition: it must be a JSON object") }
                return value
            } catch let error as JSONParseError {
                throw CLIError("\(name) is not valid JSON: \(error.message)")
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish the draft as a new version (through --server).",
            discussion: "With --activate the new version becomes active; with --rollout-percentage it is staged "
                + "as the treatment of a rollout against the active version."
        )
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "What changed in this version.") var description: String?
        @Flag(help: "Make the new version active.") var activate = false
        @Option(name: .customLong("rollout-percentage"),
                help: ArgumentHelp("Stage a rollout of the new version to this percentage (0–100).", valueName: "percent"))
        var rolloutPercentage: Double?
        @Option(name: .customLong("sticky-field"), help: ArgumentHelp("The rollout's sticky field.", valueName: "field"))
        var stickyField: String?

        func run() async throws {
            let client = try server.client("workflows publish")
            var body: [String: JSONValue] = ["activate": .bool(activate)]
            if let description { body["description"] = .string(description) }
            if let rolloutPercentage { body["rollout_percentage"] = .number(rolloutPercentage) }
            if let stickyField { body["sticky_field"] = .string(stickyField) }
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/versions", body: .object(body))
            output.emit(json) { v in
                ["workflow \(workflow): version \(v["version"]?.text ?? "?") published (\(v["status"]?.text ?? "?"))"]
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a published version the active one (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Argument(help: "The version to activate.") var version: Int

        func validate() throws {
            guard version >= 1 else { throw ValidationError("the version \(version) is invalid: must be 1 or more") }
        }

        func run() async throws {
            let client = try server.client("workflows activate")
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/versions/\(version)/activate")
            output.emit(json) { w in ["workflow \(workflow): \(versionText(w["active_version"])) is active"] }
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Leave a workflow with no active version: it starts no runs (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let client = try server.client("workflows deactivate")
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/deactivate")
            output.emit(json) { _ in ["workflow \(workflow): deactivated; no version is active"] }
        }
    }
}

// MARK: Rollouts

extension RolloutCommand {
    struct Stage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a rollout of a published version against the active one (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "The version to roll out (the treatment).") var version: Int
        @Option(help: "The share of runs that get it, 0–100.") var percentage: Double
        @Option(name: .customLong("sticky-field"),
                help: ArgumentHelp("The parameter that keeps a key on one arm (default: the object token, else the run id).",
                                   valueName: "field"))
        var stickyField: String?

        func run() async throws {
            let client = try server.client("rollout stage")
            var body: [String: JSONValue] = ["version": .integer(Int64(version)), "percentage": .number(percentage)]
            if let stickyField { body["sticky_field"] = .string(stickyField) }
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/rollout", body: .object(body))
            output.emit(json) { w in rolloutChangeLines(workflow, w, verb: "staged") }
        }
    }

    struct SetPercentage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Change the percentage of the rollout in progress (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String
        @Option(help: "The new share of runs in treatment, 0–100 (100 promotes, 0 ends it).") var percentage: Double

        func run() async throws {
            let client = try server.client("rollout set")
            let json = try await client.send(.PATCH, "/v1/workflows/\(segment(workflow))/rollout",
                                             body: ["percentage": .number(percentage)])
            output.emit(json) { w in rolloutChangeLines(workflow, w, verb: "set") }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Finish the rollout with the treatment version active (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let client = try server.client("rollout promote")
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/rollout/promote")
            output.emit(json) { w in rolloutChangeLines(workflow, w, verb: "promoted") }
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Finish the rollout with the control version active (through --server).")
        @OptionGroup var server: WritingOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let client = try server.client("rollout end")
            let json = try await client.send(.POST, "/v1/workflows/\(segment(workflow))/rollout/end")
            output.emit(json) { w in rolloutChangeLines(workflow, w, verb: "ended") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A workflow's rollouts, the one in progress and past ones: arms, runs, percentage history.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var output: JSONOutput
        @Argument(help: "The workflow id.") var workflow: String

        func run() async throws {
            let json: JSONValue
            if let client = try server.readingClient(store) {
                json = try await client.send(.GET, "/v1/workflows/\(segment(workflow))/rollouts")
            } else {
                let record = try requireWorkflow(try await loadState(store), workflow)
                let all = record.pastRollouts + (record.rollout.map { [$0] } ?? [])
                json = ["rollouts": .array(all.map(Representation.rollout))]
            }
            output.emit(json) { answer in
                let rollouts = answer["rollouts"]?.arrayValue ?? []
                if rollouts.isEmpty { return ["workflow \(workflow) has had no rollout"] }
                var lines: [String] = []
                for r in rollouts.reversed() {
                    var line = "\(r["id"]?.text ?? "?")  \(r["status"]?.text ?? "?"): v\(r["treatment_version"]?.text ?? "?") "
                        + "against v\(r["control_version"]?.text ?? "?") at \(percentText(r["percentage"])), "
                        + "staged \(whenText(r["staged_at"], r["staged_by"]))"
                    if let finished = r["finished_at"]?.stringValue { line += ", finished \(finished)" }
                    line += "; runs \(r["arms"]?["treatment"]?.text ?? "0") treatment, "
                        + "\(r["arms"]?["control"]?.text ?? "0") control"
                    if let sticky = r["sticky_field"]?.stringValue { line += "; sticky field \(sticky)" }
                    lines.append(line)
                    let history = (r["history"]?.arrayValue ?? []).map { change in
                        "\(percentText(change["percentage"])) (\(whenText(change["at"], change["by"])))"
                    }
                    if !history.isEmpty { lines.append("    " + history.joined(separator: " → ")) }
                }
                return lines
            }
        }
    }
}

/// After a rollout command: the rollout in progress, or which version is active once it is over.
func rolloutChangeLines(_ workflow: String, _ w: JSONValue, verb: String) -> [String] {
    if let r = w["rollout"], r != .null {
        return ["workflow \(workflow): rollout \(verb): " + rolloutText(r)]
    }
    return ["workflow \(workflow): rollout \(verb); \(versionText(w["active_version"])) is active"]
}
