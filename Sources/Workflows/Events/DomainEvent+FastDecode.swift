/// Decoding of the frequent event types (runs, objects, lists) straight from parsed JSON,
/// without `JSONDecoder`: they are nearly every event a projection rebuild reads. The rare
/// workflow events keep the `Codable` path. A test round-trips every event type through both.
extension DomainEvent {
    struct DecodingFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The members of a payload object, read with the payload's event type in errors.
    struct Fields {
        let members: [String: JSONValue]
        let type: String

        init(_ value: JSONValue, type: String) throws {
            guard case .object(let members) = value else {
                throw DecodingFailure(description: "\(type): the payload is not a JSON object")
            }
            self.members = members
            self.type = type
        }

        func fail(_ key: String, _ expected: String) -> DecodingFailure {
            DecodingFailure(description: "\(type): \(key) must be \(expected)")
        }

        func value(_ key: String) throws -> JSONValue {
            guard let v = members[key] else { throw fail(key, "present") }
            return v
        }

        func string(_ key: String) throws -> String {
            guard case .string(let s)? = members[key] else { throw fail(key, "a string") }
            return s
        }

        func optionalString(_ key: String) throws -> String? {
            switch members[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            default: throw fail(key, "a string or absent")
            }
        }

        func int(_ key: String) throws -> Int {
            guard case .integer(let i)? = members[key], let n = Int(exactly: i) else { throw fail(key, "an integer") }
            return n
        }

        func optionalInt(_ key: String) throws -> Int? {
            switch members[key] {
            case nil, .null?: return nil
            case .integer(let i)?: return Int(i)
            default: throw fail(key, "an integer or absent")
            }
        }

        func int64(_ key: String) throws -> Int64 {
            guard case .integer(let i)? = members[key] else { throw fail(key, "an integer") }
            return i
        }

        func bool(_ key: String) throws -> Bool {
            guard case .bool(let b)? = members[key] else { throw fail(key, "true or false") }
            return b
        }

        func strings(_ key: String) throws -> [String] {
            guard case .array(let items)? = members[key] else { throw fail(key, "an array of strings") }
            return try items.map { item in
                guard case .string(let s) = item else { throw fail(key, "an array of strings") }
                return s
            }
        }

        func sealed(_ key: String) throws -> SealedData {
            SealedData(sealed: try Fields(try value(key), type: "\(type) \(key)").string("sealed"))
        }

        func raw<T: RawRepresentable>(_ key: String, _: T.Type) throws -> T where T.RawValue == String {
            guard let value = T(rawValue: try string(key)) else { throw fail(key, "one of the known values") }
            return value
        }
    }

    /// Decodes the frequent types from `payload`; nil for types that take the `Codable` path.
    static func fastDecode(type: String, payload: [UInt8]) throws -> DomainEvent? {
        switch type {
        case "run.created.v1", "run.route_matched.v1", "run.step_started.v1", "run.step_completed.v1",
             "run.step_failed.v1", "run.completed.v1", "run.failed.v1", "object.event_recorded.v1",
             "object.tagged.v1", "object.field_set.v1", "object.decided.v1", "object.redacted.v1",
             "list.item_added.v1", "list.item_removed.v1":
            break
        default:
            return nil
        }
        let f = try Fields(try JSONValue(parsing: payload), type: type)
        switch type {
        case "run.created.v1":
            let source = try Fields(try f.value("source"), type: "\(type) source")
            return .runCreated(RunCreated(
                runId: try f.string("runId"), workflowId: try f.string("workflowId"), version: try f.int("version"),
                arm: try f.raw("arm", Arm.self), rolloutId: try f.optionalString("rolloutId"),
                source: RunSource(kind: try source.string("kind"), reference: try source.optionalString("reference"),
                                  row: try source.optionalInt("row")),
                parameters: try f.value("parameters"), objectType: try f.optionalString("objectType"),
                objectToken: try f.optionalString("objectToken"), eventType: try f.optionalString("eventType"),
                queue: try f.raw("queue", RunQueue.self), quotaDay: try f.string("quotaDay")
            ))
        case "run.route_matched.v1":
            return .routeMatched(RouteMatched(runId: try f.string("runId"), route: try f.optionalString("route")))
        case "run.step_started.v1":
            return .stepStarted(StepStarted(
                runId: try f.string("runId"), stepUid: try f.string("stepUid"), stepType: try f.string("stepType"),
                attempt: try f.int("attempt"), idempotencyKey: try f.optionalString("idempotencyKey")
            ))
        case "run.step_completed.v1":
            return .stepCompleted(StepCompleted(runId: try f.string("runId"), stepUid: try f.string("stepUid"),
                                                output: try f.value("output")))
        case "run.step_failed.v1":
            return .stepFailed(StepFailed(runId: try f.string("runId"), stepUid: try f.string("stepUid"),
                                          attempt: try f.int("attempt"), error: try f.string("error"),
                                          willRetry: try f.bool("willRetry")))
        case "run.completed.v1":
            return .runCompleted(RunCompleted(runId: try f.string("runId"), decision: try f.optionalString("decision")))
        case "run.failed.v1":
            return .runFailed(RunFailed(runId: try f.string("runId"), stepUid: try f.optionalString("stepUid"),
                                        reason: try f.string("reason")))
        case "object.event_recorded.v1":
            return .objectEventRecorded(ObjectEventRecorded(
                eventId: try f.string("eventId"), objectType: try f.string("objectType"),
                objectToken: try f.string("objectToken"), eventType: try f.string("eventType"),
                occurredAt: try f.int64("occurredAt"), data: try f.sealed("data")
            ))
        case "object.tagged.v1":
            return .objectTagged(ObjectTagged(objectType: try f.string("objectType"), objectToken: try f.string("objectToken"),
                                              tags: try f.strings("tags"), runId: try f.string("runId")))
        case "object.field_set.v1":
            return .objectFieldSet(ObjectFieldSet(objectType: try f.string("objectType"), objectToken: try f.string("objectToken"),
                                                  field: try f.string("field"), value: try f.sealed("value"),
                                                  runId: try f.string("runId")))
        case "object.decided.v1":
            return .objectDecided(ObjectDecided(objectType: try f.string("objectType"), objectToken: try f.string("objectToken"),
                                                decision: try f.string("decision"), reason: try f.optionalString("reason"),
                                                runId: try f.string("runId")))
        case "object.redacted.v1":
            return .objectRedacted(ObjectRedacted(objectType: try f.string("objectType"),
                                                  objectToken: try f.string("objectToken"), runId: try f.string("runId")))
        default: // list.item_added.v1, list.item_removed.v1
            let change = ListItemChanged(listId: try f.string("listId"), value: try f.value("value"),
                                         runId: try f.optionalString("runId"))
            return type == "list.item_added.v1" ? .listItemAdded(change) : .listItemRemoved(change)
        }
    }
}
