import RunlogJSON
import ArgumentParser
import Foundation
import WorkflowModel
import Workflows

struct ConditionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "condition",
        abstract: "Work with the condition language (MongoDB query documents).",
        subcommands: [Test.self]
    )

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a condition against a JSON document: prints true or false.",
            discussion: "Exit status 0 with the result; 2 with a message when the condition or document is malformed."
        )

        @Argument(help: "The condition, a JSON query document, e.g. '{\"score\": {\"$gt\": 80}}'.") var condition: String
        @Argument(help: "The document to test, JSON.") var document: String
        @Option(name: .customLong("list"), help: ArgumentHelp(
            "A list for $inList, as ID=JSON-ARRAY (repeatable).", valueName: "id=[values]"))
        var lists: [String] = []

        func run() throws {
            let compiled: Condition
            do {
                compiled = try Condition(parsing: condition)
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            let value: JSONValue
            do {
                value = try JSONValue(parsing: document)
            } catch {
                printError("the document is not valid JSON: \(error.message)")
                throw ExitCode(2)
            }
            var members: [String: Set<JSONValue>] = [:]
            for spec in lists {
                guard let eq = spec.firstIndex(of: "="),
                      case .array(let values)? = try? JSONValue(parsing: String(spec[spec.index(after: eq)...]))
                else {
                    printError("--list \"\(spec)\" is invalid: expected ID=[JSON array of values]")
                    throw ExitCode(2)
                }
                members[String(spec[..<eq])] = Set(values)
            }
            print(compiled.matches(value, lists: StaticLists(members)) ? "true" : "false")
        }
    }
}

struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Stage, change, promote, end and inspect rollouts; compute a key's bucket.",
        discussion: "show reads the data directory, or the server with --server; stage, set, promote and end "
            + "go through --server URL --key KEY.",
        subcommands: [Stage.self, SetPercentage.self, Promote.self, End.self, Show.self, Bucket.self]
    )

    struct Bucket: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the bucket (0 to 0.9999) of a sticky key in a rollout.",
            discussion: "GrowthBook hash v2: fnv1a32(String(fnv1a32(seed + key))) % 10000 / 10000. "
                + "A key is in treatment when its bucket is below percentage / 100."
        )

        @Option(help: "The rollout's seed (its id).") var seed: String
        @Option(help: "The sticky key (trigger object token, chosen parameter, or run id).") var key: String
        @Option(help: "Also print whether the key is in treatment at this percentage (0–100).") var percentage: Double?
        @OptionGroup var output: JSONOutput

        func validate() throws {
            if let percentage, !(0...100).contains(percentage) {
                throw ValidationError("--percentage \(percentage) is invalid: must be between 0 and 100")
            }
        }

        func run() {
            let units = RolloutBucket.units(seed: seed, key: key)
            if output.json {
                var json: [String: JSONValue] = ["seed": .string(seed), "key": .string(key),
                                                 "bucket": .number(Double(units) / 10_000)]
                if let percentage {
                    json["percentage"] = .number(percentage)
                    json["arm"] = .string(RolloutBucket.inTreatment(seed: seed, key: key, percentage: percentage)
                                          ? "treatment" : "control")
                }
                return print(JSONValue.object(json).jsonText)
            }
            var line = formatBucket(units)
            if let percentage {
                line += RolloutBucket.inTreatment(seed: seed, key: key, percentage: percentage) ? " treatment" : " control"
            }
            print(line)
        }

        /// Four decimals without trailing zeros, as JavaScript prints the same number.
        func formatBucket(_ units: Int) -> String {
            if units == 0 { return "0" }
            var digits = String(units)
            digits = String(repeating: "0", count: 4 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            return "0." + digits
        }
    }
}
