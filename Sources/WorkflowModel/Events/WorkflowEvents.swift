// The payloads of the workflow events (stream `workflow-<id>`): creation, drafts, versions,
// activation and rollouts. `DomainEvent` lists every event type.
public import RunlogJSON

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
