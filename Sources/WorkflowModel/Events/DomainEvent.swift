public import RunlogJSON
import Foundation

/// Every event type of the workflow domain, with its payload. The log stores `type` as the
/// envelope's event type and the payload as JSON (camelCase keys, exactly as the fields here;
/// no key conversion, which would also rewrite the keys of user data); `docs/events.md` lists them.
/// Each type name ends with its payload version (`.v1`); a changed payload gets a new version and
/// the old decoder stays.
public enum DomainEvent: Sendable, Hashable {
    // Workflows: stream `workflow-<id>`
    case workflowCreated(WorkflowCreated)
    case draftSaved(DraftSaved)
    case versionPublished(VersionPublished)
    case versionDescriptionEdited(VersionDescriptionEdited)
    case versionActivated(VersionActivated)
    case workflowDeactivated(WorkflowDeactivated)
    case rolloutStaged(RolloutStaged)
    case rolloutPercentageChanged(RolloutPercentageChanged)
    case rolloutPromoted(RolloutPromoted)
    case rolloutEnded(RolloutEnded)
    // Runs: stream `run-<id>`
    /// Boxed: by far the largest payload, it would make every event as large (a replay moves
    /// each decoded event several times).
    indirect case runCreated(RunCreated)
    /// The runs an importer run created from one batch of rows, in one event: stream
    /// `imported-runs-<importer run id>`. Each run's own events follow on its `run-<id>` stream.
    indirect case runsImported(RunsImported)
    case routeMatched(RouteMatched)
    case stepStarted(StepStarted)
    case stepCompleted(StepCompleted)
    case stepFailed(StepFailed)
    case runCompleted(RunCompleted)
    case runFailed(RunFailed)
    /// A queued run that will not execute (its job was stopped).
    case runCancelled(RunCancelled)
    // Objects: stream `object-<type>-<token>`
    case objectEventRecorded(ObjectEventRecorded)
    case objectTagged(ObjectTagged)
    case objectFieldSet(ObjectFieldSet)
    case objectDecided(ObjectDecided)
    case objectRedacted(ObjectRedacted)
    // Lists: stream `list-<id>`
    case listItemAdded(ListItemChanged)
    case listItemRemoved(ListItemChanged)

    /// The envelope's event type.
    public var type: String {
        switch self {
        case .workflowCreated: "workflow.created.v1"
        case .draftSaved: "workflow.draft_saved.v1"
        case .versionPublished: "workflow.version_published.v1"
        case .versionDescriptionEdited: "workflow.version_description_edited.v1"
        case .versionActivated: "workflow.version_activated.v1"
        case .workflowDeactivated: "workflow.deactivated.v1"
        case .rolloutStaged: "workflow.rollout_staged.v1"
        case .rolloutPercentageChanged: "workflow.rollout_percentage_changed.v1"
        case .rolloutPromoted: "workflow.rollout_promoted.v1"
        case .rolloutEnded: "workflow.rollout_ended.v1"
        case .runCreated: "run.created.v1"
        case .runsImported: "run.batch_imported.v1"
        case .routeMatched: "run.route_matched.v1"
        case .stepStarted: "run.step_started.v1"
        case .stepCompleted: "run.step_completed.v1"
        case .stepFailed: "run.step_failed.v1"
        case .runCompleted: "run.completed.v1"
        case .runFailed: "run.failed.v1"
        case .runCancelled: "run.cancelled.v1"
        case .objectEventRecorded: "object.event_recorded.v1"
        case .objectTagged: "object.tagged.v1"
        case .objectFieldSet: "object.field_set.v1"
        case .objectDecided: "object.decided.v1"
        case .objectRedacted: "object.redacted.v1"
        case .listItemAdded: "list.item_added.v1"
        case .listItemRemoved: "list.item_removed.v1"
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// The payload as JSON bytes.
    public func payload() -> [UInt8] {
        fastPayload() ?? encodedPayload()
    }

    /// The payload as `JSONEncoder` writes it.
    func encodedPayload() -> [UInt8] {
        func encode<T: Encodable>(_ value: T) -> [UInt8] {
            // Encoding these plain structs cannot fail.
            Array((try? Self.encoder.encode(value)) ?? Data("{}".utf8))
        }
        switch self {
        case .workflowCreated(let e): return encode(e)
        case .draftSaved(let e): return encode(e)
        case .versionPublished(let e): return encode(e)
        case .versionDescriptionEdited(let e): return encode(e)
        case .versionActivated(let e): return encode(e)
        case .workflowDeactivated(let e): return encode(e)
        case .rolloutStaged(let e): return encode(e)
        case .rolloutPercentageChanged(let e): return encode(e)
        case .rolloutPromoted(let e): return encode(e)
        case .rolloutEnded(let e): return encode(e)
        case .runCreated(let e): return encode(e)
        case .runsImported(let e): return encode(e)
        case .routeMatched(let e): return encode(e)
        case .stepStarted(let e): return encode(e)
        case .stepCompleted(let e): return encode(e)
        case .stepFailed(let e): return encode(e)
        case .runCompleted(let e): return encode(e)
        case .runFailed(let e): return encode(e)
        case .runCancelled(let e): return encode(e)
        case .objectEventRecorded(let e): return encode(e)
        case .objectTagged(let e): return encode(e)
        case .objectFieldSet(let e): return encode(e)
        case .objectDecided(let e): return encode(e)
        case .objectRedacted(let e): return encode(e)
        case .listItemAdded(let e): return encode(e)
        case .listItemRemoved(let e): return encode(e)
        }
    }

    /// Whether `type` names an event of this domain (written only by the workflow engine).
    public static func isDomainType(_ type: String) -> Bool {
        ["workflow.", "run.", "object.", "list."].contains { type.hasPrefix($0) }
    }

    /// Every event type of the domain, as stored. Decoding switches over these rather than over
    /// type strings, which a `switch` compares one case after another.
    package enum Kind: String, CaseIterable {
        case workflowCreated = "workflow.created.v1"
        case draftSaved = "workflow.draft_saved.v1"
        case versionPublished = "workflow.version_published.v1"
        case versionDescriptionEdited = "workflow.version_description_edited.v1"
        case versionActivated = "workflow.version_activated.v1"
        case workflowDeactivated = "workflow.deactivated.v1"
        case rolloutStaged = "workflow.rollout_staged.v1"
        case rolloutPercentageChanged = "workflow.rollout_percentage_changed.v1"
        case rolloutPromoted = "workflow.rollout_promoted.v1"
        case rolloutEnded = "workflow.rollout_ended.v1"
        case runCreated = "run.created.v1"
        case runsImported = "run.batch_imported.v1"
        case routeMatched = "run.route_matched.v1"
        case stepStarted = "run.step_started.v1"
        case stepCompleted = "run.step_completed.v1"
        case stepFailed = "run.step_failed.v1"
        case runCompleted = "run.completed.v1"
        case runFailed = "run.failed.v1"
        case runCancelled = "run.cancelled.v1"
        case objectEventRecorded = "object.event_recorded.v1"
        case objectTagged = "object.tagged.v1"
        case objectFieldSet = "object.field_set.v1"
        case objectDecided = "object.decided.v1"
        case objectRedacted = "object.redacted.v1"
        case listItemAdded = "list.item_added.v1"
        case listItemRemoved = "list.item_removed.v1"

        /// Each kind with its type's UTF-8; the workflow events, the rarest, last.
        private static let byBytes: [(Kind, [UInt8])] =
            (allCases.filter { !$0.isWorkflowEvent } + allCases.filter(\.isWorkflowEvent)).map { ($0, Array($0.rawValue.utf8)) }

        var isWorkflowEvent: Bool { rawValue.hasPrefix("workflow.") }

        /// The kind whose type's UTF-8 is `bytes` (without making a String of it), or nil.
        package init?(_ bytes: UnsafeRawBufferPointer) {
            for (kind, candidate) in Self.byBytes where candidate.count == bytes.count {
                if candidate.withUnsafeBytes({ bytes.equals($0) }) {
                    self = kind
                    return
                }
            }
            return nil
        }
    }

    /// Decodes a stored event; nil for event types outside this domain.
    public static func decode(type: String, payload: [UInt8]) throws -> DomainEvent? {
        guard let kind = Kind(rawValue: type) else { return nil }
        var ids = RepeatedIds()
        return try payload.withUnsafeBytes { try decode(kind, payload: $0, ids: &ids) }
    }

    /// Ids that consecutive payloads of a log repeat: a run's events are appended together and
    /// runs of one workflow are created in batches. A replay keeps them from one event to the
    /// next so that a repeated id is read as the same String instead of a new one.
    package struct RepeatedIds {
        package init() {}
        var runId = RepeatedString()
        var workflowId = RepeatedString()
        /// A run source's reference: the importer run, job or task of many runs in a row.
        var reference = RepeatedString()
    }

    /// Decodes a stored event from bytes in place, reusing the strings of `ids` (and keeping
    /// new ones there). Without `rowDetails`, the rows of a `run.batch_imported` are read with
    /// null parameters (checked, not built): for read models that keep no runs and only count
    /// them, as the engine's does.
    package static func decode(_ kind: Kind, payload: UnsafeRawBufferPointer, ids: inout RepeatedIds,
                       rowDetails: Bool = true) throws -> DomainEvent {
        if let event = try fastDecode(kind, payload: payload, ids: &ids, rowDetails: rowDetails) { return event }
        let decoder = JSONDecoder()
        let data = Data(payload)
        func d<T: Decodable>(_: T.Type) throws -> T { try decoder.decode(T.self, from: data) }
        switch kind {
        case .workflowCreated: return .workflowCreated(try d(WorkflowCreated.self))
        case .draftSaved: return .draftSaved(try d(DraftSaved.self))
        case .versionPublished: return .versionPublished(try d(VersionPublished.self))
        case .versionDescriptionEdited: return .versionDescriptionEdited(try d(VersionDescriptionEdited.self))
        case .versionActivated: return .versionActivated(try d(VersionActivated.self))
        case .workflowDeactivated: return .workflowDeactivated(try d(WorkflowDeactivated.self))
        case .rolloutStaged: return .rolloutStaged(try d(RolloutStaged.self))
        case .rolloutPercentageChanged: return .rolloutPercentageChanged(try d(RolloutPercentageChanged.self))
        case .rolloutPromoted: return .rolloutPromoted(try d(RolloutPromoted.self))
        case .rolloutEnded: return .rolloutEnded(try d(RolloutEnded.self))
        case .runCreated: return .runCreated(try d(RunCreated.self))
        case .runsImported: return .runsImported(try d(RunsImported.self))
        case .routeMatched: return .routeMatched(try d(RouteMatched.self))
        case .stepStarted: return .stepStarted(try d(StepStarted.self))
        case .stepCompleted: return .stepCompleted(try d(StepCompleted.self))
        case .stepFailed: return .stepFailed(try d(StepFailed.self))
        case .runCompleted: return .runCompleted(try d(RunCompleted.self))
        case .runFailed: return .runFailed(try d(RunFailed.self))
        case .runCancelled: return .runCancelled(try d(RunCancelled.self))
        case .objectEventRecorded: return .objectEventRecorded(try d(ObjectEventRecorded.self))
        case .objectTagged: return .objectTagged(try d(ObjectTagged.self))
        case .objectFieldSet: return .objectFieldSet(try d(ObjectFieldSet.self))
        case .objectDecided: return .objectDecided(try d(ObjectDecided.self))
        case .objectRedacted: return .objectRedacted(try d(ObjectRedacted.self))
        case .listItemAdded: return .listItemAdded(try d(ListItemChanged.self))
        case .listItemRemoved: return .listItemRemoved(try d(ListItemChanged.self))
        }
    }
}

// MARK: Workflow events

public struct WorkflowCreated: Codable, Sendable, Hashable {
    public var workflowId: String
    public var name: String
    /// A stable small integer for APIs that address workflows by number.
    public var number: Int

    package init(workflowId: String, name: String, number: Int) {
        self.workflowId = workflowId
        self.name = name
        self.number = number
    }
}

public struct DraftSaved: Codable, Sendable, Hashable {
    public var workflowId: String
    /// 1, 2, … : the `If-Match` value of the next save.
    public var draftVersion: Int
    public var definition: JSONValue

    package init(workflowId: String, draftVersion: Int, definition: JSONValue) {
        self.workflowId = workflowId
        self.draftVersion = draftVersion
        self.definition = definition
    }
}

public struct VersionPublished: Codable, Sendable, Hashable {
    public var workflowId: String
    public var version: Int
    public var definition: JSONValue
    public var description: String
    /// The published version this one copies, for a revert.
    public var revertedFrom: Int?

    package init(workflowId: String, version: Int, definition: JSONValue, description: String, revertedFrom: Int? = nil) {
        self.workflowId = workflowId
        self.version = version
        self.definition = definition
        self.description = description
        self.revertedFrom = revertedFrom
    }
}

public struct VersionDescriptionEdited: Codable, Sendable, Hashable {
    public var workflowId: String
    public var version: Int
    public var description: String

    package init(workflowId: String, version: Int, description: String) {
        self.workflowId = workflowId
        self.version = version
        self.description = description
    }
}

public struct VersionActivated: Codable, Sendable, Hashable {
    public var workflowId: String
    public var version: Int

    package init(workflowId: String, version: Int) {
        self.workflowId = workflowId
        self.version = version
    }
}

public struct WorkflowDeactivated: Codable, Sendable, Hashable {
    public var workflowId: String

    package init(workflowId: String) {
        self.workflowId = workflowId
    }
}

public struct RolloutStaged: Codable, Sendable, Hashable {
    public var workflowId: String
    /// Also the seed of the bucket hash.
    public var rolloutId: String
    public var treatmentVersion: Int
    public var controlVersion: Int
    /// 0–100 with two decimals.
    public var percentage: Double
    /// For API triggers: the parameter used as the sticky key (else the run id).
    public var stickyField: String?

    package init(workflowId: String, rolloutId: String, treatmentVersion: Int, controlVersion: Int, percentage: Double, stickyField: String? = nil) {
        self.workflowId = workflowId
        self.rolloutId = rolloutId
        self.treatmentVersion = treatmentVersion
        self.controlVersion = controlVersion
        self.percentage = percentage
        self.stickyField = stickyField
    }
}

public struct RolloutPercentageChanged: Codable, Sendable, Hashable {
    public var workflowId: String
    public var rolloutId: String
    public var percentage: Double

    package init(workflowId: String, rolloutId: String, percentage: Double) {
        self.workflowId = workflowId
        self.rolloutId = rolloutId
        self.percentage = percentage
    }
}

public struct RolloutPromoted: Codable, Sendable, Hashable {
    public var workflowId: String
    public var rolloutId: String
    public var version: Int

    package init(workflowId: String, rolloutId: String, version: Int) {
        self.workflowId = workflowId
        self.rolloutId = rolloutId
        self.version = version
    }
}

public struct RolloutEnded: Codable, Sendable, Hashable {
    public var workflowId: String
    public var rolloutId: String

    package init(workflowId: String, rolloutId: String) {
        self.workflowId = workflowId
        self.rolloutId = rolloutId
    }
}

// MARK: Run events

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

// MARK: Object and list events

/// Object data in the log: AES-GCM under the object's own key, which is kept outside the hash
/// chain. Redacting an object destroys the key; the ciphertext (and so the chain) stays.
public struct SealedData: Codable, Sendable, Hashable {
    /// Base64 of nonce ‖ ciphertext ‖ tag.
    public var sealed: String

    package init(sealed: String) {
        self.sealed = sealed
    }
}

public struct ObjectEventRecorded: Codable, Sendable, Hashable {
    public var eventId: String
    public var objectType: String
    public var objectToken: String
    public var eventType: String
    /// UTC ms when it happened (as posted).
    public var occurredAt: Int64
    public var data: SealedData

    package init(eventId: String, objectType: String, objectToken: String, eventType: String, occurredAt: Int64, data: SealedData) {
        self.eventId = eventId
        self.objectType = objectType
        self.objectToken = objectToken
        self.eventType = eventType
        self.occurredAt = occurredAt
        self.data = data
    }
}

public struct ObjectTagged: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var tags: [String]
    public var runId: String

    package init(objectType: String, objectToken: String, tags: [String], runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.tags = tags
        self.runId = runId
    }
}

public struct ObjectFieldSet: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var field: String
    public var value: SealedData
    public var runId: String

    package init(objectType: String, objectToken: String, field: String, value: SealedData, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.field = field
        self.value = value
        self.runId = runId
    }
}

public struct ObjectDecided: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    /// `approved` or `declined`.
    public var decision: String
    public var reason: String?
    public var runId: String

    package init(objectType: String, objectToken: String, decision: String, reason: String? = nil, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.decision = decision
        self.reason = reason
        self.runId = runId
    }
}

public struct ObjectRedacted: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var runId: String

    package init(objectType: String, objectToken: String, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.runId = runId
    }
}

public struct ListItemChanged: Codable, Sendable, Hashable {
    public var listId: String
    public var value: JSONValue
    public var runId: String?

    package init(listId: String, value: JSONValue, runId: String? = nil) {
        self.listId = listId
        self.value = value
        self.runId = runId
    }
}

/// Stream names of the domain.
public enum Streams {
    public static func workflow(_ id: String) -> String { "workflow-" + id }
    public static func run(_ id: String) -> String { "run-" + id }
    /// The batches of runs an importer run created (`run.batch_imported`).
    public static func importedRuns(_ importerRunId: String) -> String { "imported-runs-" + importerRunId }
    public static func object(_ type: String, _ token: String) -> String { "object-\(type)-\(token)" }
    public static func list(_ id: String) -> String { "list-" + id }
}

/// A stored event with its payload decoded (nil: a type outside this domain; a failure: a
/// payload that does not decode). Decoding needs no read model, so the engine does it on the
/// task that follows the log, before the actor folds the event in.
package struct DecodedEvent: Sendable {
    package let position: UInt64
    package let stream: String
    package let streamVersion: UInt64
    package let recordedAt: Int64
    package let actor: String?
    package let event: Result<DomainEvent?, DecodingFailure>

    package struct DecodingFailure: Error {}

    /// Decodes `payload`, of type `type`. Without `runUpdates`, the events that only change a run
    /// after its creation are not decoded (`event` is nil), nor the rows' parameters of a
    /// `run.batch_imported`: a state that keeps no runs has no use for them.
    package init(position: UInt64, stream: String, streamVersion: UInt64, recordedAt: Int64, actor: String?,
                 type: String, payload: UnsafeRawBufferPointer, ids: inout DomainEvent.RepeatedIds, runUpdates: Bool = true) {
        self.position = position
        self.stream = stream
        self.streamVersion = streamVersion
        self.recordedAt = recordedAt
        self.actor = actor
        guard let kind = DomainEvent.Kind(rawValue: type), runUpdates || !kind.isRunUpdate else {
            event = .success(nil)
            return
        }
        do {
            event = .success(try DomainEvent.decode(kind, payload: payload, ids: &ids, rowDetails: runUpdates))
        } catch {
            event = .failure(DecodingFailure())
        }
    }
}
