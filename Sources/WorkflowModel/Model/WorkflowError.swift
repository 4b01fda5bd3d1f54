package import RunlogJSON

/// One broken rule in an input: which field, the value it had, and the rule.
public struct FieldIssue: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A dotted path to the field (`address.zip`, `items[2].sku`).
    public var field: String
    /// The offending value as JSON text, or nil when the field is missing.
    public var value: String?
    public var rule: String

    public init(field: String, value: String?, rule: String) {
        self.field = field
        self.value = value
        self.rule = rule
    }

    public var description: String {
        "\(field)" + (value.map { " = \($0)" } ?? "") + ": \(rule)"
    }
}

/// An error of the workflow domain: a code to map to a status, a message for people, and the
/// field issues when input broke rules.
public struct WorkflowError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// Input broke a rule; `issues` says which.
        public static let invalid = Code("invalid")
        /// The thing named does not exist.
        public static let notFound = Code("not_found")
        /// The state does not allow it (e.g. activating a draft-only workflow).
        public static let conflict = Code("conflict")
        /// An expected version (draft `If-Match`) did not match.
        public static let preconditionFailed = Code("precondition_failed")
        /// The daily run quota is used up; `resetsAt` says when it resets.
        public static let quotaExceeded = Code("quota_exceeded")
        /// The input is larger than a limit of the store (an event's payload, 1 MiB); retrying cannot help.
        public static let tooLarge = Code("too_large")
        /// Storage failed.
        public static let storage = Code("storage")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var issues: [FieldIssue]
    /// For `quotaExceeded`: when the quota resets (UTC ms).
    public var resetsAt: Int64?
    /// For `storage`: what the store said, so that callers can tell a full disk from a server
    /// that is stopping.
    public var cause: StorageCause?

    public init(_ code: Code, _ message: String, issues: [FieldIssue] = [], resetsAt: Int64? = nil) {
        self.code = code
        self.message = message
        self.issues = issues
        self.resetsAt = resetsAt
    }

    /// The process is stopping: `storage` with the cause `closed` (worth retrying elsewhere or later).
    public static func shuttingDown(_ message: String) -> WorkflowError {
        var error = WorkflowError(.storage, message)
        error.cause = .shuttingDown
        return error
    }

    public var description: String {
        // The issues travel in full in `issues`; the message names the first few, unless it
        // already says what its one issue says.
        guard !issues.isEmpty else { return message }
        if issues.count == 1, message.contains(issues[0].rule) { return message }
        let shown = issues.prefix(3).map(\.description).joined(separator: "; ")
        return message + ": " + shown + (issues.count > 3 ? "; and \(issues.count - 3) more" : "")
    }

    package static func invalid(_ issues: [FieldIssue], _ what: String) -> WorkflowError {
        WorkflowError(.invalid, what, issues: issues)
    }

    package static func invalid(field: String, value: JSONValue?, rule: String) -> WorkflowError {
        let issue = FieldIssue(field: field, value: value?.jsonText, rule: rule)
        return WorkflowError(.invalid, "\(field) is invalid", issues: [issue])
    }
}

/// Why the store failed, as far as the domain cares: the storage modules map their own codes
/// onto these.
public enum StorageCause: Sendable, Hashable {
    /// No room left (the disk or the store's map is full).
    case full
    /// The store is open read-only.
    case readOnly
    /// The process is stopping, or the store was closed.
    case shuttingDown
    /// The stored data is damaged.
    case corrupted
    /// Anything else: worth retrying later.
    case unavailable
}
