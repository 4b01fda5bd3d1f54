extension DomainEvent.Kind {
    /// Events that change a run after its creation.
    package var isRunUpdate: Bool { isRunEvent && self != .runCreated && self != .runsImported }

    /// Events the run table folds.
    package var isRunEvent: Bool {
        switch self {
        case .runCreated, .runsImported, .routeMatched, .stepStarted, .stepCompleted, .stepFailed, .runCompleted, .runFailed,
             .runCancelled:
            true
        default:
            false
        }
    }
}

extension DomainEvent {
    /// The run an event of a run is about (nil for other events).
    package var runId: String? {
        switch self {
        case .runCreated(let e): e.runId
        case .routeMatched(let e): e.runId
        case .stepStarted(let e): e.runId
        case .stepCompleted(let e): e.runId
        case .stepFailed(let e): e.runId
        case .runCompleted(let e): e.runId
        case .runFailed(let e): e.runId
        case .runCancelled(let e): e.runId
        default: nil
        }
    }
}
