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
    static func fastDecode(_ kind: Kind, payload: UnsafeRawBufferPointer, ids: inout RepeatedIds) throws -> DomainEvent? {
        if let event = try readHot(kind, payload, ids: &ids) { return event }
        switch kind {
        case .stepFailed, .runFailed, .objectTagged, .objectFieldSet, .objectDecided, .objectRedacted:
            break
        default:
            return nil
        }
        let f = try Fields(try JSONParser.parse(payload), type: kind.rawValue)
        switch kind {
        case .stepFailed:
            return .stepFailed(StepFailed(runId: try f.string("runId"), stepUid: try f.string("stepUid"),
                                          attempt: try f.int("attempt"), error: try f.string("error"),
                                          willRetry: try f.bool("willRetry")))
        case .runFailed:
            return .runFailed(RunFailed(runId: try f.string("runId"), stepUid: try f.optionalString("stepUid"),
                                        reason: try f.string("reason")))
        case .objectTagged:
            return .objectTagged(ObjectTagged(objectType: try f.string("objectType"), objectToken: try f.string("objectToken"),
                                              tags: try f.strings("tags"), runId: try f.string("runId")))
        case .objectFieldSet:
            return .objectFieldSet(ObjectFieldSet(objectType: try f.string("objectType"), objectToken: try f.string("objectToken"),
                                                  field: try f.string("field"), value: try f.sealed("value"),
                                                  runId: try f.string("runId")))
        case .objectDecided:
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
    static func required<T>(_ value: T?, _ key: @autoclosure () -> String, _ kind: Kind) throws -> T {
        guard let value else { throw DecodingFailure(description: "\(kind.rawValue): \(key()) must be present") }
        return value
    }

    /// Reads the run and list events that make up most of a log without an intermediate
    /// dictionary; nil for the other types. Run and workflow ids are read through `ids`.
    static func readHot(_ kind: Kind, _ bytes: UnsafeRawBufferPointer, ids: inout RepeatedIds) throws -> DomainEvent? {
        var r = JSONReader(bytes)
        switch kind {
        case .stepStarted:
            var runId: String?, stepUid: String?, stepType: String?, attempt: Int64?, key: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("stepUid") { stepUid = try r.string() }
                else if k.is("stepType") { stepType = try r.string() }
                else if k.is("attempt") { attempt = try r.integer() }
                else if k.is("idempotencyKey") { key = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .stepStarted(StepStarted(
                runId: try required(runId, "runId", kind), stepUid: try required(stepUid, "stepUid", kind),
                stepType: try required(stepType, "stepType", kind), attempt: Int(try required(attempt, "attempt", kind)),
                idempotencyKey: key))
        case .stepCompleted:
            var runId: String?, stepUid: String?, output: JSONValue?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("stepUid") { stepUid = try r.string() }
                else if k.is("output") { output = try r.value() }
                else { _ = try r.value() }
            }
            return .stepCompleted(StepCompleted(runId: try required(runId, "runId", kind),
                                                stepUid: try required(stepUid, "stepUid", kind),
                                                output: try required(output, "output", kind)))
        case .routeMatched:
            var runId: String?, route: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("route") { route = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .routeMatched(RouteMatched(runId: try required(runId, "runId", kind), route: route))
        case .runCompleted:
            var runId: String?, decision: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("decision") { decision = try r.optionalString() }
                else { _ = try r.value() }
            }
            return .runCompleted(RunCompleted(runId: try required(runId, "runId", kind), decision: decision))
        case .listItemAdded, .listItemRemoved:
            var listId: String?, value: JSONValue?, runId: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("listId") { listId = try r.string() }
                else if k.is("value") { value = try r.value() }
                else if k.is("runId") { runId = try r.optionalString(reusing: &ids.runId) }
                else { _ = try r.value() }
            }
            let change = ListItemChanged(listId: try required(listId, "listId", kind),
                                         value: try required(value, "value", kind), runId: runId)
            return kind == .listItemAdded ? .listItemAdded(change) : .listItemRemoved(change)
        case .runCreated:
            var runId: String?, workflowId: String?, version: Int64?, arm: String?, rolloutId: String?
            var source: RunSource?, parameters: JSONValue?, objectType: String?, objectToken: String?
            var eventType: String?, queue: String?, quotaDay: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("workflowId") { workflowId = try r.string(reusing: &ids.workflowId) }
                else if k.is("version") { version = try r.integer() }
                else if k.is("arm") { arm = try r.string() }
                else if k.is("rolloutId") { rolloutId = try r.optionalString() }
                else if k.is("source") { source = try readSource(&r, kind) }
                else if k.is("parameters") { parameters = try r.value() }
                else if k.is("objectType") { objectType = try r.optionalString() }
                else if k.is("objectToken") { objectToken = try r.optionalString() }
                else if k.is("eventType") { eventType = try r.optionalString() }
                else if k.is("queue") { queue = try r.string() }
                else if k.is("quotaDay") { quotaDay = try r.string() }
                else { _ = try r.value() }
            }
            let sourceValue = try required(source, "source", kind)
            guard let armValue = Arm(rawValue: try required(arm, "arm", kind)) else {
                throw DecodingFailure(description: "\(kind.rawValue): arm must be one of the known values")
            }
            guard let queueValue = RunQueue(rawValue: try required(queue, "queue", kind)) else {
                throw DecodingFailure(description: "\(kind.rawValue): queue must be one of the known values")
            }
            return .runCreated(RunCreated(
                runId: try required(runId, "runId", kind), workflowId: try required(workflowId, "workflowId", kind),
                version: Int(try required(version, "version", kind)), arm: armValue, rolloutId: rolloutId,
                source: sourceValue,
                parameters: try required(parameters, "parameters", kind), objectType: objectType,
                objectToken: objectToken, eventType: eventType, queue: queueValue,
                quotaDay: try required(quotaDay, "quotaDay", kind)))
        case .objectEventRecorded:
            var eventId: String?, objectType: String?, objectToken: String?, eventType: String?
            var occurredAt: Int64?, data: SealedData?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("eventId") { eventId = try r.string() }
                else if k.is("objectType") { objectType = try r.string() }
                else if k.is("objectToken") { objectToken = try r.string() }
                else if k.is("eventType") { eventType = try r.string() }
                else if k.is("occurredAt") { occurredAt = try r.integer() }
                else if k.is("data") { data = try readSealed(&r, "data", kind) }
                else { _ = try r.value() }
            }
            return .objectEventRecorded(ObjectEventRecorded(
                eventId: try required(eventId, "eventId", kind), objectType: try required(objectType, "objectType", kind),
                objectToken: try required(objectToken, "objectToken", kind),
                eventType: try required(eventType, "eventType", kind),
                occurredAt: try required(occurredAt, "occurredAt", kind), data: try required(data, "data", kind)))
        default:
            return nil
        }
    }

    /// Reads a run's `source`, the value of the member just read, in place.
    static func readSource(_ r: inout JSONReader, _ kind: Kind) throws -> RunSource {
        var sourceKind: String?, reference: String?, row: Int64?
        try r.beginObject()
        while let k = try r.nextKey() {
            if k.is("kind") { sourceKind = try r.string() }
            else if k.is("reference") { reference = try r.optionalString() }
            else if k.is("row") { row = try r.optionalInteger() }
            else { _ = try r.value() }
        }
        return RunSource(kind: try required(sourceKind, "source.kind", kind), reference: reference, row: row.map { Int($0) })
    }

    /// Reads sealed data (`{"sealed": "…"}`), the value of the member `key` just read, in place.
    static func readSealed(_ r: inout JSONReader, _ key: String, _ kind: Kind) throws -> SealedData {
        var sealed: String?
        try r.beginObject()
        while let k = try r.nextKey() {
            if k.is("sealed") { sealed = try r.string() }
            else { _ = try r.value() }
        }
        return SealedData(sealed: try required(sealed, "\(key).sealed", kind))
    }
}
