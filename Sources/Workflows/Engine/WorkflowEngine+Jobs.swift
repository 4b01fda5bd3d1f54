public import WorkflowModel
import RunlogJSON
import EventLog
import Foundation

/// Launch-API jobs (seed 001): a job runs one pinned workflow version once per input, on the
/// batch queue, with per-step settings (parameters, accounts) recorded on each run as
/// `stepOverrides`.
extension WorkflowEngine {
    /// Validates and schedules a job: `job.scheduled.v1` and one `run.created.v1` per input in one
    /// atomic append. Every input is checked against the version's parameter schema and every step
    /// setting against the step (`steps[0].parameters.url`); `accountExists` says whether an
    /// account uid exists in the job's project. Runs count against the daily quota; without room
    /// for all of them nothing is created.
    public func scheduleJob(
        _ request: JobRequest,
        accountExists: @Sendable (String) -> Bool,
        actor: String?
    ) async throws(WorkflowError) -> JobView {
        guard let workflow = state.workflows[request.workflowId] else { throw Self.workflowNotFound(request.workflowId) }
        guard let version = workflow.active else {
            throw WorkflowError(.conflict, "workflow \(workflow.id) has no active version; activate a version first")
        }
        let definition = try self.definition(workflow.id, version: version)
        guard case .api(let schema, _) = definition.trigger else {
            throw WorkflowError(.conflict, "workflow \(workflow.id) version \(version) is triggered by "
                                + "\(definition.trigger.kind), not the API; a job needs an API-triggered workflow")
        }
        guard request.jobName.utf8.count <= 200 else {
            throw .invalid(field: "job_name", value: .string(request.jobName), rule: "must be at most 200 bytes")
        }
        // Inputs against the schema: every issue named with its input index.
        var issues: [FieldIssue] = []
        for (i, input) in request.inputs.enumerated() {
            guard case .object = input else {
                issues.append(FieldIssue(field: "inputs[\(i)]", value: input.jsonText,
                                         rule: "must be an object of input keys to values"))
                continue
            }
            for issue in schema.validate(input) {
                issues.append(FieldIssue(field: "inputs[\(i)].\(issue.field)", value: issue.value, rule: issue.rule))
            }
            if issues.count >= 100 { break }
        }
        guard issues.isEmpty else {
            var message = "the inputs do not match the input keys of \(workflow.id) version \(version)"
            if let merged = Self.mergedSingleKeyInputs(request.inputs), schema.validate(merged).isEmpty {
                // The seed's own example sends one run's fields as separate one-key objects.
                message += "; each element of inputs is one run: to start one run with these fields, send "
                    + "them as one object: \"inputs\": [\(merged.jsonText)]"
            }
            throw .invalid(issues, message)
        }
        // Step settings against the steps of the pinned version.
        let steps = definition.stepsByUid
        var seen = Set<String>()
        for (i, setting) in request.steps.enumerated() {
            let at = "steps[\(i)]"
            guard let step = steps[setting.stepUid] else {
                throw .invalid(field: at + ".step_uid", value: .string(setting.stepUid),
                               rule: "is not a step of \(workflow.id) version \(version); its steps: "
                                   + steps.keys.sorted().joined(separator: ", "))
            }
            guard seen.insert(setting.stepUid).inserted else {
                throw .invalid(field: at + ".step_uid", value: .string(setting.stepUid), rule: "is given twice")
            }
            guard case .object(let given) = setting.parameters else {
                throw .invalid(field: at + ".parameters", value: setting.parameters, rule: "must be an object")
            }
            var merged = step.parameters.objectValue ?? [:]
            for (name, value) in given { merged[name] = value }
            try StepParameters.validate(step.type, .object(merged), at: at + ".parameters")
            if case .string(let account)? = given["account"], !accountExists(account) {
                throw .invalid(field: at + ".parameters.account", value: .string(account),
                               rule: "is not an account of project \(request.projectId)")
            }
            if !setting.accounts.isEmpty && step.type != .httpRequest {
                throw .invalid(field: at + ".accounts", value: .array(setting.accounts.map(JSONValue.string)),
                               rule: "step \(step.uid) is \(Self.article(step.type.rawValue)) \(step.type.rawValue) step, "
                                   + "which uses no account "
                                   + "(only http_request steps do)")
            }
            for (j, account) in setting.accounts.enumerated() where !accountExists(account) {
                throw .invalid(field: "\(at).accounts[\(j)]", value: .string(account),
                               rule: "is not an account of project \(request.projectId)")
            }
        }

        let jobId = Ids.make("job_")
        let count = request.inputs.count
        let day = try reserveQuota(count)
        defer { releaseQuota(count, day: day) }
        let metadata = Self.metadata(actor, correlation: jobId)
        let scheduled = JobScheduled(jobId: jobId, projectId: request.projectId, workflowId: workflow.id,
                                     version: version, jobName: request.jobName, steps: request.steps, inputCount: count)
        var writes = [StreamWrite(stream: JobEvent.stream(jobId), expected: .noStream,
                                  events: [JobEvent.newEvent(JobEvent.scheduledType, scheduled, metadata: metadata)])]
        var ids: [String] = []
        ids.reserveCapacity(count)
        for (i, input) in request.inputs.enumerated() {
            var overrides: [String: JSONValue] = [:]
            for setting in request.steps {
                var entry: [String: JSONValue] = [:]
                if case .object(let given) = setting.parameters, !given.isEmpty { entry["parameters"] = setting.parameters }
                if let account = setting.account(forRun: i) { entry["account"] = .string(account) }
                if !entry.isEmpty { overrides[setting.stepUid] = .object(entry) }
            }
            let created = RunCreated(
                runId: Ids.make("run_"), workflowId: workflow.id, version: version, arm: .none, rolloutId: nil,
                source: RunSource(kind: "job", reference: jobId, row: i), parameters: input, objectType: nil,
                objectToken: nil, eventType: nil, queue: .batch, quotaDay: day,
                stepOverrides: overrides.isEmpty ? nil : .object(overrides)
            )
            ids.append(created.runId)
            writes.append(StreamWrite(stream: Streams.run(created.runId), expected: .noStream,
                                      events: [DomainEvent.runCreated(created).newEvent(metadata: metadata)]))
        }
        try await append(writes)
        for id in ids { enqueue(id, .batch) }
        return jobView(jobId)!
    }

    /// The newest `limit` jobs with their status and counts.
    public func jobViews(limit: Int) -> [JobView] {
        jobs.jobs.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.prefix(limit).compactMap { jobView($0.id) }
    }

    /// A job with its status and counts; nil when there is no such job.
    public func jobView(_ jobId: String) -> JobView? {
        guard let record = jobs.jobs[jobId] else { return nil }
        let counts = (try? runs.jobCounts(jobId)) ?? JobCounts()
        // Runs left unfinished by a previous process are few; a job's runs may be many.
        let interrupted = interruptedRuns.contains { id in
            runRecord(id).map { $0.created.source.kind == "job" && $0.created.source.reference == jobId } ?? false
        }
        let status: JobStatus
        if record.stopped {
            status = .stopped
        } else if record.paused {
            status = .paused
        } else if interrupted {
            status = .shutdown
        } else if counts.queued + counts.running > 0 {
            status = .running
        } else if counts.failed + counts.cancelled > 0 {
            status = .warning
        } else {
            status = .finished
        }
        return JobView(record: record, status: status, counts: counts)
    }

    /// The runs of a job in input order, from input `from`, at most `limit`, with their details
    /// (inputs and step outputs) read back from the log.
    public func jobRuns(_ jobId: String, from: Int, limit: Int) throws(WorkflowError) -> [RunRecord] {
        guard from >= 0, limit > 0 else { return [] }
        return try detailed(runs.runs(source: "job", reference: jobId, offset: from, limit: limit))
    }

    /// Pauses a running job: its queued runs wait (runs already executing finish).
    public func pauseJob(_ jobId: String, actor: String?) async throws(WorkflowError) -> JobView {
        let view = try requireJob(jobId)
        guard !view.record.stopped else { throw WorkflowError(.conflict, "job \(jobId) was stopped; it cannot be paused") }
        if view.record.paused { return view }
        guard view.counts.queued + view.counts.running > 0 else {
            throw WorkflowError(.conflict, "job \(jobId) has no runs left to pause (it is \(view.status.rawValue))")
        }
        try await append([StreamWrite(stream: JobEvent.stream(jobId), events: [
            JobEvent.newEvent(JobEvent.pausedType, JobChanged(jobId: jobId), metadata: Self.metadata(actor, correlation: jobId)),
        ])])
        return jobView(jobId)!
    }

    /// Resumes a paused job: the runs it put aside are queued again.
    public func resumeJob(_ jobId: String, actor: String?) async throws(WorkflowError) -> JobView {
        let view = try requireJob(jobId)
        guard !view.record.stopped else { throw WorkflowError(.conflict, "job \(jobId) was stopped; it cannot be resumed") }
        guard view.record.paused else { return view }
        try await append([StreamWrite(stream: JobEvent.stream(jobId), events: [
            JobEvent.newEvent(JobEvent.resumedType, JobChanged(jobId: jobId), metadata: Self.metadata(actor, correlation: jobId)),
        ])])
        for id in deferredJobRuns.removeValue(forKey: jobId) ?? [] { enqueue(id, .batch) }
        return jobView(jobId)!
    }

    /// Stops a job for good: `job.stopped.v1` and `run.cancelled.v1` for each of its queued runs, in
    /// one append (runs already executing finish).
    public func stopJob(_ jobId: String, actor: String?) async throws(WorkflowError) -> JobView {
        let view = try requireJob(jobId)
        if view.record.stopped { return view }
        let metadata = Self.metadata(actor, correlation: jobId)
        // Decided in this actor turn: a worker cannot claim one of these runs before the append,
        // because `deferIfJobHalted` sees the job in `stoppingJobs`.
        let queued = try runs.runs(source: "job", reference: jobId).filter { $0.status == .queued && !isExecuting($0.id) }.map(\.id)
        stoppingJobs.insert(jobId)
        defer { stoppingJobs.remove(jobId) }
        var writes = [StreamWrite(stream: JobEvent.stream(jobId), events: [
            JobEvent.newEvent(JobEvent.stoppedType, JobStopped(jobId: jobId, cancelledRuns: queued.count), metadata: metadata),
        ])]
        let reason = "job \(jobId) was stopped"
        for id in queued {
            writes.append(StreamWrite(stream: Streams.run(id), events: [
                DomainEvent.runCancelled(RunCancelled(runId: id, reason: reason)).newEvent(metadata: metadata),
            ]))
        }
        try await append(writes)
        deferredJobRuns[jobId] = nil
        return jobView(jobId)!
    }

    /// Queues again the runs put aside for jobs no longer paused, and forgets those of stopped jobs:
    /// the resume or stop may have come through another node on a shared log.
    func requeueResumedJobs() {
        for (jobId, runIds) in deferredJobRuns {
            guard let job = jobs.jobs[jobId] else { continue }
            if job.stopped {
                deferredJobRuns[jobId] = nil
            } else if !job.paused {
                deferredJobRuns[jobId] = nil
                for id in runIds { enqueue(id, .batch) }
            }
        }
    }

    private func requireJob(_ jobId: String) throws(WorkflowError) -> JobView {
        guard let view = jobView(jobId) else { throw WorkflowError(.notFound, "job \(jobId) does not exist") }
        return view
    }

    /// True when `runId` belongs to a paused or stopping job: the run is put aside (a paused job's
    /// runs are queued again on resume) instead of executing.
    func deferIfJobHalted(_ runId: String) -> Bool {
        guard let run = runRecord(runId), run.created.source.kind == "job", let jobId = run.created.source.reference,
              run.status == .queued else { return false }
        if stoppingJobs.contains(jobId) || jobs.jobs[jobId]?.stopped == true { return true }
        if jobs.jobs[jobId]?.paused == true {
            deferredJobRuns[jobId, default: []].append(runId)
            return true
        }
        return false
    }

    /// The project a job run belongs to (nil for other runs).
    func project(of run: RunRecord) -> String? {
        guard run.created.source.kind == "job", let jobId = run.created.source.reference else { return nil }
        return jobs.jobs[jobId]?.scheduled.projectId
    }
}

extension WorkflowEngine {
    /// "a" or "an" before `word` (by its first letter: enough for step type names).
    static func article(_ word: String) -> String {
        "aeiou".contains(word.first?.lowercased().first ?? "x") ? "an" : "a"
    }
}

extension WorkflowEngine {
    /// Several inputs that each hold one key, all different, merged into one object; nil otherwise.
    static func mergedSingleKeyInputs(_ inputs: [JSONValue]) -> JSONValue? {
        guard inputs.count > 1 else { return nil }
        var merged: [String: JSONValue] = [:]
        for input in inputs {
            guard case .object(let o) = input, o.count == 1, let (key, value) = o.first, merged[key] == nil else {
                return nil
            }
            merged[key] = value
        }
        return .object(merged)
    }
}
