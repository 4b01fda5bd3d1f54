public import WorkflowModel
public import RunlogJSON
import EventLog
import Foundation

/// Identifiers: a prefix and the 32 hex digits of a time-ordered UUID (48 bits of milliseconds,
/// 74 random bits), so ids sort by creation and do not collide at import rates.
enum Ids {
    static func make(_ prefix: String) -> String {
        let digits: StaticString = "0123456789abcdef"
        var text = [UInt8](prefix.utf8)
        text.reserveCapacity(text.count + 32)
        withUnsafeBytes(of: UUID.timeOrdered().uuid) { bytes in
            digits.withUTF8Buffer { hex in
                for byte in bytes {
                    text.append(hex[Int(byte >> 4)])
                    text.append(hex[Int(byte & 0x0F)])
                }
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The prefix of a batch of ids (`RunsImported.runIdPrefix`): a prefix and the first 24 hex
    /// digits of a time-ordered UUID, to which each id adds eight. The UUIDs of one process
    /// differ in their first eight bytes (`UUID.timeOrdered()` is strictly increasing), so
    /// batches never share an id, and their ids sort by creation like `make`'s.
    static func batchPrefix(_ prefix: String) -> String {
        String(make(prefix).dropLast(8))
    }
}

extension WorkflowEngine {
    // MARK: Workflows and drafts

    /// Creates a workflow with no draft and no version yet.
    public func createWorkflow(name: String, actor: String? = nil) async throws(WorkflowError) -> WorkflowRecord {
        let trimmed = name.first?.isWhitespace == false && name.last?.isWhitespace == false
            ? name : name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 200 else {
            throw .invalid(field: "name", value: .string(name), rule: "must be 1 to 200 bytes, not only spaces")
        }
        let id = Ids.make("wf_")
        let number = nextNumber()
        let event = DomainEvent.workflowCreated(WorkflowCreated(workflowId: id, name: trimmed, number: number))
        try await append([StreamWrite(stream: Streams.workflow(id), expected: .noStream,
                                      events: [event.newEvent(metadata: Self.metadata(actor))])])
        return state.workflows[id]!
    }

    /// Saves the draft if its version is still `expectedDraftVersion` (0 when there is no draft
    /// yet; nil to save unconditionally). The definition is validated and its conditions compiled
    /// first: a malformed one is rejected with its path and operator, and nothing is saved.
    public func saveDraft(
        workflowId: String,
        definition: JSONValue,
        expectedDraftVersion: Int?,
        actor: String? = nil
    ) async throws(WorkflowError) -> Draft {
        // Unknown keys first: a misspelt key explains the other errors it causes.
        try WorkflowDefinition.checkKeys(definition)
        try WorkflowDefinition(json: definition).checkConditionPaths()
        let record = try await mutateWorkflow(workflowId, actor: actor) { workflow throws(WorkflowError) in
            let current = workflow.draft?.version ?? 0
            if let expected = expectedDraftVersion, expected != current {
                throw WorkflowError(.preconditionFailed,
                                    "the draft of \(workflowId) is at version \(current), not \(expected); reload it and save again")
            }
            return [.draftSaved(DraftSaved(workflowId: workflowId, draftVersion: current + 1, definition: definition))]
        }
        return record.draft!
    }

    // MARK: Versions

    /// Freezes the draft as the next version. With `rolloutPercentage`, and a version active,
    /// stages a rollout of the new version against the active one; with `activate`, makes it
    /// active at once.
    public func publish(
        workflowId: String,
        description: String,
        activate: Bool = false,
        rolloutPercentage: Double? = nil,
        stickyField: String? = nil,
        actor: String? = nil,
        ifMatch: UInt64? = nil
    ) async throws(WorkflowError) -> VersionRecord {
        if activate && rolloutPercentage != nil {
            throw .invalid(field: "activate", value: .bool(true), rule: "publish either activates or stages a rollout, not both")
        }
        let record = try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            guard let draft = workflow.draft else {
                throw WorkflowError(.conflict, "workflow \(workflowId) has no draft to publish")
            }
            guard workflow.publishedDraftVersion != draft.version else {
                throw WorkflowError(.conflict, "draft version \(draft.version) of \(workflowId) is already published as "
                                    + "version \(workflow.latestVersion); save a change first")
            }
            let version = workflow.latestVersion + 1
            var events: [DomainEvent] = [.versionPublished(VersionPublished(
                workflowId: workflowId, version: version, definition: draft.definition,
                description: description, revertedFrom: nil
            ))]
            if activate {
                guard workflow.rollout == nil else { throw Self.rolloutInProgress(workflowId) }
                events.append(.versionActivated(VersionActivated(workflowId: workflowId, version: version)))
            } else if let percentage = rolloutPercentage {
                let definition = try WorkflowDefinition(json: draft.definition)
                events += try stageRolloutEvents(workflow, version: version, definition: definition,
                                                 percentage: percentage, stickyField: stickyField)
            }
            return events
        }
        return record.versions.last!
    }

    /// Changes the description of a published version (the only thing about it that can change).
    public func editDescription(workflowId: String, version: Int, description: String,
                                actor: String? = nil, ifMatch: UInt64? = nil) async throws(WorkflowError) -> VersionRecord {
        let record = try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            try Self.requireVersion(workflow, version)
            return [.versionDescriptionEdited(VersionDescriptionEdited(workflowId: workflowId, version: version,
                                                                       description: description))]
        }
        return record.versions[version - 1]
    }

    /// Makes a published version the one new runs use.
    public func activate(workflowId: String, version: Int, actor: String? = nil,
                         ifMatch: UInt64? = nil) async throws(WorkflowError) -> WorkflowRecord {
        try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            try Self.requireVersion(workflow, version)
            guard workflow.rollout == nil else { throw Self.rolloutInProgress(workflowId) }
            if workflow.active == version { return [] }
            return [.versionActivated(VersionActivated(workflowId: workflowId, version: version))]
        }
    }

    /// Stops the workflow from starting new runs.
    public func deactivate(workflowId: String, actor: String? = nil,
                           ifMatch: UInt64? = nil) async throws(WorkflowError) -> WorkflowRecord {
        try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            guard workflow.rollout == nil else { throw Self.rolloutInProgress(workflowId) }
            guard workflow.active != nil else { return [] }
            return [.workflowDeactivated(WorkflowDeactivated(workflowId: workflowId))]
        }
    }

    /// Creates version N+1 with the content of version `version` (and the draft with it);
    /// history is never rewritten. With `activate`, the new version becomes active.
    public func revert(workflowId: String, to version: Int, activate: Bool = false,
                       actor: String? = nil, ifMatch: UInt64? = nil) async throws(WorkflowError) -> VersionRecord {
        let record = try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            try Self.requireVersion(workflow, version)
            if activate && workflow.rollout != nil { throw Self.rolloutInProgress(workflowId) }
            let source = workflow.versions[version - 1]
            let next = workflow.latestVersion + 1
            var events: [DomainEvent] = [
                .draftSaved(DraftSaved(workflowId: workflowId, draftVersion: (workflow.draft?.version ?? 0) + 1,
                                       definition: source.definition)),
                .versionPublished(VersionPublished(workflowId: workflowId, version: next, definition: source.definition,
                                                   description: "Revert to version \(version)", revertedFrom: version)),
            ]
            if activate { events.append(.versionActivated(VersionActivated(workflowId: workflowId, version: next))) }
            return events
        }
        return record.versions.last!
    }

    static func requireVersion(_ workflow: WorkflowRecord, _ version: Int) throws(WorkflowError) {
        guard version >= 1 else {
            throw .invalid(field: "version", value: .integer(Int64(version)), rule: "must be 1 or more")
        }
        guard version <= workflow.latestVersion else {
            throw WorkflowError(.notFound, "workflow \(workflow.id) has no version \(version) (latest is \(workflow.latestVersion))")
        }
    }

    static func rolloutInProgress(_ id: String) -> WorkflowError {
        WorkflowError(.conflict, "workflow \(id) has a rollout in progress; promote it (100%) or end it (0%) first")
    }

    // MARK: Rollouts

    /// Stages a rollout of published `version` against the active version at `percentage`.
    public func stageRollout(workflowId: String, version: Int, percentage: Double, stickyField: String? = nil,
                             actor: String? = nil, ifMatch: UInt64? = nil) async throws(WorkflowError) -> WorkflowRecord {
        try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            try Self.requireVersion(workflow, version)
            let definition = try definitionOf(workflow, version)
            return try stageRolloutEvents(workflow, version: version, definition: definition,
                                          percentage: percentage, stickyField: stickyField)
        }
    }

    /// Changes the rollout's percentage: 100 promotes the treatment, 0 ends it keeping the control.
    /// Raising it never moves a key out of treatment.
    public func setRolloutPercentage(workflowId: String, percentage: Double,
                                     actor: String? = nil, ifMatch: UInt64? = nil) async throws(WorkflowError) -> WorkflowRecord {
        let p = try Self.validPercentage(percentage)
        return try await mutateWorkflow(workflowId, actor: actor, ifMatch: ifMatch) { workflow throws(WorkflowError) in
            guard let rollout = workflow.rollout else {
                throw WorkflowError(.conflict, "workflow \(workflowId) has no rollout in progress")
            }
            return Self.rolloutChange(workflowId, rollout, to: p)
        }
    }

    static func rolloutChange(_ workflowId: String, _ rollout: RolloutRecord, to p: Double) -> [DomainEvent] {
        switch p {
        case 100:
            return [.rolloutPromoted(RolloutPromoted(workflowId: workflowId, rolloutId: rollout.id, version: rollout.treatmentVersion)),
                    .versionActivated(VersionActivated(workflowId: workflowId, version: rollout.treatmentVersion))]
        case 0:
            return [.rolloutEnded(RolloutEnded(workflowId: workflowId, rolloutId: rollout.id))]
        default:
            return [.rolloutPercentageChanged(RolloutPercentageChanged(workflowId: workflowId, rolloutId: rollout.id, percentage: p))]
        }
    }

    func definitionOf(_ workflow: WorkflowRecord, _ version: Int) throws(WorkflowError) -> WorkflowDefinition {
        try WorkflowDefinition(json: workflow.versions[version - 1].definition)
    }

    func stageRolloutEvents(_ workflow: WorkflowRecord, version: Int, definition: WorkflowDefinition,
                            percentage: Double, stickyField: String?) throws(WorkflowError) -> [DomainEvent] {
        let p = try Self.validPercentage(percentage)
        guard workflow.rollout == nil else { throw Self.rolloutInProgress(workflow.id) }
        guard let control = workflow.active else {
            throw WorkflowError(.conflict, "workflow \(workflow.id) has no active version to roll out against; activate one first")
        }
        guard control != version else {
            throw WorkflowError(.conflict, "version \(version) of \(workflow.id) is already active")
        }
        if let stickyField {
            guard case .api(let schema, _) = definition.trigger, let field = schema.field(at: stickyField),
                  case .scalar = field.type else {
                throw .invalid(field: "sticky_field", value: .string(stickyField),
                               rule: "must name a scalar parameter of an API-triggered workflow")
            }
        }
        let rollout = RolloutRecord(id: Ids.make("ro_"), treatmentVersion: version, controlVersion: control,
                                    percentage: p, stickyField: stickyField, stagedAt: 0)
        var events: [DomainEvent] = [.rolloutStaged(RolloutStaged(
            workflowId: workflow.id, rolloutId: rollout.id, treatmentVersion: version, controlVersion: control,
            percentage: p, stickyField: stickyField
        ))]
        if p == 100 || p == 0 { events += Self.rolloutChange(workflow.id, rollout, to: p) }
        return events
    }

    /// 0 to 100 with at most two decimals.
    static func validPercentage(_ p: Double) throws(WorkflowError) -> Double {
        let hundredths = (p * 100).rounded()
        guard p.isFinite, (0...100).contains(p), abs(p * 100 - hundredths) < 1e-6 else {
            throw .invalid(field: "percentage", value: .number(p), rule: "must be from 0 to 100 with at most two decimals")
        }
        return hundredths / 100
    }
}
