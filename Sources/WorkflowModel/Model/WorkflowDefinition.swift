public import RunlogJSON
/// What a workflow version holds: its trigger and its ordered routes.
///
/// JSON form (what drafts are saved as and versions publish):
/// ```json
/// {"trigger": {"kind": "event", "event_type": "inquiry.completed", "criteria": {…}}
///          or {"kind": "api", "schema": {"fields": […]}}
///          or {"kind": "action", "object_type": "case", "inputs": {"fields": […]}},
///  "routes": [{"name": "high risk", "condition": {"object.data.score": {"$gt": 80}},
///              "steps": [{"step_uid": "s1", "type": "decline", "parameters": {}}]},
///             {"name": "else", "steps": […]}]}
/// ```
public struct WorkflowDefinition: Sendable, Hashable {
    public var trigger: Trigger
    public var routes: [Route]

    public init(trigger: Trigger, routes: [Route]) {
        self.trigger = trigger
        self.routes = routes
    }

    public enum Trigger: Sendable, Hashable {
        /// Runs when an object event of `eventType` is posted and `criteria` (if any) holds.
        case event(eventType: String, criteria: Condition?)
        /// Runs when a service starts it with parameters valid against `schema`.
        /// `stickyField` names the parameter used as the rollout key (else the run id).
        case api(schema: ParameterSchema, stickyField: String?)
        /// Runs as an action on an object of `objectType` with `inputs`.
        case action(objectType: String, inputs: ParameterSchema)

        public var kind: String {
            switch self {
            case .event: "event"
            case .api: "api"
            case .action: "action"
            }
        }
    }

    public struct Route: Sendable, Hashable {
        public var name: String
        /// `Condition.always` for the else route.
        public var condition: Condition
        public var steps: [Step]

        public init(name: String, condition: Condition = .always, steps: [Step]) {
            self.name = name
            self.condition = condition
            self.steps = steps
        }
    }

    public struct Step: Sendable, Hashable {
        /// Stable across versions: the same step keeps its uid when a workflow is edited.
        public var uid: String
        public var type: StepType
        public var parameters: JSONValue

        public init(uid: String, type: StepType, parameters: JSONValue = [:]) {
            self.uid = uid
            self.type = type
            self.parameters = parameters
        }
    }

    public enum StepType: String, Sendable, Hashable, CaseIterable {
        case approve, decline, tag
        case addToList = "add_to_list"
        case removeFromList = "remove_from_list"
        case setField = "set_field"
        case redact
        case httpRequest = "http_request"
        case runWorkflow = "run_workflow"
    }

    /// Every step of every route, by uid.
    public var stepsByUid: [String: Step] {
        Dictionary(routes.flatMap(\.steps).map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The first route whose condition holds for `context`.
    public func route(for context: JSONValue, lists: any ListMembership) -> Route? {
        routes.first { $0.condition.matches(context, lists: lists) }
    }
}

// MARK: JSON form

extension WorkflowDefinition {
    /// Reads and validates the JSON form. Conditions are compiled here, so a malformed one is
    /// rejected with its path and operator.
    public init(json: JSONValue) throws(WorkflowError) {
        guard case .object(let o) = json else {
            throw .invalid(field: "definition", value: json, rule: "must be an object with \"trigger\" and \"routes\"")
        }
        trigger = try Self.trigger(o["trigger"])
        guard case .array(let routeItems)? = o["routes"], !routeItems.isEmpty else {
            throw .invalid(field: "routes", value: o["routes"], rule: "must be a non-empty array of routes")
        }
        var routes: [Route] = []
        var routeNames = Set<String>()
        var stepUids = Set<String>()
        for (i, item) in routeItems.enumerated() {
            let at = "routes[\(i)]"
            guard case .object(let r) = item else { throw .invalid(field: at, value: item, rule: "must be an object") }
            guard case .string(let name)? = r["name"], !name.isEmpty else {
                throw .invalid(field: at + ".name", value: r["name"], rule: "must be a non-empty string")
            }
            guard routeNames.insert(name).inserted else {
                throw .invalid(field: at + ".name", value: .string(name), rule: "route names must be unique")
            }
            var condition = Condition.always
            if let c = r["condition"], c != .null {
                do {
                    condition = try Condition(c)
                } catch {
                    throw WorkflowError(.invalid, "\(at).condition is malformed", issues: [
                        FieldIssue(field: at + ".condition" + (error.path.isEmpty ? "" : "." + error.path),
                                   value: error.operator, rule: error.description),
                    ])
                }
            }
            if condition == .always && i < routeItems.count - 1 {
                throw .invalid(field: at + ".condition", value: r["condition"],
                               rule: "only the last route may have no condition (it is the else route)")
            }
            guard case .array(let stepItems)? = r["steps"] else {
                throw .invalid(field: at + ".steps", value: r["steps"], rule: "must be an array of steps")
            }
            var steps: [Step] = []
            for (j, s) in stepItems.enumerated() {
                let step = try Self.step(s, at: "\(at).steps[\(j)]")
                guard stepUids.insert(step.uid).inserted else {
                    throw .invalid(field: "\(at).steps[\(j)].step_uid", value: .string(step.uid),
                                   rule: "step uids must be unique within a workflow")
                }
                steps.append(step)
            }
            routes.append(Route(name: name, condition: condition, steps: steps))
        }
        self.routes = routes
    }

    /// Refuses keys the JSON form does not have, anywhere in a definition (a route's misspelt
    /// `"conditon"` or an `"if"` would otherwise be stored and ignored: a route with no condition
    /// matches every run). Checked when a draft is saved, not when a stored version is read, so
    /// versions saved before this check stay readable.
    public static func checkKeys(_ json: JSONValue) throws(WorkflowError) {
        func check(_ value: JSONValue?, _ path: String, _ what: String, _ allowed: Set<String>) throws(WorkflowError) {
            guard case .object(let o)? = value else { return }
            var first: String?
            for key in o.keys where !allowed.contains(key) && first.map({ key < $0 }) ?? true { first = key }
            if let key = first {
                throw .invalid(field: path.isEmpty ? key : path + "." + key, value: o[key],
                               rule: "is not a key of \(what); allowed: " + allowed.sorted().joined(separator: ", "))
            }
        }
        func checkSchema(_ value: JSONValue?, _ path: String) throws(WorkflowError) {
            try check(value, path, "a parameter schema", ["fields"])
            try checkFields(value?["fields"], path + ".fields")
        }
        func checkFields(_ value: JSONValue?, _ path: String) throws(WorkflowError) {
            guard case .array(let fields)? = value else { return }
            for (i, field) in fields.enumerated() {
                try check(field, "\(path)[\(i)]", "a schema field", ["name", "type", "required", "items", "fields"])
                try checkFields(field["fields"], "\(path)[\(i)].fields")
            }
        }
        try check(json, "", "a workflow definition", ["trigger", "routes"])
        let trigger = json["trigger"]
        switch trigger?["kind"]?.stringValue {
        case "event": try check(trigger, "trigger", "an event trigger", ["kind", "event_type", "criteria"])
        case "api":
            try check(trigger, "trigger", "an api trigger", ["kind", "schema", "sticky_field"])
            try checkSchema(trigger?["schema"], "trigger.schema")
        case "action":
            try check(trigger, "trigger", "an action trigger", ["kind", "object_type", "inputs"])
            try checkSchema(trigger?["inputs"], "trigger.inputs")
        default: break
        }
        guard case .array(let routes)? = json["routes"] else { return }
        for (i, route) in routes.enumerated() {
            try check(route, "routes[\(i)]", "a route", ["name", "condition", "steps"])
            guard case .array(let steps)? = route["steps"] else { continue }
            for (j, step) in steps.enumerated() {
                try check(step, "routes[\(i)].steps[\(j)]", "a step", ["step_uid", "type", "parameters"])
            }
        }
    }

    /// Refuses a condition path that cannot exist in the document its condition sees: a root
    /// that document does not have (`data.country` in event criteria, where the path is
    /// `event.data.country`), a key the engine never puts there (`run.status`, `event.payload`),
    /// a parameter (API trigger) or input (action trigger) that the schema lacks, or a path below
    /// a scalar field. Checked when a draft is saved, like `checkKeys`.
    ///
    /// Returns a warning for each path whose end is known only at run time (object and event
    /// data, lists, a batch task's extra roots): it is accepted, not checked.
    @discardableResult
    public func checkConditionPaths() throws(WorkflowError) -> [FieldIssue] {
        let run = PathShape.keys(["id": .scalar("string"), "workflow_id": .scalar("string"),
                                  "version": .scalar("integer"), "arm": .scalar("string")])
        let event = PathShape.keys(["type": .scalar("string"), "occurred_at": .scalar("integer"),
                                    "data": .runtime("the event's data")])
        let object = PathShape.keys(["type": .scalar("string"), "token": .scalar("string"),
                                     "data": .runtime("the object's data"), "tags": .runtime("a list"),
                                     "decision": .scalar("string")])
        // Extra roots a batch task's runs see (seed 003), whatever the trigger.
        var routeRoots: [String: PathShape] = [
            "run": run,
            "apicontent": .runtime("a batch task's content, present on the runs a batch task starts"),
            "custom_data": .runtime("a batch task's custom data, present on the runs a batch task starts"),
        ]
        var warnings: [FieldIssue] = []
        switch trigger {
        case .event(_, let criteria):
            if let criteria {
                try Self.checkPaths(criteria.source, at: "trigger.criteria",
                                    roots: ["event": event, "object": object], warnings: &warnings)
            }
            routeRoots["event"] = event
            routeRoots["object"] = object
            routeRoots["inputs"] = .runtime("an imported row's inputs")
        case .api(let parameters, _):
            routeRoots["parameters"] = .fields(parameters.fields, "the trigger's schema")
        case .action(_, let inputs):
            routeRoots["inputs"] = .fields(inputs.fields, "the trigger's inputs")
            routeRoots["object"] = object
        }
        for (i, route) in routes.enumerated() where route.condition != .always {
            try Self.checkPaths(route.condition.source, at: "routes[\(i)].condition", roots: routeRoots,
                                warnings: &warnings)
        }
        return warnings
    }

    /// What is known, when a draft is saved, about a part of the document a condition sees.
    private indirect enum PathShape {
        /// An object with exactly these keys.
        case keys([String: PathShape])
        /// A parameter schema's fields (named for messages).
        case fields([ParameterSchema.Field], String)
        /// A value with no sub-fields, of this type.
        case scalar(String)
        /// Known only at run time (why).
        case runtime(String)
    }

    /// The field paths of a condition: its keys and those under `$and`, `$or` and `$nor`.
    static func paths(in condition: JSONValue) -> [String] {
        guard case .object(let o) = condition else { return [] }
        var out: [String] = []
        for (key, value) in o {
            if ["$and", "$or", "$nor"].contains(key), case .array(let items) = value {
                for item in items { out += paths(in: item) }
            } else if !key.hasPrefix("$") {
                out.append(key)
            }
        }
        return out.sorted()
    }

    private static func checkPaths(_ condition: JSONValue, at: String, roots: [String: PathShape],
                                   warnings: inout [FieldIssue]) throws(WorkflowError) {
        var seen = Set<String>()
        for path in paths(in: condition) where seen.insert(path).inserted {
            let field = at + "." + path
            var shape = PathShape.keys(roots)
            var walked = ""
            walk: for part in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
                let here = walked.isEmpty ? part : walked + "." + part
                switch shape {
                case .keys(let keys):
                    guard let next = keys[part] else {
                        let rule = walked.isEmpty
                            ? "starts at \"\(part)\", which this condition's document does not have; its roots: "
                                + keys.keys.sorted().joined(separator: ", ")
                            : "names \(here), which \(walked) does not have; its keys: " + keys.keys.sorted().joined(separator: ", ")
                        throw .invalid(field: field, value: .string(path), rule: rule)
                    }
                    shape = next
                case .fields(let fields, let what):
                    guard let f = fields.first(where: { $0.name == part }) else {
                        let names = fields.map(\.name)
                        throw .invalid(field: field, value: .string(path),
                                       rule: "names \(here), which is not a field of \(what); its fields: "
                                           + (names.isEmpty ? "none" : names.joined(separator: ", ")))
                    }
                    switch f.type {
                    case .scalar(let type): shape = .scalar(type.rawValue)
                    case .object(let sub): shape = .fields(sub, "the object field \(here)")
                    case .array, .arrayOfObjects: shape = .runtime("a list")
                    }
                case .scalar(let type):
                    throw .invalid(field: field, value: .string(path),
                                   rule: "goes below \(walked), a field of type \(type), which has no sub-fields")
                case .runtime(let what):
                    warnings.append(FieldIssue(field: field, value: JSONValue.string(path).jsonText,
                                               rule: "\(walked) is \(what), known only at run time: this path is not checked"))
                    break walk
                }
                walked = here
            }
        }
    }

    private static func trigger(_ value: JSONValue?) throws(WorkflowError) -> Trigger {
        guard case .object(let t)? = value, case .string(let kind)? = t["kind"] else {
            throw .invalid(field: "trigger.kind", value: value?["kind"], rule: "must be \"event\", \"api\" or \"action\"")
        }
        switch kind {
        case "event":
            guard case .string(let type)? = t["event_type"], !type.isEmpty else {
                throw .invalid(field: "trigger.event_type", value: t["event_type"], rule: "must be a non-empty string")
            }
            var criteria: Condition?
            if let c = t["criteria"], c != .null {
                do {
                    criteria = try Condition(c)
                } catch {
                    throw WorkflowError(.invalid, "trigger.criteria is malformed", issues: [
                        FieldIssue(field: "trigger.criteria" + (error.path.isEmpty ? "" : "." + error.path),
                                   value: error.operator, rule: error.description),
                    ])
                }
            }
            return .event(eventType: type, criteria: criteria)
        case "api":
            let schema = try ParameterSchema(json: t["schema"] ?? .null, path: "trigger.schema")
            var sticky: String?
            if let s = t["sticky_field"], s != .null {
                guard case .string(let name) = s, let field = schema.field(at: name),
                      case .scalar = field.type else {
                    throw .invalid(field: "trigger.sticky_field", value: s,
                                   rule: "must name a scalar field of the parameter schema")
                }
                sticky = name
            }
            return .api(schema: schema, stickyField: sticky)
        case "action":
            guard case .string(let objectType)? = t["object_type"], !objectType.isEmpty else {
                throw .invalid(field: "trigger.object_type", value: t["object_type"],
                               rule: "must name an object type, e.g. \"case\" or \"account\"")
            }
            let inputs = try t["inputs"].map { v throws(WorkflowError) in try ParameterSchema(json: v, path: "trigger.inputs") }
            return .action(objectType: objectType, inputs: inputs ?? .empty)
        default:
            throw .invalid(field: "trigger.kind", value: .string(kind), rule: "must be \"event\", \"api\" or \"action\"")
        }
    }

    private static func step(_ value: JSONValue, at: String) throws(WorkflowError) -> Step {
        guard case .object(let s) = value else { throw .invalid(field: at, value: value, rule: "must be an object") }
        guard case .string(let uid)? = s["step_uid"], !uid.isEmpty, uid.utf8.count <= 128 else {
            throw .invalid(field: at + ".step_uid", value: s["step_uid"], rule: "must be a non-empty string of at most 128 bytes")
        }
        guard case .string(let typeName)? = s["type"], let type = StepType(rawValue: typeName) else {
            throw .invalid(field: at + ".type", value: s["type"],
                           rule: "must be one of " + StepType.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let parameters = s["parameters"] ?? .object([:])
        try StepParameters.validate(type, parameters, at: at + ".parameters")
        return Step(uid: uid, type: type, parameters: parameters)
    }

    /// The JSON form.
    public var json: JSONValue {
        let triggerJSON: JSONValue
        switch trigger {
        case .event(let type, let criteria):
            var o: [String: JSONValue] = ["kind": "event", "event_type": .string(type)]
            if let criteria { o["criteria"] = criteria.source }
            triggerJSON = .object(o)
        case .api(let schema, let sticky):
            var o: [String: JSONValue] = ["kind": "api", "schema": schema.json]
            if let sticky { o["sticky_field"] = .string(sticky) }
            triggerJSON = .object(o)
        case .action(let objectType, let inputs):
            triggerJSON = ["kind": "action", "object_type": .string(objectType), "inputs": inputs.json]
        }
        return [
            "trigger": triggerJSON,
            "routes": .array(routes.map { route in
                var r: [String: JSONValue] = [
                    "name": .string(route.name),
                    "steps": .array(route.steps.map { ["step_uid": .string($0.uid), "type": .string($0.type.rawValue),
                                                       "parameters": $0.parameters] }),
                ]
                if route.condition != .always { r["condition"] = route.condition.source }
                return .object(r)
            }),
        ]
    }
}

/// The parameters each step type takes, checked when a draft is saved.
package enum StepParameters {
    package static func validate(_ type: WorkflowDefinition.StepType, _ p: JSONValue, at: String) throws(WorkflowError) {
        guard case .object(let o) = p else { throw .invalid(field: at, value: p, rule: "must be an object") }
        func allow(_ keys: Set<String>) throws(WorkflowError) {
            if let extra = o.keys.sorted().first(where: { !keys.contains($0) }) {
                throw .invalid(field: "\(at).\(extra)", value: o[extra],
                               rule: "is not a parameter of \(type.rawValue); allowed: " + keys.sorted().joined(separator: ", "))
            }
        }
        func string(_ key: String, required: Bool = true) throws(WorkflowError) -> String? {
            guard let v = o[key] else {
                if required { throw .invalid(field: "\(at).\(key)", value: nil, rule: "is required") }
                return nil
            }
            guard case .string(let s) = v, !s.isEmpty else {
                throw .invalid(field: "\(at).\(key)", value: v, rule: "must be a non-empty string")
            }
            return s
        }
        func integer(_ key: String, _ range: ClosedRange<Int64>) throws(WorkflowError) {
            guard let v = o[key] else { return }
            guard case .integer(let n) = v, range.contains(n) else {
                throw .invalid(field: "\(at).\(key)", value: v, rule: "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
        }
        switch type {
        case .approve, .decline:
            try allow(["reason"])
            _ = try string("reason", required: false)
        case .tag:
            try allow(["tags"])
            guard case .array(let tags)? = o["tags"], !tags.isEmpty,
                  tags.allSatisfy({ if case .string(let s) = $0 { !s.isEmpty } else { false } }) else {
                throw .invalid(field: at + ".tags", value: o["tags"], rule: "must be a non-empty array of non-empty strings")
            }
        case .addToList, .removeFromList:
            try allow(["list", "path"])
            _ = try string("list")
            _ = try string("path")
        case .setField:
            try allow(["field", "value", "path"])
            _ = try string("field")
            guard (o["value"] == nil) != (o["path"] == nil) else {
                throw .invalid(field: at, value: p, rule: "set_field needs exactly one of \"value\" or \"path\"")
            }
            if o["path"] != nil { _ = try string("path") }
        case .redact:
            try allow([])
        case .httpRequest:
            try allow(["url", "method", "headers", "body", "body_path", "timeout_ms", "retries", "account"])
            let url = try string("url")!
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw .invalid(field: at + ".url", value: .string(url), rule: "must be an http:// or https:// URL")
            }
            if let method = try string("method", required: false),
               !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
                throw .invalid(field: at + ".method", value: .string(method), rule: "must be GET, POST, PUT, PATCH or DELETE")
            }
            if let h = o["headers"] {
                guard case .object(let headers) = h, headers.values.allSatisfy({ $0.stringValue != nil }) else {
                    throw .invalid(field: at + ".headers", value: h, rule: "must be an object of string values")
                }
            }
            if o["body"] != nil && o["body_path"] != nil {
                throw .invalid(field: at, value: p, rule: "give \"body\" or \"body_path\", not both")
            }
            if o["body_path"] != nil { _ = try string("body_path") }
            _ = try string("account", required: false)
            try integer("timeout_ms", 1...120_000)
            try integer("retries", 0...10)
        case .runWorkflow:
            try allow(["workflow_id", "parameters"])
            _ = try string("workflow_id")
            if let params = o["parameters"], params.objectValue == nil {
                throw .invalid(field: at + ".parameters", value: params, rule: "must be an object")
            }
        }
    }
}
