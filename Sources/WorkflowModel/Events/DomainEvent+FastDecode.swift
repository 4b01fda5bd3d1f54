import RunlogJSON
/// Decoding of the run, object and list events straight from the payload's bytes, member by
/// member, without `JSONDecoder`: they are nearly every event a projection rebuild reads. Of the
/// workflow events only `workflow.created` is read this way (the engine folds one in per
/// `POST /v1/workflows`, where `JSONDecoder` took 6% of the request's CPU); the rarer ones keep
/// the `Codable` path. A test round-trips every event type.
extension DomainEvent {
    struct DecodingFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func required<T>(_ value: T?, _ key: @autoclosure () -> String, _ kind: Kind) throws -> T {
        guard let value else { throw DecodingFailure(description: "\(kind.rawValue): \(key()) must be present") }
        return value
    }

    /// Reads run, object and list events without an intermediate dictionary; nil for the
    /// workflow events. Run and workflow ids are read through `ids`.
    static func fastDecode(_ kind: Kind, payload bytes: UnsafeRawBufferPointer, ids: inout RepeatedIds,
                           rowDetails: Bool = true) throws -> DomainEvent? {
        var r = JSONReader(bytes)
        switch kind {
        case .workflowCreated:
            var workflowId: String?, name: String?, number: Int64?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("workflowId") { workflowId = try r.string(reusing: &ids.workflowId) }
                else if k.is("name") { name = try r.string() }
                else if k.is("number") { number = try r.integer() }
                else { _ = try r.value() }
            }
            return .workflowCreated(WorkflowCreated(
                workflowId: try required(workflowId, "workflowId", kind), name: try required(name, "name", kind),
                number: Int(try required(number, "number", kind))))
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
            var eventType: String?, queue: String?, quotaDay: String?, context: JSONValue?, stepOverrides: JSONValue?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("workflowId") { workflowId = try r.string(reusing: &ids.workflowId) }
                else if k.is("version") { version = try r.integer() }
                else if k.is("arm") { arm = try r.string() }
                else if k.is("rolloutId") { rolloutId = try r.optionalString() }
                else if k.is("source") { source = try readSource(&r, kind, reference: &ids.reference) }
                else if k.is("parameters") { parameters = try r.value() }
                else if k.is("objectType") { objectType = try r.optionalString() }
                else if k.is("objectToken") { objectToken = try r.optionalString() }
                else if k.is("eventType") { eventType = try r.optionalString() }
                else if k.is("queue") { queue = try r.string() }
                else if k.is("quotaDay") { quotaDay = try r.string() }
                else if k.is("context") { context = try r.value().nonNull }
                else if k.is("stepOverrides") { stepOverrides = try r.value().nonNull }
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
                quotaDay: try required(quotaDay, "quotaDay", kind), context: context, stepOverrides: stepOverrides))
        case .runsImported:
            var workflowId: String?, version: Int64?, importerRunId: String?, prefix: String?, quotaDay: String?
            var rows: [ImportedRow]?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("workflowId") { workflowId = try r.string(reusing: &ids.workflowId) }
                else if k.is("version") { version = try r.integer() }
                else if k.is("importerRunId") { importerRunId = try r.string(reusing: &ids.reference) }
                else if k.is("runIdPrefix") { prefix = try r.string() }
                else if k.is("quotaDay") { quotaDay = try r.string() }
                else if k.is("rows") { rows = try readImportedRows(&r, kind, parameters: rowDetails) }
                else { _ = try r.value() }
            }
            return .runsImported(RunsImported(
                workflowId: try required(workflowId, "workflowId", kind), version: Int(try required(version, "version", kind)),
                importerRunId: try required(importerRunId, "importerRunId", kind),
                runIdPrefix: try required(prefix, "runIdPrefix", kind), quotaDay: try required(quotaDay, "quotaDay", kind),
                rows: try required(rows, "rows", kind)))
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
        case .stepFailed:
            var runId: String?, stepUid: String?, attempt: Int64?, error: String?, willRetry: Bool?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("stepUid") { stepUid = try r.string() }
                else if k.is("attempt") { attempt = try r.integer() }
                else if k.is("error") { error = try r.string() }
                else if k.is("willRetry") { willRetry = try r.bool() }
                else { _ = try r.value() }
            }
            return .stepFailed(StepFailed(
                runId: try required(runId, "runId", kind), stepUid: try required(stepUid, "stepUid", kind),
                attempt: Int(try required(attempt, "attempt", kind)), error: try required(error, "error", kind),
                willRetry: try required(willRetry, "willRetry", kind)))
        case .runFailed:
            var runId: String?, stepUid: String?, reason: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if k.is("stepUid") { stepUid = try r.optionalString() }
                else if k.is("reason") { reason = try r.string() }
                else { _ = try r.value() }
            }
            return .runFailed(RunFailed(runId: try required(runId, "runId", kind), stepUid: stepUid,
                                        reason: try required(reason, "reason", kind)))
        case .objectTagged, .objectFieldSet, .objectDecided, .objectRedacted:
            var objectType: String?, objectToken: String?, runId: String?, tags: [String]?, field: String?
            var value: SealedData?, decision: String?, reason: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("objectType") { objectType = try r.string() }
                else if k.is("objectToken") { objectToken = try r.string() }
                else if k.is("runId") { runId = try r.string(reusing: &ids.runId) }
                else if kind == .objectTagged && k.is("tags") { tags = try readStrings(&r, "tags", kind) }
                else if kind == .objectFieldSet && k.is("field") { field = try r.string() }
                else if kind == .objectFieldSet && k.is("value") { value = try readSealed(&r, "value", kind) }
                else if kind == .objectDecided && k.is("decision") { decision = try r.string() }
                else if kind == .objectDecided && k.is("reason") { reason = try r.optionalString() }
                else { _ = try r.value() }
            }
            let type = try required(objectType, "objectType", kind)
            let token = try required(objectToken, "objectToken", kind)
            switch kind {
            case .objectTagged:
                let tags = try required(tags, "tags", kind)
                return .objectTagged(ObjectTagged(objectType: type, objectToken: token, tags: tags,
                                                  runId: try required(runId, "runId", kind)))
            case .objectFieldSet:
                let field = try required(field, "field", kind)
                let value = try required(value, "value", kind)
                return .objectFieldSet(ObjectFieldSet(objectType: type, objectToken: token, field: field, value: value,
                                                      runId: try required(runId, "runId", kind)))
            case .objectDecided:
                let decision = try required(decision, "decision", kind)
                return .objectDecided(ObjectDecided(objectType: type, objectToken: token, decision: decision,
                                                    reason: reason, runId: try required(runId, "runId", kind)))
            default:
                return .objectRedacted(ObjectRedacted(objectType: type, objectToken: token,
                                                      runId: try required(runId, "runId", kind)))
            }
        default:
            return nil
        }
    }

    /// Reads an array of strings, the value of the member `key` just read.
    static func readStrings(_ r: inout JSONReader, _ key: String, _ kind: Kind) throws -> [String] {
        func failure() -> DecodingFailure { DecodingFailure(description: "\(kind.rawValue): \(key) must be an array of strings") }
        guard case .array(let items) = try r.value() else { throw failure() }
        return try items.map { item in
            guard case .string(let s) = item else { throw failure() }
            return s
        }
    }

    /// Reads a run's `source`, the value of the member just read, in place.
    /// The rows of a `run.batch_imported`; without `parameters`, each row's parameters are
    /// checked and read as null.
    static func readImportedRows(_ r: inout JSONReader, _ kind: Kind, parameters withParameters: Bool) throws -> [ImportedRow] {
        var rows: [ImportedRow] = []
        try r.forEachElement { (r: inout JSONReader) throws(JSONParseError) in
            var row: Int64?, parameters: JSONValue?, objectType: String?, objectToken: String?, eventType: String?
            try r.beginObject()
            while let k = try r.nextKey() {
                if k.is("row") { row = try r.integer() }
                else if k.is("parameters") {
                    if withParameters { parameters = try r.value() } else { try r.skipValue(); parameters = .null }
                }
                else if k.is("objectType") { objectType = try r.optionalString() }
                else if k.is("objectToken") { objectToken = try r.optionalString() }
                else if k.is("eventType") { eventType = try r.optionalString() }
                else { _ = try r.value() }
            }
            guard let row, let parameters else { throw r.state.error("rows: row and parameters must be present") }
            rows.append(ImportedRow(row: Int(row), parameters: parameters, objectType: objectType, objectToken: objectToken,
                                    eventType: eventType))
        }
        return rows
    }

    static func readSource(_ r: inout JSONReader, _ kind: Kind, reference recent: inout RepeatedString) throws -> RunSource {
        var sourceKind: String?, reference: String?, row: Int64?
        try r.beginObject()
        while let k = try r.nextKey() {
            if k.is("kind") { sourceKind = try r.string() }
            else if k.is("reference") { reference = try r.optionalString(reusing: &recent) }
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
