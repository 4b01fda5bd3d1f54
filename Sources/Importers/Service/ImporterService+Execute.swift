import RunlogJSON
import EventLog
import Foundation
import WorkflowModel
import Workflows

extension ImporterService {
    /// What happened to one row.
    enum Outcome {
        case run(ImportedRun)
        case errored(ErroredRow)
        case skipped
    }

    /// The rows of one batch, in order, with their outcomes.
    struct Batch {
        var rows: [(row: Int, outcome: Outcome)] = []
        var header: [String]?
        var runs: Int { rows.reduce(0) { if case .run = $1.outcome { $0 + 1 } else { $0 } } }
    }

    /// How each row becomes a run for the pinned version's trigger.
    struct Plan {
        var dataHeader: [String]
        var header: [String]
        var mapper: RowMapper?
        var tokenIndex: Int?
        var objectType: String?
        var eventType: String?
        var query: ImporterQuery
        /// What the query box's condition sees (nil: no condition).
        var view: QueryView?
    }

    enum Stop: Error {
        case cancelled
        case failed(String)
        case quota(String)
    }

    /// Bytes of a chunk parsed at a time.
    static let parseSlice = 8 * 1024

    /// Reads the data source and records every row's outcome, batch by batch.
    func execute(_ runId: String) async {
        guard let run = state.runs[runId], let importer = state.importers[run.importerId],
              let source = state.dataSources[importer.dataSourceId] else {
            try? await finish(runId, .failed, reason: "the importer or its data source no longer exists", rowsLeft: nil,
                              actor: nil)
            return
        }
        let actor = run.startedBy
        do {
            try await checkPin(importer, pinned: run.version)
            let definition = try await engine.publishedDefinition(run.workflowId, version: run.version)
            var cursor = Cursor(importer: importer, definition: definition, run: run)
            let objects = try await objects(of: source)
            cursor.bytesTotal = objects.contains { $0.size == nil } ? nil : objects.reduce(0) { $0 + ($1.size ?? 0) }
            for object in objects {
                var parser = CSVParser()
                cursor.objectName = object.name
                cursor.objectHeader = nil
                // A chunk is parsed a slice at a time, so the rows held between the parser and
                // the batches are a few hundred, not a whole chunk's.
                var records: [CSVParser.Record] = []
                for try await chunk in object.chunks {
                    if isCancelled(runId) { throw Stop.cancelled }
                    var offset = 0
                    while offset < chunk.count {
                        let end = min(chunk.count, offset + Self.parseSlice)
                        records.removeAll(keepingCapacity: true)
                        chunk[offset..<end].withUnsafeBytes { raw in parser.parse(raw) { records.append($0) } }
                        // Progress in bytes: one addition per slice, recorded with the next checkpoint.
                        cursor.bytesRead += end - offset
                        for record in records { try await handle(record, &cursor) }
                        offset = end
                    }
                }
                records.removeAll(keepingCapacity: true)
                parser.finish { records.append($0) }
                for record in records { try await handle(record, &cursor) }
            }
            if cursor.firstHeader == nil { throw Stop.failed("the data source has no rows, not even a header") }
            let bytes = (read: cursor.bytesRead, total: cursor.bytesTotal)
            try await flush(&cursor.batch, runId: runId, actor: actor, bytes: bytes)
            try await settle(runId)
            try await finish(runId, .completed, reason: nil, rowsLeft: nil, bytesRead: cursor.bytesRead, actor: actor)
        } catch Stop.cancelled {
            // Cancelled (the canceller records it) or shutting down (the run resumes on start).
            try? await settle(runId)
        } catch Stop.quota(let message) {
            let left = await rowsLeft(runId)
            try? await finish(runId, .stopped, reason: message, rowsLeft: left, actor: actor)
        } catch Stop.failed(let message) {
            try? await settle(runId)
            try? await finish(runId, .failed, reason: message, rowsLeft: nil, actor: actor)
        } catch let error as WorkflowError {
            try? await settle(runId)
            try? await finish(runId, .failed, reason: error.description, rowsLeft: nil, actor: actor)
        } catch {
            try? await settle(runId)
            try? await finish(runId, .failed, reason: "\(error)", rowsLeft: nil, actor: actor)
        }
    }

    /// Waits for every batch of `runId` being recorded and folds in their checkpoints; throws
    /// what the first failed one threw.
    func settle(_ runId: String) async throws {
        try await settle(runId, keeping: 0)
    }

    /// Waits for the oldest batches of `runId` being recorded until `keeping` are left.
    private func settle(_ runId: String, keeping: Int) async throws {
        var keeping = keeping
        var failure: (any Error)?
        var settled = false
        while let first = recordings[runId]?.first, recordings[runId]!.count > keeping {
            recordings[runId]!.removeFirst()
            settled = true
            do {
                let pending = try await first.value
                do throws(EventStoreError) {
                    _ = try await pending.result()
                } catch {
                    throw WorkflowError(appending: error)
                }
            } catch {
                // The batches after a failed one fail too (their checkpoints expect its
                // version): wait for them all, so nothing of this run is left in flight.
                if failure == nil { failure = error }
                keeping = 0
            }
        }
        if recordings[runId]?.isEmpty ?? false {
            recordings[runId] = nil
            recordingVersion[runId] = nil
            recordingRuns[runId] = nil
        }
        // The progress of the batches recorded so far shows in the activity at once.
        if settled { catchUp() }
        if let failure { throw failure }
    }

    /// Where a run is in its data source.
    struct Cursor {
        let importer: ImporterRecord
        let definition: WorkflowDefinition
        let run: ImportRunRecord
        let only: Set<Int>?
        var plan: Plan?
        var batch = Batch()
        var row = 0
        var firstHeader: [String]?
        var objectHeader: [String]?
        var objectName = ""
        /// Bytes of the source parsed so far (over all its objects), and its size when known.
        var bytesRead = 0
        var bytesTotal: Int?

        init(importer: ImporterRecord, definition: WorkflowDefinition, run: ImportRunRecord) {
            self.importer = importer
            self.definition = definition
            self.run = run
            self.only = run.onlyRows.map(Set.init)
        }
    }

    /// One record: the header of its object, or a row to record (flushing full batches).
    func handle(_ record: CSVParser.Record, _ cursor: inout Cursor) async throws {
        guard cursor.objectHeader != nil else {
            guard case .fields(let fields, _) = record else {
                throw Stop.failed("the header row of \(cursor.objectName) is not valid CSV")
            }
            cursor.objectHeader = fields
            if let first = cursor.firstHeader, first != fields {
                throw Stop.failed("\(cursor.objectName) has other columns than the first object: "
                                  + fields.joined(separator: ", "))
            }
            if cursor.firstHeader == nil {
                cursor.firstHeader = fields
                cursor.plan = try Self.plan(cursor.importer, definition: cursor.definition, header: fields)
                if cursor.run.header.isEmpty { cursor.batch.header = fields }
            }
            return
        }
        cursor.row += 1
        let row = cursor.row
        guard row > cursor.run.lastRow, cursor.only?.contains(row) ?? true, let plan = cursor.plan else { return }
        cursor.batch.rows.append((row, await outcome(of: record, row: row, plan: plan, run: cursor.run)))
        if cursor.batch.rows.count >= batchSize {
            let bytes = (read: cursor.bytesRead, total: cursor.bytesTotal)
            try await flush(&cursor.batch, runId: cursor.run.id, actor: cursor.run.startedBy, bytes: bytes)
        }
    }

    static func plan(_ importer: ImporterRecord, definition: WorkflowDefinition, header: [String]) throws -> Plan {
        let full = importer.query.header(header)
        var plan = Plan(dataHeader: header, header: full, query: importer.query)
        func index(_ column: String) throws -> Int {
            guard let i = full.firstIndex(of: column) else {
                throw Stop.failed("column \(column) of the mapping is not in the data (columns: \(full.joined(separator: ", ")))")
            }
            return i
        }
        do {
            switch definition.trigger {
            case .api(let schema, _):
                plan.mapper = try RowMapper(mapping: importer.mapping, schema: schema, header: full)
            case .action(let objectType, let inputs):
                plan.mapper = try RowMapper(mapping: importer.mapping, schema: inputs, header: full)
                plan.tokenIndex = try index(importer.mapping.tokenColumn ?? "")
                plan.objectType = objectType
            case .event(let eventType, _):
                plan.tokenIndex = try index(importer.mapping.tokenColumn ?? "")
                plan.objectType = importer.mapping.objectType
                plan.eventType = eventType
            }
        } catch let error as RowMapperError {
            throw Stop.failed(error.description)
        }
        if let condition = importer.query.condition {
            do throws(QueryViewError) {
                plan.view = try QueryView(condition, header: full, mapper: plan.mapper)
            } catch {
                throw Stop.failed("the query box's condition does not fit the data: \(error.description); save the "
                                  + "importer again with a condition that does")
            }
        }
        return plan
    }

    /// Filters, maps and validates one record.
    func outcome(of record: CSVParser.Record, row: Int, plan: Plan, run: ImportRunRecord) async -> Outcome {
        switch record {
        case .malformed(let line, let column, let message):
            return .errored(ErroredRow(row: row, line: line, field: "", value: "",
                                       error: "not valid CSV at line \(line), column \(column): \(message)", cells: []))
        case .fields(let fields, let line):
            guard fields.count == plan.dataHeader.count else {
                return .errored(ErroredRow(row: row, line: line, field: "", value: "",
                                           error: "the row has \(fields.count) fields; the header has \(plan.dataHeader.count)",
                                           cells: fields))
            }
            let cells = plan.query.cells(fields, header: plan.header)
            // Converted once: the condition sees these values and the run's parameters are built from them.
            let converted = plan.mapper?.convert(cells, perColumn: plan.view != nil)
            // A cell the condition names that did not convert makes the row errored (below), not skipped.
            if let view = plan.view, !(converted.map(view.namesFailedCell) ?? false), !view.matches(cells, converted) {
                return .skipped
            }
            func error(_ field: String, _ value: String, _ message: String) -> Outcome {
                .errored(ErroredRow(row: row, line: line, field: field, value: value, error: message, cells: fields))
            }
            var parameters: JSONValue = [:]
            if let mapper = plan.mapper, let converted {
                switch mapper.parameters(converted) {
                case .success(let value):
                    parameters = value
                case .failure(let broken):
                    let first = broken.issues[0]
                    return error(first.field, first.value, broken.issues.map(\.error).joined(separator: "; "))
                }
            }
            guard let tokenIndex = plan.tokenIndex, let objectType = plan.objectType else {
                return .run(ImportedRun(parameters: parameters, row: row))
            }
            let column = plan.header[tokenIndex]
            let token = cells[tokenIndex]
            guard !token.isEmpty else { return error(column, token, "the object token is empty") }
            if let eventType = plan.eventType {
                if let problem = await engine.eventTriggerProblem(workflowId: run.workflowId, version: run.version,
                                                                  objectType: objectType, token: token,
                                                                  maxAge: Self.maxEventAge) {
                    return error(column, token, problem)
                }
                return .run(ImportedRun(parameters: [:], objectType: objectType, objectToken: token, eventType: eventType,
                                        row: row))
            }
            guard await engine.objectExists(type: objectType, token: token) else {
                return error(column, token, "\(objectType) \(token) does not exist")
            }
            return .run(ImportedRun(parameters: parameters, objectType: objectType, objectToken: token, row: row))
        }
    }

    /// Records the batch: its runs and the checkpoint in one append. When the quota has room for
    /// only some of the runs, records the rows up to the last run that fits and stops.
    /// `bytes` is the source's progress in bytes, recorded with the checkpoint.
    func flush(_ batch: inout Batch, runId: String, actor: String?, bytes: (read: Int, total: Int?)) async throws {
        guard !batch.rows.isEmpty || batch.header != nil else { return }
        await engine.yieldToRealtime()
        try await settle(runId, keeping: recordingDepth - 1)
        if isCancelled(runId) { throw Stop.cancelled }
        guard var run = state.runs[runId] else { throw Stop.failed("importer run \(runId) is gone") }
        var rows = batch.rows[...]
        var quotaMessage: String?
        if !run.dryRun {
            var room = await engine.quotaRoom()
            // The batches in flight may not have reserved their runs yet: when they could make
            // the difference, wait for them and ask again.
            if room != .max, batch.runs > room - (recordingRuns[runId] ?? 0), recordings[runId] != nil {
                try await settle(runId)
                guard let settled = state.runs[runId] else { throw Stop.failed("importer run \(runId) is gone") }
                run = settled
                room = await engine.quotaRoom()
            }
            if batch.runs > room {
                // Keep the rows before the first run that does not fit.
                var runs = 0
                let cut = rows.firstIndex { if case .run = $0.outcome { runs += 1; return runs > room } else { return false } }
                rows = rows[..<(cut ?? rows.endIndex)]
                let status = await engine.quotaStatus()
                quotaMessage = "the daily run quota of \(status.limit ?? 0) is used up; it resets at "
                    + JSONText.timestamp(milliseconds: status.resetsAt) + "; resume the importer run then"
            }
        }
        var runs: [ImportedRun] = []
        var errors: [JSONValue] = []
        var skipped = 0
        for (_, outcome) in rows {
            switch outcome {
            case .run(let r): runs.append(r)
            case .errored(let e): errors.append(e.json)
            case .skipped: skipped += 1
            }
        }
        var progress: [String: JSONValue] = [
            "importerRunId": .string(runId), "lastRow": .integer(Int64(rows.last?.row ?? run.lastRow)),
            "read": .integer(Int64(rows.count)), "created": .integer(Int64(runs.count)),
            "skipped": .integer(Int64(skipped)), "errored": .integer(Int64(errors.count)), "errors": .array(errors),
        ]
        if let header = batch.header { progress["header"] = .array(header.map(JSONValue.string)) }
        progress["bytesRead"] = .integer(Int64(bytes.read))
        if let total = bytes.total { progress["bytesTotal"] = .integer(Int64(total)) }
        // Each checkpoint expects the version the one before creates: a batch commits only
        // after every batch before it, and never after one of them failed.
        let version = recordingVersion[runId] ?? run.streamVersion
        recordingVersion[runId] = version + 1
        recordingRuns[runId, default: 0] += runs.count
        let checkpoint = StreamWrite(stream: Streams.importRun(runId), expected: .exact(version), events: [
            ImporterEvent.event(ImporterEvent.rowsProcessed, .object(progress), actor: actor),
        ])
        // Recorded while the next batches are read; a flush waits for the oldest once
        // `recordingDepth` are in flight, the end of the run for all of them.
        let previous = recordings[runId]?.last
        let recording: Task<PendingAppend, any Error>
        if run.dryRun || runs.isEmpty {
            let store = self.store
            recording = Task {
                _ = try await previous?.value
                do throws(EventStoreError) {
                    return try store.submit([checkpoint], priority: .background)
                } catch {
                    throw WorkflowError(appending: error)
                }
            }
        } else {
            let engine = self.engine
            recording = Task {
                let prepared = try await engine.prepareImportedRuns(
                    workflowId: run.workflowId, version: run.version, importerRunId: runId, runs, extra: [checkpoint],
                    actor: actor)
                do {
                    _ = try await previous?.value
                } catch {
                    engine.discardImportedRuns(prepared)
                    throw error
                }
                return try engine.submitImportedRuns(prepared)
            }
        }
        recordings[runId, default: []].append(recording)
        batch = Batch()
        if let quotaMessage {
            try await settle(runId)
            throw Stop.quota(quotaMessage)
        }
    }

    /// Rows after the checkpoint of a stopped run, counted by reading the rest of the source.
    func rowsLeft(_ runId: String) async -> Int? {
        guard let run = state.runs[runId], let importer = state.importers[run.importerId],
              let source = state.dataSources[importer.dataSourceId],
              let objects = try? await objects(of: source) else { return nil }
        var rows = 0
        for object in objects {
            var parser = CSVParser()
            var records = 0
            do {
                for try await chunk in object.chunks {
                    chunk.withUnsafeBytes { raw in parser.parse(raw) { _ in records += 1 } }
                }
            } catch {
                return nil
            }
            parser.finish { _ in records += 1 }
            rows += max(0, records - 1)
        }
        let only = run.onlyRows.map { Set($0) }
        if let only { return only.filter { $0 > run.lastRow }.count }
        return max(0, rows - run.lastRow)
    }
}
