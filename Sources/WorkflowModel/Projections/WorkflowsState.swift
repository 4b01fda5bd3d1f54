public import RunlogJSON

/// The read models of the workflow domain, as one value folded from the log: version history,
/// rollouts and their arm counts, runs, objects, lists and run counts per day.
///
/// `apply` is the only way it changes, so rebuilding from the log gives exactly the live state,
/// and folding up to a position gives the state as of that position.
public struct WorkflowsState: Sendable, Equatable {
    /// The last log position folded in.
    public var position: UInt64 = 0
    public var workflows: [String: WorkflowRecord] = [:]
    /// Workflow id by its number.
    public var workflowNumbers: [Int: String] = [:]
    public var runs = RunTable()
    /// Run ids of each workflow, oldest first.
    public var runsByWorkflow: [String: [String]] = [:]
    /// Run ids of each launch-API job (`source.kind` `job`), in input order.
    public var runsByJob: [String: [String]] = [:]
    /// Runs of each launch-API job by status, kept as runs are created and change status, so a
    /// job's status is read without looking at each of its runs.
    public var jobCounts: [String: JobCounts] = [:]
    /// Run ids by source reference, for runs started by a posted event (`event`) or by another
    /// run's step (`workflow`), so a retried post or step finds what it started without looking
    /// at every run.
    public var runsByReference: [String: [String]] = [:]
    public var objects: [ObjectKey: ObjectRecord] = [:]
    public var lists: [String: Set<JSONValue>] = [:]
    /// Runs created per UTC day (`YYYY-MM-DD`), for the quota.
    public var runsPerDay: [String: Int] = [:]
    /// Runs created per workflow on the latest UTC day any run was created (the dashboard's "runs
    /// today"); a run of a later day starts the counts again.
    public var runsOnLatestDay = DayCounts()

    public struct DayCounts: Sendable, Equatable {
        public var day = ""
        public var perWorkflow: [String: Int] = [:]

        mutating func add(_ count: Int, workflow: String, day: String) {
            if day > self.day {
                self.day = day
                perWorkflow = [:]
            }
            if day == self.day { perWorkflow[workflow, default: 0] += count }
        }

        /// The runs `workflow` created on `day` (0 unless `day` is the latest day counted).
        public func runs(of workflow: String, on day: String) -> Int {
            day == self.day ? perWorkflow[workflow] ?? 0 : 0
        }
    }
    /// Positions of events with a domain type whose payload does not decode. The engine never
    /// writes such events; they are skipped, the same way live and on rebuild, and listed here.
    /// Without `keepsRuns`, events that change a run after its creation are not decoded, so an
    /// undecodable one is not listed (the run tables skip it too).
    public var undecodable: [UInt64] = []
    /// Whether run records hold their details: a run's parameters, extra context and step
    /// overrides (from `run.created`), its steps' outputs, and the steps of a run that has
    /// ended. The engine's state does not; they stay in the log, where
    /// `RunRecord.createdPosition` and the run's stream find them (`WorkflowEngine.detailed`), so
    /// memory per run is a summary however large its row.
    public var keepsRunDetails = false
    /// Whether the state holds runs at all: `runs`, `runsByWorkflow`, `runsByJob`, `jobCounts`
    /// and `runsByReference`. The engine's state does not: its runs are in LMDB
    /// (`RunsProjection`, read through `RunTables`), so its memory does not grow with them; it
    /// keeps only what is counted per day and per rollout arm. Rebuilds for a point in time and
    /// the `runlog` tool fold runs in memory.
    public var keepsRuns = true

    public init(keepsRunDetails: Bool = false, keepsRuns: Bool = true) {
        self.keepsRunDetails = keepsRunDetails
        self.keepsRuns = keepsRuns
    }

    /// Folds in an event decoded beforehand: the engine decodes what it follows off its actor,
    /// so that only this part holds the actor.
    package mutating func apply(_ decoded: DecodedEvent) {
        switch decoded.event {
        case .success(let event?):
            var memory = ReplayMemory()
            apply(event, at: decoded.recordedAt, actor: decoded.actor, position: decoded.position, memory: &memory)
            if decoded.stream.hasPrefix("workflow-") {
                workflows[String(decoded.stream.dropFirst(9))]?.streamVersion = decoded.streamVersion
            }
        case .success(nil):
            break
        case .failure:
            undecodable.append(decoded.position)
        }
        position = decoded.position
    }

    /// Folds one stored event in, read in place (the rebuild path): the same as folding the
    /// event copied out of the store, without the copy.
    public mutating func apply(_ event: LoggedEvent) {
        var memory = ReplayMemory()
        apply(event, memory: &memory)
    }

    /// What a replay carries from one event to the next. A run's events are appended together,
    /// so most events of a log name the run of the event before: its id is decoded into one
    /// string, reused while the next payloads hold the same bytes, and looked up in `runs` once,
    /// the index reused while the next events name the same run.
    package struct ReplayMemory {
        /// The run and workflow ids decoded last.
        package var ids = DomainEvent.RepeatedIds()
        /// The run looked up last and where it is in `runs` (nil: not there). A "not there"
        /// goes stale when a run is created, so `apply` forgets it then.
        var lookedUp: (id: String, index: Int?)?

        package init() {}
    }

    package mutating func apply(_ view: LoggedEvent, memory: inout ReplayMemory) {
        // Without runs, the events that change a run after its creation are not even decoded
        // (the engine's projection skips them the same way: `DecodedEvent`).
        if let kind = DomainEvent.Kind(view.typeBytes), keepsRuns || !kind.isRunUpdate {
            do {
                let event = try DomainEvent.decode(kind, payload: view.payloadBytes, ids: &memory.ids, rowDetails: keepsRuns)
                let actor = view.actorBytes.map { String(decoding: $0, as: UTF8.self) }
                apply(event, at: view.recordedAt, actor: actor, position: view.position, memory: &memory)
                // The first byte spares most events the comparison.
                if view.streamBytes.first == UInt8(ascii: "w"), view.streamBytes.hasPrefix(Self.workflowPrefix) {
                    let id = String(decoding: UnsafeRawBufferPointer(rebasing: view.streamBytes.dropFirst(9)), as: UTF8.self)
                    workflows[id]?.streamVersion = view.streamVersion
                }
            } catch {
                undecodable.append(view.position)
            }
        }
        position = view.position
    }

    /// `workflow-` as bytes (a static string's storage is immutable and lives for the program).
    private static var workflowPrefix: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: UnsafeRawPointer(("workflow-" as StaticString).utf8Start), count: 9)
    }

    mutating func apply(_ event: DomainEvent, at: Int64, actor: String?, position: UInt64, memory: inout ReplayMemory) {
        let keepsDetails = keepsRunDetails
        switch event {
        case .workflowCreated(let e):
            workflows[e.workflowId] = WorkflowRecord(id: e.workflowId, name: e.name, number: e.number,
                                                     createdAt: at, createdBy: actor)
            workflowNumbers[e.number] = e.workflowId
        case .draftSaved(let e):
            workflows[e.workflowId]?.draft = Draft(version: e.draftVersion, definition: e.definition,
                                                   savedAt: at, savedBy: actor)
        case .versionPublished(let e):
            workflows[e.workflowId]?.versions.append(VersionRecord(
                version: e.version, definition: e.definition, description: e.description,
                publishedAt: at, publishedBy: actor, revertedFrom: e.revertedFrom
            ))
            let draftVersion = workflows[e.workflowId]?.draft?.version
            workflows[e.workflowId]?.publishedDraftVersion = draftVersion
        case .versionDescriptionEdited(let e):
            guard hasVersion(e.workflowId, e.version) else { return }
            workflows[e.workflowId]?.versions[e.version - 1].description = e.description
            workflows[e.workflowId]?.versions[e.version - 1].descriptionEditedAt = at
        case .versionActivated(let e):
            guard hasVersion(e.workflowId, e.version) else { return }
            workflows[e.workflowId]?.active = e.version
            workflows[e.workflowId]?.versions[e.version - 1].activatedAt = at
        case .workflowDeactivated(let e):
            workflows[e.workflowId]?.active = nil
        case .rolloutStaged(let e):
            workflows[e.workflowId]?.rollout = RolloutRecord(
                id: e.rolloutId, treatmentVersion: e.treatmentVersion, controlVersion: e.controlVersion,
                percentage: e.percentage, stickyField: e.stickyField, stagedAt: at, stagedBy: actor,
                history: [PercentageChange(percentage: e.percentage, at: at, by: actor)]
            )
        case .rolloutPercentageChanged(let e):
            workflows[e.workflowId]?.rollout?.percentage = e.percentage
            workflows[e.workflowId]?.rollout?.history.append(PercentageChange(percentage: e.percentage, at: at, by: actor))
        case .rolloutPromoted(let e):
            finishRollout(e.workflowId, status: .promoted, percentage: 100, at: at, by: actor)
        case .rolloutEnded(let e):
            finishRollout(e.workflowId, status: .ended, percentage: 0, at: at, by: actor)
        case .runCreated(let e):
            if keepsRuns {
                runs.put(RunRecord(created: e, createdAt: at, createdPosition: position, detailed: keepsRunDetails))
                memory.lookedUp = nil
                runsByWorkflow[e.workflowId, default: []].append(e.runId)
                if e.source.kind == "job", let job = e.source.reference {
                    runsByJob[job, default: []].append(e.runId)
                    jobCounts[job, default: JobCounts()].total += 1
                    jobCounts[job, default: JobCounts()].add(.queued, 1)
                }
                if e.source.kind == "event" || e.source.kind == "workflow", let reference = e.source.reference {
                    runsByReference[reference, default: []].append(e.runId)
                }
            }
            runsPerDay[e.quotaDay, default: 0] += 1
            runsOnLatestDay.add(1, workflow: e.workflowId, day: e.quotaDay)
            if let rolloutId = e.rolloutId {
                workflows[e.workflowId]?.countRun(rolloutId: rolloutId, arm: e.arm)
            }
        case .runsImported(let e):
            if keepsRuns {
                runs.reserveCapacity(runs.count + e.rows.count)
                for i in e.rows.indices {
                    let created = e.created(at: i)
                    runs.put(RunRecord(created: created, createdAt: at, createdPosition: position, createdIndex: i,
                                       detailed: keepsRunDetails))
                    runsByWorkflow[e.workflowId, default: []].append(created.runId)
                }
                memory.lookedUp = nil
            }
            runsPerDay[e.quotaDay, default: 0] += e.rows.count
            runsOnLatestDay.add(e.rows.count, workflow: e.workflowId, day: e.quotaDay)
        case .routeMatched(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .stepStarted(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .stepCompleted(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .stepFailed(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .runCompleted(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .runFailed(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .runCancelled(let e):
            updateRun(e.runId, &memory) { $0.fold(event, at: at, keepsDetails: keepsDetails) }
        case .objectEventRecorded(let e):
            let key = ObjectKey(type: e.objectType, token: e.objectToken)
            if objects[key] == nil { objects[key] = ObjectRecord(key: key, createdAt: at) }
            let i = objects.index(forKey: key)!
            objects.values[i].events.append(ObjectEventEntry(
                eventId: e.eventId, eventType: e.eventType, occurredAt: e.occurredAt, data: e.data, recordedAt: at
            ))
            objects.values[i].revision += 1
        case .objectTagged(let e):
            updateObject(e.objectType, e.objectToken) { object in
                for tag in e.tags where !object.tags.contains(tag) {
                    object.tags.append(tag)
                }
            }
        case .objectFieldSet(let e):
            updateObject(e.objectType, e.objectToken) { $0.fields[e.field] = e.value }
        case .objectDecided(let e):
            updateObject(e.objectType, e.objectToken) { $0.decision = e.decision }
        case .objectRedacted(let e):
            updateObject(e.objectType, e.objectToken) { $0.redacted = true }
        case .listItemAdded(let e):
            lists[e.listId, default: []].insert(e.value)
        case .listItemRemoved(let e):
            lists[e.listId]?.remove(e.value)
        }
    }

    /// Changes the run `id` in place, if there is one. At most one lookup (none when `memory`
    /// holds the run), and the record stays where it is: each `runs[id]?.field = …` hashes the
    /// id again and moves the record out and back.
    private mutating func updateRun(_ id: String, _ memory: inout ReplayMemory, _ change: (inout RunRecord) -> Void) {
        guard keepsRuns else { return }
        let index: Int?
        if let last = memory.lookedUp, last.id == id {
            index = last.index
        } else {
            index = runs.index(forKey: id)
            memory.lookedUp = (id, index)
        }
        guard let index else { return }
        let before = runs.values[index].status
        runs.update(at: index, change)
        let after = runs.values[index].status
        if before != after, runs.values[index].created.source.kind == "job",
           let job = runs.values[index].created.source.reference {
            jobCounts[job, default: JobCounts()].add(before, -1)
            jobCounts[job, default: JobCounts()].add(after, 1)
        }
    }

    /// Changes an object in place, if there is one (see `updateRun`).
    private mutating func updateObject(_ type: String, _ token: String, _ change: (inout ObjectRecord) -> Void) {
        guard let i = objects.index(forKey: ObjectKey(type: type, token: token)) else { return }
        change(&objects.values[i])
        objects.values[i].revision += 1
    }

    private func hasVersion(_ workflowId: String, _ version: Int) -> Bool {
        guard let count = workflows[workflowId]?.versions.count else { return false }
        return version >= 1 && version <= count
    }

    private mutating func finishRollout(_ workflowId: String, status: RolloutRecord.Status, percentage: Double,
                                        at: Int64, by actor: String?) {
        guard var rollout = workflows[workflowId]?.rollout else { return }
        rollout.status = status
        rollout.finishedAt = at
        // The final percentage: promoted means every run on the treatment, ended none.
        if rollout.percentage != percentage {
            rollout.history.append(PercentageChange(percentage: percentage, at: at, by: actor))
        }
        rollout.percentage = percentage
        workflows[workflowId]?.pastRollouts.append(rollout)
        workflows[workflowId]?.rollout = nil
    }

    /// Lists as `$inList` sees them.
    public var listMembership: StaticLists { StaticLists(lists) }
}

/// One stored event as the state folds it, read in place: the storage adapters make one from
/// their envelope views. A concrete value, not a protocol: a fold in this module over a generic
/// event type is not specialized for the callers' views in other modules, and the replay calls
/// it for every event of the log. The bytes are valid only while the fold that receives them runs.
public struct LoggedEvent {
    public var position: UInt64
    public var streamVersion: UInt64
    public var recordedAt: Int64
    /// The stream name's UTF-8 bytes.
    public var streamBytes: UnsafeRawBufferPointer
    /// The event type's UTF-8 bytes.
    public var typeBytes: UnsafeRawBufferPointer
    public var payloadBytes: UnsafeRawBufferPointer
    /// The metadata's actor, UTF-8 (nil: none).
    public var actorBytes: UnsafeRawBufferPointer?

    @inlinable
    public init(position: UInt64, streamVersion: UInt64, recordedAt: Int64, streamBytes: UnsafeRawBufferPointer,
                typeBytes: UnsafeRawBufferPointer, payloadBytes: UnsafeRawBufferPointer,
                actorBytes: UnsafeRawBufferPointer?) {
        self.position = position
        self.streamVersion = streamVersion
        self.recordedAt = recordedAt
        self.streamBytes = streamBytes
        self.typeBytes = typeBytes
        self.payloadBytes = payloadBytes
        self.actorBytes = actorBytes
    }
}

extension WorkflowsState {
    /// A replay of a log into a state: what it carries from one event to the next (the ids
    /// decoded last, the run looked up last) kept across calls.
    public struct Replay {
        public private(set) var state: WorkflowsState
        var memory = ReplayMemory()

        /// `expectedRuns`: room reserved for that many runs (each one a `run-<id>` stream).
        public init(_ state: WorkflowsState, expectedRuns: Int = 0) {
            self.state = state
            if state.keepsRuns && expectedRuns > 0 { self.state.runs.reserveCapacity(expectedRuns) }
        }

        public mutating func apply(_ event: LoggedEvent) {
            state.apply(event, memory: &memory)
        }
    }
}
