public import WorkflowModel
public import RunlogJSON
public import EventLog
import Foundation

/// A launch-API job (seed 001): one workflow version run once per input on the batch queue.
/// Its events live in the stream `job-<jobId>`; its runs are ordinary runs with `source.kind`
/// `job`, `source.reference` the job id and `source.row` the input index.
public enum JobEvent {
    public static let scheduledType = "job.scheduled.v1"
    public static let pausedType = "job.paused.v1"
    public static let resumedType = "job.resumed.v1"
    public static let stoppedType = "job.stopped.v1"
    public static let types: Set<String> = [scheduledType, pausedType, resumedType, stoppedType]

    public static func stream(_ jobId: String) -> String { "job-" + jobId }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func newEvent<T: Encodable>(_ type: String, _ payload: T, metadata: EventMetadata) -> NewEvent {
        NewEvent(type: type, payload: Array((try? encoder.encode(payload)) ?? Data("{}".utf8)), metadata: metadata)
    }
}

/// How a job runs one step: the settings given when it was scheduled (no secrets: accounts are
/// named by uid).
public struct JobStepSettings: Codable, Sendable, Hashable {
    public var stepUid: String
    /// Account uids; run i uses `accounts[i % n]` with rotation, else `accounts[0]`.
    public var accounts: [String]
    public var accountsRotationEnabled: Bool
    /// The parameters given, laid over the step's own when a run executes.
    public var parameters: JSONValue
    /// The key under which this step's output appears in the job's results.
    public var outputColumn: String?

    public init(stepUid: String, accounts: [String] = [], accountsRotationEnabled: Bool = false,
                parameters: JSONValue = [:], outputColumn: String? = nil) {
        self.stepUid = stepUid
        self.accounts = accounts
        self.accountsRotationEnabled = accountsRotationEnabled
        self.parameters = parameters
        self.outputColumn = outputColumn
    }

    /// The account run `index` uses, if any.
    public func account(forRun index: Int) -> String? {
        guard !accounts.isEmpty else { return nil }
        return accountsRotationEnabled ? accounts[index % accounts.count] : accounts[0]
    }
}

public struct JobScheduled: Codable, Sendable, Hashable {
    public var jobId: String
    public var projectId: String
    public var workflowId: String
    public var version: Int
    public var jobName: String
    public var steps: [JobStepSettings]
    public var inputCount: Int
}

/// `job.paused.v1`, `job.resumed.v1`.
public struct JobChanged: Codable, Sendable, Hashable {
    public var jobId: String
}

public struct JobStopped: Codable, Sendable, Hashable {
    public var jobId: String
    /// Queued runs cancelled in the same append.
    public var cancelledRuns: Int
}

/// A job as the log has it.
public struct JobRecord: Sendable, Hashable {
    public var scheduled: JobScheduled
    public var createdAt: Int64
    public var createdBy: String?
    public var paused = false
    public var pausedAt: Int64?
    public var stopped = false
    public var stoppedAt: Int64?

    public var id: String { scheduled.jobId }
}

/// The jobs, folded from their events (the runs are in `WorkflowsState`).
public struct JobsState: Sendable, Equatable {
    public var position: UInt64 = 0
    public var jobs: [String: JobRecord] = [:]

    public init() {}

    public mutating func apply(_ event: RecordedEvent) {
        defer { position = max(position, event.position) }
        guard JobEvent.types.contains(event.type) else { return }
        let decoder = JSONDecoder()
        let data = Data(event.payload)
        switch event.type {
        case JobEvent.scheduledType:
            guard let e = try? decoder.decode(JobScheduled.self, from: data) else { return }
            jobs[e.jobId] = JobRecord(scheduled: e, createdAt: event.recordedAt, createdBy: event.metadata.actor)
        case JobEvent.pausedType:
            guard let e = try? decoder.decode(JobChanged.self, from: data) else { return }
            jobs[e.jobId]?.paused = true
            jobs[e.jobId]?.pausedAt = event.recordedAt
        case JobEvent.resumedType:
            guard let e = try? decoder.decode(JobChanged.self, from: data) else { return }
            jobs[e.jobId]?.paused = false
            jobs[e.jobId]?.pausedAt = nil
        default:
            guard let e = try? decoder.decode(JobStopped.self, from: data) else { return }
            jobs[e.jobId]?.stopped = true
            jobs[e.jobId]?.paused = false
            jobs[e.jobId]?.stoppedAt = event.recordedAt
        }
    }

    /// The job events of the log up to `position`.
    public static func rebuild(from store: any EventStore, upTo position: UInt64 = .max) throws -> JobsState {
        var state = JobsState()
        try store.forEach(from: 1, filter: EventFilter(types: JobEvent.types)) { event in
            guard event.position <= position else { return false }
            state.apply(event)
            return true
        }
        state.position = position == .max ? state.position : position
        return state
    }
}

/// A job's status, from its runs and its events.
public enum JobStatus: String, Sendable, Hashable, CaseIterable {
    case running = "Running"
    case finished = "Finished"
    case warning = "Warning"
    case shutdown = "Shutdown"
    case stopped = "Stopped"
    case paused = "Paused"
}

/// A job with its status and counts, as the API shows it.
public struct JobView: Sendable, Hashable {
    public var record: JobRecord
    public var status: JobStatus
    public var counts: JobCounts
}

/// What a client asks to schedule.
public struct JobRequest: Sendable {
    public var projectId: String
    public var workflowId: String
    public var jobName: String
    public var inputs: [JSONValue]
    public var steps: [JobStepSettings]

    public init(projectId: String, workflowId: String, jobName: String, inputs: [JSONValue], steps: [JobStepSettings]) {
        self.projectId = projectId
        self.workflowId = workflowId
        self.jobName = jobName
        self.inputs = inputs
        self.steps = steps
    }
}
