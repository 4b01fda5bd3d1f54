public import RunlogJSON

extension WorkflowDefinition.Step {
    /// The step as a run with `overrides` (its `stepOverrides`) executes it: the run's
    /// `parameters` for this step laid over the step's own key by key, and its `account`.
    public func overridden(by overrides: JSONValue?) -> Self {
        guard case .object(let overrides)? = overrides?[uid] else { return self }
        var step = self
        var parameters = step.parameters.objectValue ?? [:]
        if case .object(let given)? = overrides["parameters"] {
            for (name, value) in given { parameters[name] = value }
        }
        if case .string(let account)? = overrides["account"] { parameters["account"] = .string(account) }
        step.parameters = .object(parameters)
        return step
    }
}

/// What a version of a workflow does with one run, decided without doing any of it: the route,
/// the decision, and each effect its steps would have. A preview compares two of these per run.
public struct RunPlan: Sendable, Hashable {
    /// The route that matched (nil: none did, and the run ends without steps).
    public var route: String?
    /// The matched route's condition, as written (nil for an else route or no route).
    public var condition: JSONValue?
    public var decision: String?
    public var tags: [String] = []
    public var listChanges: [ListChange] = []
    public var fields: [FieldChange] = []
    /// The outbound calls its `http_request` steps would make, rendered.
    public var calls: [Call] = []
    /// The runs its `run_workflow` steps would start.
    public var starts: [Start] = []
    public var redacts = false
    /// Why the run would fail (a step's reason), or nil.
    public var failure: String?
    /// Steps whose outside answer is not known: an `http_request` step that changed, or that the
    /// run never reached. The steps after one are decided as if it succeeded.
    public var unknownSteps: [String] = []

    public struct ListChange: Sendable, Hashable {
        public var list: String
        public var value: JSONValue
        public var added: Bool
    }

    public struct FieldChange: Sendable, Hashable {
        public var field: String
        public var value: JSONValue
    }

    public struct Call: Sendable, Hashable {
        public var step: String
        public var method: String
        public var url: String
        public var body: JSONValue?
        /// Whose credentials the call would carry (never the credentials themselves).
        public var account: String?
    }

    public struct Start: Sendable, Hashable {
        public var workflowId: String
        public var parameters: JSONValue
    }

    /// The recorded answer to an `http_request` step.
    public enum Answer: Sendable, Hashable {
        case succeeded
        case failed(String)
    }

    /// The outcome in one word, for a before → after matrix: the decision, else `failed`,
    /// `no route` or `no decision`.
    public var outcome: String {
        if let decision { return decision }
        if failure != nil { return "failed" }
        return route == nil ? "no route" : "no decision"
    }

    /// Which parts of the outcome differ from `other`'s.
    public func differences(from other: RunPlan) -> [String] {
        var parts: [String] = []
        if route != other.route { parts.append("route") }
        if decision != other.decision { parts.append("decision") }
        if tags != other.tags { parts.append("tags") }
        if listChanges != other.listChanges { parts.append("lists") }
        if fields != other.fields { parts.append("fields") }
        if calls != other.calls { parts.append("calls") }
        if starts != other.starts { parts.append("starts") }
        if redacts != other.redacts { parts.append("redaction") }
        if failure != other.failure { parts.append("failure") }
        return parts
    }

    /// Plans `route`'s steps for a run with `context`, the way the engine executes them.
    /// `answer` gives the recorded answer of an `http_request` step (nil: unknown). Steps see the
    /// context as it was when the route was chosen.
    public init(route: WorkflowDefinition.Route?, context: JSONValue, hasObject: Bool, stepOverrides: JSONValue?,
                answer: (WorkflowDefinition.Step) -> Answer?) {
        self.route = route?.name
        if let route, route.condition != .always { condition = route.condition.source }
        func value(at path: String) -> JSONValue? {
            let parts = path.split(separator: ".").map(String.init)
            guard !parts.isEmpty else { return nil }
            return Evaluator(lists: NoLists()).values(at: parts[...], in: context).first
        }
        for declared in route?.steps ?? [] {
            let step = declared.overridden(by: stepOverrides)
            let p = step.parameters
            func fail(_ reason: String) { failure = "step \(step.uid) (\(step.type.rawValue)) failed: \(reason)" }
            switch step.type {
            case .approve:
                decision = "approved"
            case .decline:
                decision = "declined"
            case .tag:
                guard hasObject else { fail("tag needs an object; this run has none"); return }
                for tag in (p["tags"]?.arrayValue ?? []).compactMap(\.stringValue) where !tags.contains(tag) {
                    tags.append(tag)
                }
            case .addToList, .removeFromList:
                let path = p["path"]?.stringValue ?? ""
                guard let found = value(at: path) else { fail("the context has no value at \"\(path)\""); return }
                listChanges.append(ListChange(list: p["list"]?.stringValue ?? "", value: found,
                                              added: step.type == .addToList))
            case .setField:
                guard hasObject else { fail("set_field needs an object; this run has none"); return }
                let found: JSONValue
                if let literal = p["value"] {
                    found = literal
                } else {
                    let path = p["path"]?.stringValue ?? ""
                    guard let at = value(at: path) else { fail("the context has no value at \"\(path)\""); return }
                    found = at
                }
                fields.append(FieldChange(field: p["field"]?.stringValue ?? "", value: found))
            case .redact:
                guard hasObject else { fail("redact needs an object; this run has none"); return }
                redacts = true
            case .runWorkflow:
                starts.append(Start(workflowId: p["workflow_id"]?.stringValue ?? "", parameters: p["parameters"] ?? [:]))
            case .httpRequest:
                var body: JSONValue?
                if let literal = p["body"] {
                    body = literal
                } else if let path = p["body_path"]?.stringValue {
                    body = value(at: path) ?? .null
                }
                calls.append(Call(step: step.uid, method: p["method"]?.stringValue ?? "POST",
                                  url: p["url"]?.stringValue ?? "", body: body, account: p["account"]?.stringValue))
                switch answer(declared) {
                case .succeeded?:
                    break
                case .failed(let reason)?:
                    failure = "step \(step.uid) (http_request) failed: \(reason)"
                    return
                case nil:
                    unknownSteps.append(step.uid)
                }
            }
        }
    }
}
