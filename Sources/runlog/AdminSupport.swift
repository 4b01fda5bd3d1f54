import RunlogJSON
import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import WorkflowModel
import Workflows

/// The version `runlog --version` prints: the one place it is defined.
enum RunlogVersion {
    static let current = "0.9.0"
}

/// `--json`: the machine-readable answer on standard output, and nothing else.
struct JSONOutput: ParsableArguments {
    @Flag(help: "Print JSON only: the API's representation (offline, the same shape).")
    var json = false

    /// Prints `value` as one line of JSON, or the text `lines` makes of it.
    func emit(_ value: JSONValue, _ lines: (JSONValue) -> [String]) {
        if json {
            print(value.jsonText)
        } else {
            for line in lines(value) { print(line) }
        }
    }
}

/// A path segment of a URL (an id given on the command line), percent-encoded.
func segment(_ text: String) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove(charactersIn: "/?#")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// A query string from the pairs whose value is not nil.
func query(_ pairs: [(String, String?)]) -> String {
    var allowed = CharacterSet.urlQueryAllowed
    allowed.remove(charactersIn: "&=+#")
    let items = pairs.compactMap { name, value in
        value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0)" }
    }
    return items.isEmpty ? "" : "?" + items.joined(separator: "&")
}

/// The workflow `id` of the replayed state, or the error the API gives for it.
func requireWorkflow(_ state: WorkflowsState, _ id: String) throws -> WorkflowRecord {
    guard let workflow = state.workflows[id] else { throw CLIError("workflow \(id) does not exist") }
    return workflow
}

// MARK: Text of JSON values

extension JSONValue {
    /// The value, or nil for JSON null.
    var present: JSONValue? {
        if case .null = self { return Optional.none }
        return self
    }

    /// The value as text: strings bare, null as `-`, numbers as JSON writes them.
    var text: String {
        switch self {
        case .string(let s): return s
        case .null: return "-"
        default: return jsonText
        }
    }
}

/// `v3`, or `-` for null.
func versionText(_ value: JSONValue?) -> String {
    guard let value, let v = value.intValue else { return "-" }
    return "v\(v)"
}

/// `12.5%` from a JSON number.
func percentText(_ value: JSONValue?) -> String {
    formatPercent(value?.numericValue ?? 0)
}

/// `2026-11-22T23:40:01.120Z by alice`, or the time alone.
func whenText(_ at: JSONValue?, _ by: JSONValue?) -> String {
    (at?.stringValue ?? "-") + (by?.stringValue.map { " by \($0)" } ?? "")
}

/// A rollout in one line: `ro_…: v3 (treatment) at 10% against v2 (control)`.
func rolloutText(_ r: JSONValue) -> String {
    "\(r["id"]?.text ?? "?"): v\(r["treatment_version"]?.text ?? "?") (treatment) at \(percentText(r["percentage"])) "
        + "against v\(r["control_version"]?.text ?? "?") (control)"
}

/// A JSON value with its object keys sorted, indented by two spaces (for people).
func prettyText(_ value: JSONValue) -> String {
    guard let data = value.jsonText.data(using: .utf8),
          let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
          let pretty = try? JSONSerialization.data(withJSONObject: object,
                                                   options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
    else { return value.jsonText }
    return String(decoding: pretty, as: UTF8.self)
}
