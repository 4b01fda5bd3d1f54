public import EventLog
public import Foundation
public import WorkflowModel

extension DomainEvent {
    /// The event to append, with the given id and metadata.
    public func newEvent(id: UUID = .timeOrdered(), metadata: EventMetadata) -> NewEvent {
        var event = NewEvent(id: id, type: type, payload: payload(), metadata: metadata)
        // The run table folds a `run.created` from this value instead of parsing the payload
        // (an import writes hundreds of thousands): exactly what parsing the payload gives.
        if case .runCreated(var created) = self, created.context == nil, created.stepOverrides == nil {
            created.parameters = created.parameters.reparsed
            event.decoded = DomainEvent.runCreated(created)
        }
        if case .runsImported(var batch) = self {
            for i in batch.rows.indices { batch.rows[i].parameters = batch.rows[i].parameters.reparsed }
            event.decoded = DomainEvent.runsImported(batch)
        }
        return event
    }
}

extension DecodedEvent {
    /// Decodes a stored event's payload (see `DecodedEvent.init(position:…)`).
    init(_ envelope: RecordedEvent, ids: inout DomainEvent.RepeatedIds, runUpdates: Bool = true) {
        self = envelope.payload.withUnsafeBytes { payload in
            DecodedEvent(position: envelope.position, stream: envelope.stream, streamVersion: envelope.streamVersion,
                         recordedAt: envelope.recordedAt, actor: envelope.metadata.actor, type: envelope.type,
                         payload: payload, ids: &ids, runUpdates: runUpdates)
        }
    }
}

extension LoggedEvent {
    /// A stored envelope read in place, as the workflow state folds it (`EventView`'s accessors
    /// are inlinable, so this is a few loads).
    @inline(__always)
    init(_ view: EventView) {
        self.init(position: view.position, streamVersion: view.streamVersion, recordedAt: view.recordedAt,
                  streamBytes: view.streamBytes, typeBytes: view.typeBytes, payloadBytes: view.payloadBytes,
                  actorBytes: view.actorBytes)
    }
}

extension WorkflowsState {
    /// Folds one stored event in. Events of other domains only move the position; events that
    /// do not fit the state (an unknown workflow, a version that does not exist) change nothing.
    public mutating func apply(_ envelope: RecordedEvent) {
        var ids = DomainEvent.RepeatedIds()
        apply(envelope, ids: &ids)
    }

    /// `apply`, decoding the run and workflow ids and run sources through `ids`: the engine keeps
    /// one across the events it follows, so the runs of one import share the strings of their
    /// workflow id and importer run id instead of holding a copy each.
    mutating func apply(_ envelope: RecordedEvent, ids: inout DomainEvent.RepeatedIds) {
        apply(DecodedEvent(envelope, ids: &ids))
    }

    /// Folds the whole log (or up to `position`) into a new state (without runs unless `keepsRuns`).
    public static func rebuild(from store: any EventStore, upTo position: UInt64 = .max, keepsRuns: Bool = true) throws -> WorkflowsState {
        // Each run has a stream, `run-<id>`. Room for them all from the start spares `runs`
        // growing step by step, which rehashes every run id each time.
        let runs = keepsRuns ? Int(min(UInt64(try store.streamCount(prefix: "run-")), position)) : 0
        var replay = Replay(WorkflowsState(keepsRuns: keepsRuns), expectedRuns: runs)
        try store.forEachView(from: 1) { view in
            guard view.position <= position else { return false }
            replay.apply(LoggedEvent(view))
            return true
        }
        return replay.state
    }

    /// The read models as they were at `timestamp` (UTC ms): the log replayed up to the last event
    /// recorded by then.
    public static func rebuild(from store: any EventStore, asOf timestamp: Int64) throws -> WorkflowsState {
        let head = try store.head(asOf: timestamp)
        return head.position == 0 ? WorkflowsState() : try rebuild(from: store, upTo: head.position)
    }
}
