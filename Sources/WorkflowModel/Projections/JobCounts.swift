/// Runs of a job by status.
public struct JobCounts: Sendable, Hashable {
    public var total = 0
    public var queued = 0
    public var running = 0
    public var completed = 0
    public var failed = 0
    public var cancelled = 0

    public init() {}

    package mutating func add(_ status: RunRecord.Status, _ n: Int) {
        switch status {
        case .queued: queued += n
        case .running: running += n
        case .completed: completed += n
        case .failed: failed += n
        case .cancelled: cancelled += n
        }
    }
}
