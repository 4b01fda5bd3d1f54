import RunlogJSON
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
