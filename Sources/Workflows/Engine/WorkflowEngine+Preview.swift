public import WorkflowModel
import RunlogJSON
public import EventLog

/// Which runs of a workflow a preview takes: the latest `runs`, created at or after `since`.
public struct PreviewScope: Sendable, Hashable {
    public var runs: Int
    /// UTC ms; nil: any time.
    public var since: Int64?
    /// Example runs kept per changed before → after cell.
    public var examples: Int
    /// Whether the runs are a sample spread over all of the workflow's runs (since `since`)
    /// instead of the latest: the same sample every time (`RunTables.sampledRunIds`).
    public var sample: Bool

    public static let maxRuns = 100_000
    public static let maxExamples = 50

    public init(runs: Int = 1_000, since: Int64? = nil, examples: Int = 3, sample: Bool = false) {
        self.runs = runs
        self.since = since
        self.examples = examples
        self.sample = sample
    }
}

/// What a candidate definition would have decided for runs that already happened, beside what
/// each run's own version decides (`RunPlan`s compared run by run).
public struct PreviewReport: Sendable, Hashable {
    public var workflowId: String
    /// "draft", "definition" (one given with the request) or "version N".
    public var candidate: String
    /// The last log position read: the runs and the state they were evaluated in are from the
    /// log up to here.
    public var position: UInt64
    public var runs = 0
    public var evaluated = 0
    public var unchanged = 0
    public var changed = 0
    /// Changed runs by the part of the outcome that changed (`route`, `decision`, `tags`,
    /// `lists`, `fields`, `calls`, `starts`, `redaction`, `failure`).
    public var changes: [String: Int] = [:]
    /// The changed runs by outcome before → after, the largest cell first.
    public var cells: [Cell] = []
    /// Runs that could not be evaluated, by reason.
    public var notEvaluated: [String: Int] = [:]
    /// Evaluated runs for which the candidate meets an `http_request` step whose answer is not
    /// known (changed, or never reached by the run): later steps assume it succeeded.
    public var withUnknownSteps = 0
    /// Runs whose own version, evaluated here, does not give the route or decision the run
    /// recorded (0 unless the evaluation and the engine differ, e.g. for state a step of the
    /// run changed before a later step read it).
    public var drift = 0

    public struct Cell: Sendable, Hashable {
        public var before: String
        public var after: String
        public var runs: Int
        public var examples: [Example]
    }

    public struct Example: Sendable, Hashable {
        public var runId: String
        /// The log position the run was evaluated at: state as of just before it.
        public var position: UInt64
        public var differences: [String]
        public var before: RunPlan
        public var after: RunPlan
    }
}

extension WorkflowEngine {
    /// Previews `candidate` (a draft, a definition given, or a published version) against the
    /// runs of `workflowId` that `scope` takes: for each run, the candidate's routes and steps
    /// are evaluated on the run's inputs with objects and lists as they were when the run chose
    /// its route, beside the run's own version evaluated the same way. Nothing is appended,
    /// called or started; `http_request` steps use the run's recorded answer when the step is
    /// unchanged. The same candidate and runs give the same report on any node.
    public func preview(workflowId: String, candidate: WorkflowDefinition, label: String,
                        scope: PreviewScope) async throws(WorkflowError) -> PreviewReport {
        guard state.workflows[workflowId] != nil else { throw WorkflowError(.notFound, "workflow \(workflowId) does not exist") }
        guard (1...PreviewScope.maxRuns).contains(scope.runs) else {
            throw .invalid(field: "runs", value: .integer(Int64(scope.runs)),
                           rule: "must be between 1 and \(PreviewScope.maxRuns)")
        }
        guard (0...PreviewScope.maxExamples).contains(scope.examples) else {
            throw .invalid(field: "examples", value: .integer(Int64(scope.examples)),
                           rule: "must be between 0 and \(PreviewScope.maxExamples)")
        }
        let preview = HistoryPreview(store: store)
        // The fold reads the whole log: off the actor, which goes on serving.
        let result = await Task.detached { () -> Result<PreviewReport, WorkflowError> in
            do throws(WorkflowError) {
                return .success(try preview.run(workflowId: workflowId, candidate: candidate, label: label, scope: scope))
            } catch {
                return .failure(error)
            }
        }.value
        return try result.get()
    }
}

/// A preview's one pass over a log (`WorkflowEngine.preview`); it reads the run tables and the
/// log, and writes nothing, so a tool can run it on a data directory a server holds.
public struct HistoryPreview: Sendable {
    let store: any EventStore
    let vault: ObjectVault

    public init(store: any EventStore) {
        self.store = store
        vault = ObjectVault(store: store)
    }

    /// The report for `candidate` on the runs `scope` takes (see `WorkflowEngine.preview`).
    public func run(workflowId: String, candidate: WorkflowDefinition, label: String,
                    scope: PreviewScope) throws(WorkflowError) -> PreviewReport {
        let head: UInt64
        let targets: [String]
        do {
            head = try store.head().position
            // The last position recorded before `since` (no subtraction below the smallest time).
            let after = try scope.since.map { since throws(EventStoreError) in
                since > .min ? try store.head(asOf: since - 1).position : 0
            } ?? 0
            let tables = RunTables(store: store)
            targets = scope.sample ? try tables.sampledRunIds(of: workflowId, limit: scope.runs, after: after)
                : try tables.lastRunIds(of: workflowId, limit: scope.runs, after: after)
        } catch let error as EventStoreError {
            throw WorkflowError(storage: error, "preview the workflow")
        } catch {
            throw error as! WorkflowError
        }
        do {
            return try evaluate(workflowId: workflowId, candidate: candidate, label: label, targets: targets,
                                head: head, examples: scope.examples)
        } catch let error as EventStoreError {
            throw WorkflowError(storage: error, "preview the workflow")
        } catch {
            throw WorkflowError(.storage, "the preview failed: \(error)")
        }
    }

    /// What the fold keeps of a run when it chooses its route.
    private struct Evaluated {
        var position: UInt64
        var context: JSONValue
        var hasObject: Bool
        var stepOverrides: JSONValue?
        var version: Int
        var recordedRoute: String?
        var before: WorkflowDefinition.Route?
        var after: WorkflowDefinition.Route?
    }

    /// One pass over the log up to `head`: the state is folded event by event, and each target
    /// run is evaluated when its `run.route_matched` comes, against the state before it.
    private func evaluate(workflowId: String, candidate: WorkflowDefinition, label: String,
                          targets: [String], head: UInt64, examples: Int) throws -> PreviewReport {
        let wanted = Set(targets)
        var report = PreviewReport(workflowId: workflowId, candidate: label, position: head)
        report.runs = targets.count
        var replay = WorkflowsState.Replay(WorkflowsState(keepsRuns: false))
        var created: [String: RunCreated] = [:]
        var evaluated: [String: Evaluated] = [:]
        var unreadable: [String: String] = [:]
        var answers: [String: [String: RunPlan.Answer]] = [:]
        var decisions: [String: String?] = [:]
        var versions: [Int: WorkflowDefinition] = [:]
        /// Runs whose `run.route_matched` was read.
        var routed = Set<String>()
        var ids = DomainEvent.RepeatedIds()
        let runPrefix = Array("run-".utf8)

        /// Evaluates run `runId` (created as `c`) against the state folded so far.
        func evaluate(_ runId: String, _ c: RunCreated, at position: UInt64) {
            let state = replay.state
            guard let json = state.workflows[workflowId].flatMap({ record in
                record.versions.indices.contains(c.version - 1) ? record.versions[c.version - 1].definition : nil
            }) else {
                unreadable[runId] = "its version \(c.version) is not in the log"
                return
            }
            if versions[c.version] == nil { versions[c.version] = try? WorkflowDefinition(json: json) }
            guard let own = versions[c.version] else {
                unreadable[runId] = "its version \(c.version) does not read as a definition"
                return
            }
            if let reason = redaction(of: c, in: state) {
                unreadable[runId] = reason
                return
            }
            let context = WorkflowEngine.context(for: c, in: state, vault: vault)
            let lists = state.listMembership
            evaluated[runId] = Evaluated(
                position: position, context: context, hasObject: c.objectType != nil && c.objectToken != nil,
                stepOverrides: c.stepOverrides, version: c.version, recordedRoute: nil,
                before: own.route(for: context, lists: lists), after: candidate.route(for: context, lists: lists))
        }

        try store.forEachView(from: 1) { view in
            guard view.position <= head else { return false }
            if !wanted.isEmpty, let kind = DomainEvent.Kind(view.typeBytes) {
                var runId: String?
                switch kind {
                case .runCreated, .routeMatched, .stepCompleted, .stepFailed, .runCompleted:
                    let stream = view.streamBytes
                    if stream.count > runPrefix.count, stream.prefix(runPrefix.count).elementsEqual(runPrefix) {
                        let id = String(decoding: UnsafeRawBufferPointer(rebasing: stream.dropFirst(runPrefix.count)), as: UTF8.self)
                        if wanted.contains(id) { runId = id }
                    }
                case .runsImported:
                    runId = ""
                case .objectTagged, .objectFieldSet, .objectDecided, .objectRedacted, .listItemAdded, .listItemRemoved:
                    // A run's effects on objects and lists are appended before its own events, in the
                    // same append as its route: a run not evaluated yet is evaluated before them.
                    if !created.isEmpty { runId = "" }
                default:
                    break
                }
                if let runId, let event = try? DomainEvent.decode(kind, payload: view.payloadBytes, ids: &ids) {
                    switch event {
                    case .runCreated(let e):
                        created[runId] = e
                    case .runsImported(let e) where e.workflowId == workflowId:
                        for i in e.rows.indices where wanted.contains(e.runId(at: i)) {
                            created[e.runId(at: i)] = e.created(at: i)
                        }
                    case .objectTagged(let e):
                        if let c = created.removeValue(forKey: e.runId) { evaluate(e.runId, c, at: view.position) }
                    case .objectFieldSet(let e):
                        if let c = created.removeValue(forKey: e.runId) { evaluate(e.runId, c, at: view.position) }
                    case .objectDecided(let e):
                        if let c = created.removeValue(forKey: e.runId) { evaluate(e.runId, c, at: view.position) }
                    case .objectRedacted(let e):
                        if let c = created.removeValue(forKey: e.runId) { evaluate(e.runId, c, at: view.position) }
                    case .listItemAdded(let e), .listItemRemoved(let e):
                        if let id = e.runId, let c = created.removeValue(forKey: id) { evaluate(id, c, at: view.position) }
                    case .routeMatched(let e):
                        if let c = created.removeValue(forKey: runId) { evaluate(runId, c, at: view.position) }
                        evaluated[runId]?.recordedRoute = e.route
                        routed.insert(runId)
                    case .stepCompleted(let e):
                        answers[runId, default: [:]][e.stepUid] = .succeeded
                    case .stepFailed(let e) where !e.willRetry:
                        answers[runId, default: [:]][e.stepUid] = .failed(e.error)
                    case .runCompleted(let e):
                        decisions[runId] = e.decision
                    default:
                        break
                    }
                }
            }
            replay.apply(LoggedEvent(view))
            return true
        }

        var cells: [String: PreviewReport.Cell] = [:]
        for id in targets {
            guard let run = evaluated[id], routed.contains(id) else {
                let reason = unreadable[id] ?? "it has not chosen a route yet (queued, or cancelled before it ran)"
                report.notEvaluated[reason, default: 0] += 1
                continue
            }
            let own = versions[run.version]!
            let recorded = answers[id] ?? [:]
            let before = RunPlan(route: run.before, context: run.context, hasObject: run.hasObject,
                                 stepOverrides: run.stepOverrides) { recorded[$0.uid] }
            let ownSteps = own.stepsByUid
            let after = RunPlan(route: run.after, context: run.context, hasObject: run.hasObject,
                                stepOverrides: run.stepOverrides) { step in
                ownSteps[step.uid] == step ? recorded[step.uid] : nil
            }
            report.evaluated += 1
            if run.before?.name != run.recordedRoute || decisions[id].map({ $0 != before.decision }) == true {
                report.drift += 1
            }
            if !after.unknownSteps.isEmpty { report.withUnknownSteps += 1 }
            let differences = after.differences(from: before)
            guard !differences.isEmpty else {
                report.unchanged += 1
                continue
            }
            report.changed += 1
            for part in differences { report.changes[part, default: 0] += 1 }
            let key = before.outcome + "\u{0}" + after.outcome
            var cell = cells[key] ?? PreviewReport.Cell(before: before.outcome, after: after.outcome, runs: 0, examples: [])
            cell.runs += 1
            if cell.examples.count < examples {
                cell.examples.append(PreviewReport.Example(runId: id, position: run.position, differences: differences,
                                                           before: before, after: after))
            }
            cells[key] = cell
        }
        report.cells = cells.values.sorted {
            ($0.runs, $1.before, $1.after) > ($1.runs, $0.before, $0.after)
        }
        return report
    }

    /// Why a run's object data cannot be read any more (its key was destroyed by a redaction
    /// since), or nil.
    private func redaction(of c: RunCreated, in state: WorkflowsState) -> String? {
        guard let type = c.objectType, let token = c.objectToken else { return nil }
        let key = ObjectKey(type: type, token: token)
        guard let object = state.objects[key], !object.redacted, !object.events.isEmpty || !object.fields.isEmpty else {
            return nil
        }
        let stored = (try? store.vaultEntry(ObjectVault.entryName(key))) ?? nil
        return stored == nil ? "its object was redacted since: the data it ran on can no longer be read" : nil
    }
}
