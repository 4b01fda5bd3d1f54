// The run records of the read models: a run's summary (`RunRecord`) with its steps, and how
// each of the run's events folds into it (its binary form is in `RunRecord+Binary`).
public import RunlogJSON

public struct StepRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case running, retrying, completed, failed }
    public var uid: String
    public var type: String
    public var status: Status
    public var attempts: Int
    public var idempotencyKey: String?
    public var output: JSONValue?
    public var error: String?
    public var startedAt: Int64
    public var finishedAt: Int64?

    package init(uid: String, type: String, status: Status, attempts: Int, idempotencyKey: String? = nil, output: JSONValue? = nil, error: String? = nil, startedAt: Int64, finishedAt: Int64? = nil) {
        self.uid = uid
        self.type = type
        self.status = status
        self.attempts = attempts
        self.idempotencyKey = idempotencyKey
        self.output = output
        self.error = error
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

public struct RunRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable, CaseIterable {
        case queued, running, completed, failed
        /// Never executed: its job was stopped while it was queued.
        case cancelled

        /// Completed, failed or cancelled: nothing more happens to the run.
        public var hasEnded: Bool { self == .completed || self == .failed || self == .cancelled }
    }
    /// The `run.created` event. Without details (`detailed` false) its `parameters` are null and
    /// its `context` and `stepOverrides` nil.
    public var created: RunCreated
    public var createdAt: Int64
    /// Where `run.created` is in the log: for an imported run, its batch's `run.batch_imported`.
    public var createdPosition: UInt64
    /// The run's place in its `run.batch_imported` batch (nil for a run created on its own).
    public var createdIndex: Int?
    /// Whether `created` and the steps are whole; see `WorkflowsState.keepsRunDetails`. Without
    /// details, steps have no outputs, and a run that has ended keeps no steps at all.
    public var detailed: Bool
    public var status: Status = .queued
    public var routeDecided = false
    public var route: String?
    public var steps: [StepRecord] = []
    public var decision: String?
    public var failure: String?
    public var finishedAt: Int64?

    public var id: String { created.runId }

    package init(created: RunCreated, createdAt: Int64, createdPosition: UInt64, createdIndex: Int? = nil, detailed: Bool) {
        var created = created
        if !detailed {
            created.parameters = .null
            created.context = nil
            created.stepOverrides = nil
        }
        self.created = created
        self.createdAt = createdAt
        self.createdPosition = createdPosition
        self.createdIndex = createdIndex
        self.detailed = detailed
    }

    /// Folds in one of the run's own events after `run.created` (a route decided, a step, the
    /// end); other events change nothing. Without `keepsDetails`, step outputs are dropped and
    /// a run that ends drops its steps. The in-memory read models and the LMDB run table
    /// (`RunsProjection`) both fold runs this way.
    package mutating func fold(_ event: DomainEvent, at: Int64, keepsDetails: Bool) {
        switch event {
        case .routeMatched(let e):
            routeDecided = true
            route = e.route
            status = .running
        case .stepStarted(let e):
            startStep(e, at: at)
        case .stepCompleted(let e):
            // Not `keepsDetails ? e.output : nil`: JSONValue takes `nil` as its own null.
            var output: JSONValue?
            if keepsDetails { output = e.output }
            finishStep(e.stepUid, status: .completed, output: output, error: nil, at: at)
        case .stepFailed(let e):
            finishStep(e.stepUid, status: e.willRetry ? .retrying : .failed, output: nil, error: e.error, at: at)
        case .runCompleted(let e):
            status = .completed
            decision = e.decision
            finishedAt = at
            if !keepsDetails { steps = [] }
        case .runFailed(let e):
            status = .failed
            failure = e.reason
            finishedAt = at
            if !keepsDetails { steps = [] }
        case .runCancelled(let e):
            guard status == .queued else { return }
            status = .cancelled
            failure = e.reason
            finishedAt = at
            if !keepsDetails { steps = [] }
        default:
            break
        }
    }

    mutating func startStep(_ e: StepStarted, at: Int64) {
        if let i = steps.firstIndex(where: { $0.uid == e.stepUid }) {
            steps[i].status = .running
            steps[i].attempts = e.attempt
        } else {
            steps.append(StepRecord(uid: e.stepUid, type: e.stepType, status: .running, attempts: e.attempt,
                                    idempotencyKey: e.idempotencyKey, startedAt: at))
        }
    }

    mutating func finishStep(_ uid: String, status: StepRecord.Status, output: JSONValue?, error: String?, at: Int64) {
        guard let i = steps.firstIndex(where: { $0.uid == uid }) else { return }
        steps[i].status = status
        steps[i].output = output
        steps[i].error = error
        steps[i].finishedAt = at
    }
}
