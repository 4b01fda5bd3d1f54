public import RunlogJSON
public import WorkflowModel
import Workflows

/// How an importer turns each row into a workflow run (seed 000, step 4).
///
/// - API-triggered workflows: `columns` maps each column to a schema parameter (a dotted path
///   for a terminal field of a nested object); every required parameter must be mapped.
/// - Case/account actions: `tokenColumn` holds the object tokens; `columns` maps columns to the
///   action's input fields.
/// - Event-triggered workflows: `tokenColumn` holds the trigger object tokens (of `objectType`);
///   each token's object must exist, have an event of the trigger's type no older than 3 months,
///   and satisfy the trigger criteria.
///
/// JSON form: `{"columns": {"email": "email", "zip": "address.zip"}, "token_column": "token",
/// "object_type": "inquiry"}`.
public struct ImporterMapping: Sendable, Hashable {
    public var columns: [String: String]
    public var tokenColumn: String?
    public var objectType: String?

    public init(columns: [String: String] = [:], tokenColumn: String? = nil, objectType: String? = nil) {
        self.columns = columns
        self.tokenColumn = tokenColumn
        self.objectType = objectType
    }

    public init(json: JSONValue?) throws(WorkflowError) {
        guard let json else {
            self.init()
            return
        }
        guard case .object(let o) = json else {
            throw WorkflowError(.invalid, "mapping must be an object",
                                issues: [FieldIssue(field: "mapping", value: json.jsonText, rule: "must be an object")])
        }
        for key in o.keys where !["columns", "token_column", "object_type"].contains(key) {
            throw Self.issue("mapping.\(key)", o[key], "is not a known field (known: columns, token_column, object_type)")
        }
        var columns: [String: String] = [:]
        if let value = o["columns"], value != .null {
            guard case .object(let pairs) = value else { throw Self.issue("mapping.columns", value, "must be an object") }
            for (column, target) in pairs {
                guard case .string(let path) = target, !path.isEmpty else {
                    throw Self.issue("mapping.columns.\(column)", target, "must be a parameter name (a string)")
                }
                columns[column] = path
            }
        }
        func string(_ key: String) throws(WorkflowError) -> String? {
            guard let value = o[key], value != .null else { return nil }
            guard case .string(let text) = value, !text.isEmpty else {
                throw Self.issue("mapping.\(key)", value, "must be a non-empty string")
            }
            return text
        }
        self.init(columns: columns, tokenColumn: try string("token_column"), objectType: try string("object_type"))
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["columns": .object(columns.mapValues(JSONValue.string))]
        if let tokenColumn { o["token_column"] = .string(tokenColumn) }
        if let objectType { o["object_type"] = .string(objectType) }
        return .object(o)
    }

    static func issue(_ field: String, _ value: JSONValue?, _ rule: String) -> WorkflowError {
        WorkflowError(.invalid, "\(field) \(rule)", issues: [FieldIssue(field: field, value: value?.jsonText, rule: rule)])
    }

    /// Checks the mapping against the trigger of the pinned version: every rule it breaks.
    public func problems(for trigger: WorkflowDefinition.Trigger) -> [FieldIssue] {
        var issues: [FieldIssue] = []
        func add(_ field: String, _ value: String?, _ rule: String) {
            issues.append(FieldIssue(field: field, value: value.map { JSONValue.string($0).jsonText }, rule: rule))
        }
        switch trigger {
        case .api(let schema, _):
            if let tokenColumn { add("mapping.token_column", tokenColumn, "is only for event-triggered and action workflows") }
            issues += columnProblems(schema)
        case .action(_, let inputs):
            if tokenColumn == nil { add("mapping.token_column", nil, "is required: the column of object tokens") }
            issues += columnProblems(inputs)
        case .event:
            if tokenColumn == nil { add("mapping.token_column", nil, "is required: the column of trigger object tokens") }
            if objectType == nil { add("mapping.object_type", nil, "is required: the type of the trigger objects") }
            for (column, path) in columns.sorted(by: { $0.key < $1.key }) {
                add("mapping.columns.\(column)", path, "event-triggered workflows take no parameters; map only the token column")
            }
        }
        return issues
    }

    private func columnProblems(_ schema: ParameterSchema) -> [FieldIssue] {
        var issues: [FieldIssue] = []
        var mapped: [String: String] = [:]
        for (column, path) in columns.sorted(by: { $0.key < $1.key }) {
            let field = "mapping.columns.\(column)"
            guard let target = ColumnTarget(path: path, schema: schema) else {
                let known = ColumnTarget.terminalPaths(schema).joined(separator: ", ")
                issues.append(FieldIssue(field: field, value: JSONValue.string(path).jsonText,
                                         rule: "is not a parameter of the workflow (parameters: \(known))"))
                continue
            }
            if let other = mapped[target.path] {
                issues.append(FieldIssue(field: field, value: JSONValue.string(path).jsonText,
                                         rule: "is already mapped from column \(other)"))
            }
            mapped[target.path] = column
        }
        for path in ColumnTarget.requiredPaths(schema) where mapped[path] == nil {
            issues.append(FieldIssue(field: "mapping.columns", value: nil, rule: "required parameter \(path) is not mapped"))
        }
        return issues
    }
}

/// A parameter a column fills: a terminal field, reached through nested objects.
struct ColumnTarget: Sendable, Hashable {
    var path: String
    var parts: [String]
    var type: ParameterSchema.FieldType
    /// Required, and inside required objects only: the row must give it.
    var required: Bool

    init?(path: String, schema: ParameterSchema) {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var fields = schema.fields
        var type: ParameterSchema.FieldType?
        var required = true
        for (i, part) in parts.enumerated() {
            guard let field = fields.first(where: { $0.name == part }) else { return nil }
            required = required && field.required
            if case .object(let sub) = field.type, i < parts.count - 1 {
                fields = sub
            } else if i < parts.count - 1 {
                return nil
            } else {
                type = field.type
            }
        }
        // An object is filled one column per terminal field, not as a whole.
        guard let type, !Self.isObject(type) else { return nil }
        self.path = path
        self.parts = parts
        self.type = type
        self.required = required
    }

    static func isObject(_ type: ParameterSchema.FieldType) -> Bool {
        if case .object = type { return true }
        return false
    }

    /// Every terminal path of the schema (objects expanded into their fields).
    static func terminalPaths(_ schema: ParameterSchema) -> [String] {
        func walk(_ fields: [ParameterSchema.Field], _ prefix: String) -> [String] {
            fields.flatMap { field -> [String] in
                if case .object(let sub) = field.type { return walk(sub, prefix + field.name + ".") }
                return [prefix + field.name]
            }
        }
        return walk(schema.fields, "")
    }

    /// The terminal paths that must be mapped: required fields, inside required objects.
    static func requiredPaths(_ schema: ParameterSchema) -> [String] {
        func walk(_ fields: [ParameterSchema.Field], _ prefix: String) -> [String] {
            fields.filter(\.required).flatMap { field -> [String] in
                if case .object(let sub) = field.type { return walk(sub, prefix + field.name + ".") }
                return [prefix + field.name]
            }
        }
        return walk(schema.fields, "")
    }
}
