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

    /// Decodes run, object and list events from `payload`: the most frequent member by member
    /// (`readHot`), the rest through `Fields`; nil for the workflow events, which take the
    /// `Codable` path.
    static func fastDecode(type: String, payload: UnsafeRawBufferPointer) throws -> DomainEvent? {
        if let event = try readHot(type: type, payload) { return event }
        switch type {
        case "run.step_failed.v1", "run.failed.v1", "object.tagged.v1", "object.field_set.v1",
             "object.decided.v1", "object.redacted.v1":
            break
        default:
            return nil
        }
        let f = try Fields(try JSONParser.parse(payload), type: type)
        switch type {
        case "run.step_failed.v1":
            return .stepFailed(StepFailed(runId: try f.string("runId"), stepUid: try f.string("stepUid"),
                                          attempt: try f.int("attempt"), error: try f.string("error"),
                                          willRetry: try f.bool("willRetry")))
        case "run.failed.v1":
            return .runFailed(RunFailed(runId: try f.string("runId"), stepUid: try f.optionalString("stepUid"),
                                        reason: try f.string("reason")))
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
        default: // object.redacted.v1
            return .objectRedacted(ObjectRedacted(objectType: try f.string("objectType"),
                                                  objectToken: try f.string("objectToken"), runId: try f.string("runId")))
        }
    }
}

// MARK: The most frequent types, read member by member

extension DomainEvent {
    static func required<T>(_ value: T?, _ key: String, _ type: String) throws -> T {
        guard let value else { throw DecodingFailure(description: "\(type): \(key) must be present") }
        return value
    }

    /// Reads the run and list events that make up most of a log without an intermediate
    /// dictionary; nil for the other types.
    static func readHot(type: String, _ bytes: UnsafeRawBufferPointer) throws -> DomainEvent? {
        var r = JSONReader(bytes)
        switch type {
        case "run.step_started.v1":
            var runId: String?, stepUid: String?, stepType: String?, attempt: Int64?, key: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string() }
                else if k.is("stepUid") { stepUid = try r.string() }
                else if k.is("stepType") { stepType = try r.string() }
                else if k.is("attempt") { attempt = try r.integer() }
                else if k.is("idempotencyKey") { key = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .stepStarted(StepStarted(
                runId: try required(runId, "runId", type), stepUid: try required(stepUid, "stepUid", type),
                stepType: try required(stepType, "stepType", type), attempt: Int(try required(attempt, "attempt", type)),
                idempotencyKey: key))
        case "run.step_completed.v1":
            var runId: String?, stepUid: String?, output: JSONValue?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string() }
                else if k.is("stepUid") { stepUid = try r.string() }
                else if k.is("output") { output = try r.value() }
                else { _ = try r.value() }
            }
            return .stepCompleted(StepCompleted(runId: try required(runId, "runId", type),
                                                stepUid: try required(stepUid, "stepUid", type),
                                                output: try required(output, "output", type)))
        case "run.route_matched.v1":
            var runId: String?, route: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string() }
                else if k.is("route") { route = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .routeMatched(RouteMatched(runId: try required(runId, "runId", type), route: route))
        case "run.completed.v1":
            var runId: String?, decision: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string() }
                else if k.is("decision") { decision = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .runCompleted(RunCompleted(runId: try required(runId, "runId", type), decision: decision))
        case "list.item_added.v1", "list.item_removed.v1":
            var listId: String?, value: JSONValue?, runId: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("listId") { listId = try r.string() }
                else if k.is("value") { value = try r.value() }
                else if k.is("runId") { runId = try r.optionalString() }
                else { _ = try r.value() }
            }
            let change = ListItemChanged(listId: try required(listId, "listId", type),
                                         value: try required(value, "value", type), runId: runId)
            return type == "list.item_added.v1" ? .listItemAdded(change) : .listItemRemoved(change)
        case "run.created.v1":
            var runId: String?, workflowId: String?, version: Int64?, arm: String?, rolloutId: String?
            var source: JSONValue?, parameters: JSONValue?, objectType: String?, objectToken: String?
            var eventType: String?, queue: String?, quotaDay: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string() }
                else if k.is("workflowId") { workflowId = try r.string() }
                else if k.is("version") { version = try r.integer() }
                else if k.is("arm") { arm = try r.string() }
                else if k.is("rolloutId") { rolloutId = try r.optionalString() }
                else if k.is("source") { source = try r.value() }
                else if k.is("parameters") { parameters = try r.value() }
                else if k.is("objectType") { objectType = try r.optionalString() }
                else if k.is("objectToken") { objectToken = try r.optionalString() }
                else if k.is("eventType") { eventType = try r.optionalString() }
                else if k.is("queue") { queue = try r.string() }
                else if k.is("quotaDay") { quotaDay = try r.string() }
                else { _ = try r.value() }
            }
            let s = try Fields(try required(source, "source", type), type: "\(type) source")
            guard let armValue = Arm(rawValue: try required(arm, "arm", type)) else {
                throw DecodingFailure(description: "\(type): arm must be one of the known values")
            }
            guard let queueValue = RunQueue(rawValue: try required(queue, "queue", type)) else {
                throw DecodingFailure(description: "\(type): queue must be one of the known values")
            }
            return .runCreated(RunCreated(
                runId: try required(runId, "runId", type), workflowId: try required(workflowId, "workflowId", type),
                version: Int(try required(version, "version", type)), arm: armValue, rolloutId: rolloutId,
                source: RunSource(kind: try s.string("kind"), reference: try s.optionalString("reference"),
                                  row: try s.optionalInt("row")),
                parameters: try required(parameters, "parameters", type), objectType: objectType,
                objectToken: objectToken, eventType: eventType, queue: queueValue,
                quotaDay: try required(quotaDay, "quotaDay", type)))
        case "object.event_recorded.v1":
            var eventId: String?, objectType: String?, objectToken: String?, eventType: String?
            var occurredAt: Int64?, data: JSONValue?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("eventId") { eventId = try r.string() }
                else if k.is("objectType") { objectType = try r.string() }
                else if k.is("objectToken") { objectToken = try r.string() }
                else if k.is("eventType") { eventType = try r.string() }
                else if k.is("occurredAt") { occurredAt = try r.integer() }
                else if k.is("data") { data = try r.value() }
                else { _ = try r.value() }
            }
            let sealed = try Fields(try required(data, "data", type), type: "\(type) data").string("sealed")
            return .objectEventRecorded(ObjectEventRecorded(
                eventId: try required(eventId, "eventId", type), objectType: try required(objectType, "objectType", type),
                objectToken: try required(objectToken, "objectToken", type),
                eventType: try required(eventType, "eventType", type),
                occurredAt: try required(occurredAt, "occurredAt", type), data: SealedData(sealed: sealed)))
        default:
            return nil
        }
    }
}
