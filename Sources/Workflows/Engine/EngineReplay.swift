public import EventLog
import WorkflowModel

/// The engine's in-memory read models (workflows without runs, launch-API jobs) as a start-up
/// `LogReplay` builds them: register before the replay runs, hand to
/// `WorkflowEngine.init(store:configuration:replayed:)` after.
///
/// `@unchecked Sendable`: the replay's folds write it on the thread that runs the replay, before
/// it is handed over; nothing changes it afterwards.
public final class EngineReplay: @unchecked Sendable {
    var workflows = WorkflowsState.Replay(WorkflowsState(keepsRuns: false))
    var jobs = JobsState()

    public init(registeringWith replay: LogReplay) {
        replay.register(types: nil) { [unowned self] view in workflows.apply(LoggedEvent(view)) }
        replay.register(types: JobEvent.types) { [unowned self] view in jobs.apply(view.decode()) }
    }
}
