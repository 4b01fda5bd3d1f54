// The workflow records of the read models (`WorkflowsState.workflows`): a workflow with its
// draft, published versions and rollouts, current and past.
public import RunlogJSON


public struct Draft: Sendable, Equatable {
    public var version: Int
    public var definition: JSONValue
    public var savedAt: Int64
    public var savedBy: String?

    package init(version: Int, definition: JSONValue, savedAt: Int64, savedBy: String? = nil) {
        self.version = version
        self.definition = definition
        self.savedAt = savedAt
        self.savedBy = savedBy
    }
}

public struct VersionRecord: Sendable, Equatable {
    public var version: Int
    public var definition: JSONValue
    public var description: String
    public var publishedAt: Int64
    public var publishedBy: String?
    public var revertedFrom: Int?
    public var descriptionEditedAt: Int64?
    /// When it last became active.
    public var activatedAt: Int64?

    package init(version: Int, definition: JSONValue, description: String, publishedAt: Int64, publishedBy: String? = nil, revertedFrom: Int? = nil, descriptionEditedAt: Int64? = nil, activatedAt: Int64? = nil) {
        self.version = version
        self.definition = definition
        self.description = description
        self.publishedAt = publishedAt
        self.publishedBy = publishedBy
        self.revertedFrom = revertedFrom
        self.descriptionEditedAt = descriptionEditedAt
        self.activatedAt = activatedAt
    }
}

/// One percentage a rollout had from `at` (UTC ms), set by `by`.
public struct PercentageChange: Sendable, Equatable {
    public var percentage: Double
    public var at: Int64
    public var by: String?

    package init(percentage: Double, at: Int64, by: String? = nil) {
        self.percentage = percentage
        self.at = at
        self.by = by
    }
}

public struct RolloutRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case active, promoted, ended }
    public var id: String
    public var treatmentVersion: Int
    public var controlVersion: Int
    public var percentage: Double
    public var stickyField: String?
    public var stagedAt: Int64
    public var stagedBy: String?
    public var status: Status = .active
    public var finishedAt: Int64?
    /// Every percentage the rollout had, with when and by whom: the staged one, each change, and
    /// the final one (100 when promoted, 0 when ended).
    public var history: [PercentageChange] = []
    /// Runs assigned to each arm.
    public var treatmentRuns = 0
    public var controlRuns = 0

    package init(id: String, treatmentVersion: Int, controlVersion: Int, percentage: Double, stickyField: String? = nil, stagedAt: Int64, stagedBy: String? = nil, status: Status = .active, finishedAt: Int64? = nil, history: [PercentageChange] = []) {
        self.id = id
        self.treatmentVersion = treatmentVersion
        self.controlVersion = controlVersion
        self.percentage = percentage
        self.stickyField = stickyField
        self.stagedAt = stagedAt
        self.stagedBy = stagedBy
        self.status = status
        self.finishedAt = finishedAt
        self.history = history
    }
}

public struct WorkflowRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var number: Int
    public var createdAt: Int64
    public var createdBy: String?
    /// The version of the workflow's stream: the `ETag` of the workflow.
    public var streamVersion: UInt64 = 0
    public var draft: Draft?
    /// The draft version that the latest published version was made from.
    public var publishedDraftVersion: Int?
    /// Published versions; `versions[n - 1]` is version n.
    public var versions: [VersionRecord] = []
    public var active: Int?
    public var rollout: RolloutRecord?
    public var pastRollouts: [RolloutRecord] = []

    public init(id: String, name: String, number: Int, createdAt: Int64, createdBy: String?) {
        self.id = id
        self.name = name
        self.number = number
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    public var latestVersion: Int { versions.count }

    /// A version's status in the history: `active`, `treatment`, `control` or `published`.
    public func status(of version: Int) -> String {
        if let rollout, rollout.treatmentVersion == version { return "treatment" }
        if let rollout, rollout.controlVersion == version { return "control" }
        return active == version ? "active" : "published"
    }

    mutating func countRun(rolloutId: String, arm: Arm) {
        func count(_ r: inout RolloutRecord) {
            if arm == .treatment { r.treatmentRuns += 1 } else if arm == .control { r.controlRuns += 1 }
        }
        if rollout?.id == rolloutId {
            count(&rollout!)
        } else if let i = pastRollouts.firstIndex(where: { $0.id == rolloutId }) {
            count(&pastRollouts[i])
        }
    }
}
