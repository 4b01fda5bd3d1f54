public import RunlogJSON
import WorkflowModel
import Workflows

/// An error of the batch task API, answered in that API's own shape:
/// `{"error": code, "error_text": text, "error_debug"?: debug}` with `code` as the HTTP status.
public struct TaskAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var text: String
    public var debug: String?

    public init(_ code: Int, _ text: String, debug: String? = nil) {
        self.code = code
        self.text = text
        self.debug = debug
    }

    /// A field that breaks a rule: the text names the field, the value and the rule.
    public static func invalid(_ field: String, _ value: JSONValue?, _ rule: String) -> TaskAPIError {
        TaskAPIError(400, "\(field)" + (value.map { " = \(Self.shortened($0.jsonText))" } ?? " is missing") + ": \(rule)")
    }

    /// The limit-exceeded answer, exactly as the API has always written it.
    public static let bodyTooLarge = TaskAPIError(400, "Invalid request", debug: "http: request body too large")

    public static func unauthorized(_ text: String) -> TaskAPIError { TaskAPIError(401, text) }

    /// The answer's JSON.
    public var json: JSONValue {
        var o: [String: JSONValue] = ["error": .integer(Int64(code)), "error_text": .string(text)]
        if let debug { o["error_debug"] = .string(debug) }
        return .object(o)
    }

    public var description: String { "\(code) \(text)" + (debug.map { " (\($0))" } ?? "") }

    static func shortened(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(117)) + "..."
    }
}
