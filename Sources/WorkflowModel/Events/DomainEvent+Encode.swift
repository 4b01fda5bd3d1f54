import RunlogJSON

extension DomainEvent {
    /// The payload of the events written on the hot paths (run creation and execution, list and
    /// object steps, workflow creation), written by hand member by member in sorted key order:
    /// the same bytes as `JSONEncoder` with sorted keys writes (a test checks it) at a fraction
    /// of the cost. Building a `[String: JSONValue]` per event and sorting it took a quarter of an
    /// import's CPU. Nil when the event is not one of them.
    func fastPayload() -> [UInt8]? {
        func optional(_ value: String?) -> JSONValue? { value.map(JSONValue.string) }
        switch self {
        case .workflowCreated(let e):
            return Self.object([("name", .string(e.name)), ("number", .integer(Int64(e.number))),
                                ("workflowId", .string(e.workflowId))])
        case .runCreated(let e):
            var out: [UInt8] = [UInt8(ascii: "{")]
            out.reserveCapacity(256)
            var fields = JSONFieldWriter()
            fields.add("arm", .string(e.arm.rawValue), to: &out)
            fields.add("context", e.context, to: &out)
            fields.add("eventType", optional(e.eventType), to: &out)
            fields.add("objectToken", optional(e.objectToken), to: &out)
            fields.add("objectType", optional(e.objectType), to: &out)
            fields.add("parameters", e.parameters, to: &out)
            fields.add("queue", .string(e.queue.rawValue), to: &out)
            fields.add("quotaDay", .string(e.quotaDay), to: &out)
            fields.add("rolloutId", optional(e.rolloutId), to: &out)
            fields.add("runId", .string(e.runId), to: &out)
            fields.key("source", to: &out)
            out.append(UInt8(ascii: "{"))
            var source = JSONFieldWriter()
            source.add("kind", .string(e.source.kind), to: &out)
            source.add("reference", optional(e.source.reference), to: &out)
            source.add("row", e.source.row.map { .integer(Int64($0)) }, to: &out)
            out.append(UInt8(ascii: "}"))
            fields.add("stepOverrides", e.stepOverrides, to: &out)
            fields.add("version", .integer(Int64(e.version)), to: &out)
            fields.add("workflowId", .string(e.workflowId), to: &out)
            out.append(UInt8(ascii: "}"))
            return out
        case .runsImported(let e):
            var out: [UInt8] = [UInt8(ascii: "{")]
            out.reserveCapacity(160 + e.rows.count * 96)
            var fields = JSONFieldWriter()
            fields.add("importerRunId", .string(e.importerRunId), to: &out)
            fields.add("quotaDay", .string(e.quotaDay), to: &out)
            fields.key("rows", to: &out)
            out.append(UInt8(ascii: "["))
            for (i, row) in e.rows.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "{"))
                var member = JSONFieldWriter()
                member.add("eventType", optional(row.eventType), to: &out)
                member.add("objectToken", optional(row.objectToken), to: &out)
                member.add("objectType", optional(row.objectType), to: &out)
                member.add("parameters", row.parameters, to: &out)
                member.add("row", .integer(Int64(row.row)), to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
            fields.add("runIdPrefix", .string(e.runIdPrefix), to: &out)
            fields.add("version", .integer(Int64(e.version)), to: &out)
            fields.add("workflowId", .string(e.workflowId), to: &out)
            out.append(UInt8(ascii: "}"))
            return out
        case .routeMatched(let e):
            return Self.object([("route", optional(e.route)), ("runId", .string(e.runId))])
        case .stepStarted(let e):
            return Self.object([("attempt", .integer(Int64(e.attempt))), ("idempotencyKey", optional(e.idempotencyKey)),
                                ("runId", .string(e.runId)), ("stepType", .string(e.stepType)),
                                ("stepUid", .string(e.stepUid))])
        case .stepCompleted(let e):
            return Self.object([("output", e.output), ("runId", .string(e.runId)), ("stepUid", .string(e.stepUid))])
        case .stepFailed(let e):
            return Self.object([("attempt", .integer(Int64(e.attempt))), ("error", .string(e.error)),
                                ("runId", .string(e.runId)), ("stepUid", .string(e.stepUid)),
                                ("willRetry", .bool(e.willRetry))])
        case .runCompleted(let e):
            return Self.object([("decision", optional(e.decision)), ("runId", .string(e.runId))])
        case .runFailed(let e):
            return Self.object([("reason", .string(e.reason)), ("runId", .string(e.runId)),
                                ("stepUid", optional(e.stepUid))])
        case .objectTagged(let e):
            return Self.object([("objectToken", .string(e.objectToken)), ("objectType", .string(e.objectType)),
                                ("runId", .string(e.runId)), ("tags", .array(e.tags.map(JSONValue.string)))])
        case .objectDecided(let e):
            return Self.object([("decision", .string(e.decision)), ("objectToken", .string(e.objectToken)),
                                ("objectType", .string(e.objectType)), ("reason", optional(e.reason)),
                                ("runId", .string(e.runId))])
        case .listItemAdded(let e), .listItemRemoved(let e):
            return Self.object([("listId", .string(e.listId)), ("runId", optional(e.runId)), ("value", e.value)])
        default:
            return nil
        }
    }

    /// The JSON text of an object of `fields`, given in sorted key order; nil values are left out.
    static func object(_ fields: [(key: String, value: JSONValue?)]) -> [UInt8] {
        assert(zip(fields, fields.dropFirst()).allSatisfy { $0.key < $1.key }, "keys out of order")
        var out: [UInt8] = [UInt8(ascii: "{")]
        var writer = JSONFieldWriter()
        for field in fields { writer.add(field.key, field.value, to: &out) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// Writes the members of one JSON object, in the order given, with the commas between them.
struct JSONFieldWriter {
    private var count = 0
    #if DEBUG
    private var last: String?
    #endif

    /// Writes `"key":` (and the comma before it); the value follows.
    mutating func key(_ key: String, to out: inout [UInt8]) {
        #if DEBUG
        assert(last.map { $0 < key } ?? true, "\(key) written after \(last ?? "")")
        last = key
        #endif
        if count > 0 { out.append(UInt8(ascii: ",")) }
        count += 1
        JSONText.appendString(key, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    /// Writes the member `key` with `value`, or nothing when `value` is nil.
    mutating func add(_ key: String, _ value: JSONValue?, to out: inout [UInt8]) {
        guard let value else { return }
        self.key(key, to: &out)
        value.write(to: &out)
    }
}
