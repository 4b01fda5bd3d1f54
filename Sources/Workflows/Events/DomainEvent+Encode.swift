extension DomainEvent {
    /// The payload of the events written on the hot paths (run creation and execution, list and
    /// object steps, workflow creation), built as a `JSONValue` and written by hand: the same
    /// bytes as `JSONEncoder` with sorted keys writes (a test checks it) at a fraction of the cost.
    /// Nil when the event is not one of them.
    func fastPayload() -> [UInt8]? {
        func optional(_ value: String?) -> JSONValue? { value.map(JSONValue.string) }
        func object(_ fields: [String: JSONValue?]) -> [UInt8] {
            Array(JSONValue.object(fields.compactMapValues { $0 }).jsonText.utf8)
        }
        switch self {
        case .workflowCreated(let e):
            return object(["workflowId": .string(e.workflowId), "name": .string(e.name), "number": .integer(Int64(e.number))])
        case .runCreated(let e):
            var source: [String: JSONValue] = ["kind": .string(e.source.kind)]
            if let reference = e.source.reference { source["reference"] = .string(reference) }
            if let row = e.source.row { source["row"] = .integer(Int64(row)) }
            return object([
                "runId": .string(e.runId), "workflowId": .string(e.workflowId), "version": .integer(Int64(e.version)),
                "arm": .string(e.arm.rawValue), "rolloutId": optional(e.rolloutId), "source": .object(source),
                "parameters": e.parameters, "objectType": optional(e.objectType), "objectToken": optional(e.objectToken),
                "eventType": optional(e.eventType), "queue": .string(e.queue.rawValue), "quotaDay": .string(e.quotaDay),
                "context": e.context, "stepOverrides": e.stepOverrides,
            ])
        case .routeMatched(let e):
            return object(["runId": .string(e.runId), "route": optional(e.route)])
        case .stepStarted(let e):
            return object(["runId": .string(e.runId), "stepUid": .string(e.stepUid), "stepType": .string(e.stepType),
                           "attempt": .integer(Int64(e.attempt)), "idempotencyKey": optional(e.idempotencyKey)])
        case .stepCompleted(let e):
            return object(["runId": .string(e.runId), "stepUid": .string(e.stepUid), "output": e.output])
        case .stepFailed(let e):
            return object(["runId": .string(e.runId), "stepUid": .string(e.stepUid), "attempt": .integer(Int64(e.attempt)),
                           "error": .string(e.error), "willRetry": .bool(e.willRetry)])
        case .runCompleted(let e):
            return object(["runId": .string(e.runId), "decision": optional(e.decision)])
        case .runFailed(let e):
            return object(["runId": .string(e.runId), "stepUid": optional(e.stepUid), "reason": .string(e.reason)])
        case .objectTagged(let e):
            return object(["objectType": .string(e.objectType), "objectToken": .string(e.objectToken),
                           "tags": .array(e.tags.map(JSONValue.string)), "runId": .string(e.runId)])
        case .objectDecided(let e):
            return object(["objectType": .string(e.objectType), "objectToken": .string(e.objectToken),
                           "decision": .string(e.decision), "reason": optional(e.reason), "runId": .string(e.runId)])
        case .listItemAdded(let e), .listItemRemoved(let e):
            return object(["listId": .string(e.listId), "value": e.value, "runId": optional(e.runId)])
        default:
            return nil
        }
    }
}
