// The payloads of the run events (stream `run-<id>`, and `imported-runs-<importer run id>` for
// imported batches): creation with its source, arm and queue, routes, steps and the run's end.
public import RunlogJSON

/// Which side of a rollout a run took.
public enum Arm: String, Codable, Sendable, Hashable, CaseIterable {
    case treatment, control, none
}

/// Where a run came from.
public struct RunSource: Codable, Sendable, Hashable {
    /// `api`, `event`, `action`, `importer` or `workflow`.
    public var kind: String
    /// The posted event's id, the importer run, or the parent run.
    public var reference: String?
    /// The importer row, for importer-created runs.
    public var row: Int?

    public init(kind: String, reference: String? = nil, row: Int? = nil) {
        self.kind = kind
        self.reference = reference
        self.row = row
    }
}

public enum RunQueue: String, Codable, Sendable, Hashable {
    case realtime, batch
}

public struct RunCreated: Codable, Sendable, Hashable {
    public var runId: String
    public var workflowId: String
    public var version: Int
    public var arm: Arm
    public var rolloutId: String?
    public var source: RunSource
    /// API parameters or action inputs.
    public var parameters: JSONValue
    public var objectType: String?
    public var objectToken: String?
    /// The posted event's type and data, for event-triggered runs (data is in the object's stream).
    public var eventType: String?
    public var queue: RunQueue
    /// UTC day the run counts against for the quota, `YYYY-MM-DD`.
    public var quotaDay: String
    /// Extra top-level keys of the run's context (an object), e.g. `apicontent` and `custom_data`
    /// of a batch task; never one of the keys the engine sets (`run`, `parameters`, `inputs`,
    /// `object`, `event`).
    public var context: JSONValue? = nil
    /// Per-step changes for this run, by step uid: `{"s1": {"parameters": {…}, "account": "acc_…"}}`.
    /// `parameters` are laid over the step's own (key by key); `account` sets the step's account.
    public var stepOverrides: JSONValue? = nil

    package init(runId: String, workflowId: String, version: Int, arm: Arm, rolloutId: String? = nil, source: RunSource, parameters: JSONValue, objectType: String? = nil, objectToken: String? = nil, eventType: String? = nil, queue: RunQueue, quotaDay: String, context: JSONValue? = nil, stepOverrides: JSONValue? = nil) {
        self.runId = runId
        self.workflowId = workflowId
        self.version = version
        self.arm = arm
        self.rolloutId = rolloutId
        self.source = source
        self.parameters = parameters
        self.objectType = objectType
        self.objectToken = objectToken
        self.eventType = eventType
        self.queue = queue
        self.quotaDay = quotaDay
        self.context = context
        self.stepOverrides = stepOverrides
    }
}

/// The runs an importer run created from one batch of rows: run `i` of the batch is the
/// `run.created` that `created(at: i)` gives (on the batch queue, source `importer` with the
/// importer run and the row, no rollout arm). One event per batch instead of one per row keeps
/// the writer's work per imported row to one run-table entry (docs/importers.md).
public struct RunsImported: Codable, Sendable, Hashable {
    public var workflowId: String
    public var version: Int
    public var importerRunId: String
    /// Run `i`'s id is this prefix and `i` as eight lowercase hex digits (`runId(at:)`), so the
    /// ids of a batch sort in row order and are not stored one by one.
    public var runIdPrefix: String
    /// UTC day the runs count against for the quota, `YYYY-MM-DD`.
    public var quotaDay: String
    public var rows: [ImportedRow]

    public init(workflowId: String, version: Int, importerRunId: String, runIdPrefix: String, quotaDay: String,
                rows: [ImportedRow]) {
        self.workflowId = workflowId
        self.version = version
        self.importerRunId = importerRunId
        self.runIdPrefix = runIdPrefix
        self.quotaDay = quotaDay
        self.rows = rows
    }

    /// The most runs one event holds (ids give the index eight hex digits).
    public static let maxRows = 65_536

    /// The id of run `index` of the batch.
    public func runId(at index: Int) -> String {
        Self.runId(prefix: runIdPrefix, index: index)
    }

    package static func runId(prefix: String, index: Int) -> String {
        let digits: StaticString = "0123456789abcdef"
        var text = Array(prefix.utf8)
        text.reserveCapacity(text.count + 8)
        digits.withUTF8Buffer { hex in
            for shift in stride(from: 28, through: 0, by: -4) { text.append(hex[(index >> shift) & 0xF]) }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The `run.created` of run `index`, as a run created on its own would have it.
    public func created(at index: Int) -> RunCreated {
        let row = rows[index]
        return RunCreated(
            runId: runId(at: index), workflowId: workflowId, version: version, arm: .none, rolloutId: nil,
            source: RunSource(kind: "importer", reference: importerRunId, row: row.row), parameters: row.parameters,
            objectType: row.objectType, objectToken: row.objectToken, eventType: row.eventType, queue: .batch,
            quotaDay: quotaDay)
    }
}

/// One row of `RunsImported`: what a `run.created` of it would hold beyond the batch's fields.
public struct ImportedRow: Codable, Sendable, Hashable {
    /// The row's number in the importer's data (the header is row 0).
    public var row: Int
    public var parameters: JSONValue
    public var objectType: String?
    public var objectToken: String?
    public var eventType: String?

    public init(row: Int, parameters: JSONValue, objectType: String? = nil, objectToken: String? = nil,
                eventType: String? = nil) {
        self.row = row
        self.parameters = parameters
        self.objectType = objectType
        self.objectToken = objectToken
        self.eventType = eventType
    }
}

public struct RouteMatched: Codable, Sendable, Hashable {
    public var runId: String
    /// nil when no route matched (the run completes with no steps).
    public var route: String?

    package init(runId: String, route: String? = nil) {
        self.runId = runId
        self.route = route
    }
}

public struct StepStarted: Codable, Sendable, Hashable {
    public var runId: String
    public var stepUid: String
    public var stepType: String
    public var attempt: Int
    /// Sent with outbound calls so a retried call is recognised by the receiver.
    public var idempotencyKey: String?

    package init(runId: String, stepUid: String, stepType: String, attempt: Int, idempotencyKey: String? = nil) {
        self.runId = runId
        self.stepUid = stepUid
        self.stepType = stepType
        self.attempt = attempt
        self.idempotencyKey = idempotencyKey
    }
}

public struct StepCompleted: Codable, Sendable, Hashable {
    public var runId: String
    public var stepUid: String
    /// What the step produced (an HTTP response, the value set, …).
    public var output: JSONValue

    package init(runId: String, stepUid: String, output: JSONValue) {
        self.runId = runId
        self.stepUid = stepUid
        self.output = output
    }
}

public struct StepFailed: Codable, Sendable, Hashable {
    public var runId: String
    public var stepUid: String
    public var attempt: Int
    public var error: String
    public var willRetry: Bool

    package init(runId: String, stepUid: String, attempt: Int, error: String, willRetry: Bool) {
        self.runId = runId
        self.stepUid = stepUid
        self.attempt = attempt
        self.error = error
        self.willRetry = willRetry
    }
}

public struct RunCompleted: Codable, Sendable, Hashable {
    public var runId: String
    /// `approved`, `declined` or nil.
    public var decision: String?

    package init(runId: String, decision: String? = nil) {
        self.runId = runId
        self.decision = decision
    }
}

public struct RunFailed: Codable, Sendable, Hashable {
    public var runId: String
    public var stepUid: String?
    public var reason: String

    package init(runId: String, stepUid: String? = nil, reason: String) {
        self.runId = runId
        self.stepUid = stepUid
        self.reason = reason
    }
}

public struct RunCancelled: Codable, Sendable, Hashable {
    public var runId: String
    /// Why, e.g. "job job_… was stopped".
    public var reason: String

    package init(runId: String, reason: String) {
        self.runId = runId
        self.reason = reason
    }
}
