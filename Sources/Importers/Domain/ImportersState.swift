import RunlogJSON
public import EventLog
import WorkflowModel
import Workflows

/// The importers' read models, a projection of their events: data sources, importers and
/// importer runs with their progress and errored rows.
public struct ImportersState: Sendable {
    public var position: UInt64 = 0
    public var dataSources: [String: DataSourceRecord] = [:]
    public var importers: [String: ImporterRecord] = [:]
    public var runs: [String: ImportRunRecord] = [:]

    public init() {}

    /// Every event type of this domain.
    public static let types: Set<String> = [
        ImporterEvent.dataSourceCreated, ImporterEvent.importerSaved, ImporterEvent.runStarted,
        ImporterEvent.rowsProcessed, ImporterEvent.runFinished, ImporterEvent.runResumed,
        ImporterEvent.dataSourceDeleted,
    ]

    public static func rebuild(from store: any EventStore) throws -> ImportersState {
        let replay = LogReplay()
        let models = ImportersReplay(registeringWith: replay)
        return models.state(at: try replay.run(store).position)
    }

    /// Folds one event in; events of other types are ignored.
    public mutating func apply(_ event: RecordedEvent) {
        guard Self.types.contains(event.type), let p = try? JSONValue(parsing: event.payload) else { return }
        let at = event.recordedAt
        switch event.type {
        case ImporterEvent.dataSourceCreated:
            guard let record = DataSourceRecord(p, at: at, by: event.metadata.actor) else { return }
            dataSources[record.id] = record
        case ImporterEvent.dataSourceDeleted:
            guard let id = p["dataSourceId"]?.stringValue else { return }
            dataSources[id] = nil
        case ImporterEvent.importerSaved:
            guard let record = ImporterRecord(p, at: at, by: event.metadata.actor) else { return }
            importers[record.id] = record
        case ImporterEvent.runStarted:
            guard let record = ImportRunRecord(p, at: at, by: event.metadata.actor) else { return }
            runs[record.id] = record
        case ImporterEvent.rowsProcessed:
            guard let id = p["importerRunId"]?.stringValue, var run = runs[id] else { return }
            run.apply(progress: p)
            runs[id] = run
        case ImporterEvent.runFinished:
            guard let id = p["importerRunId"]?.stringValue, var run = runs[id],
                  let status = p["status"]?.stringValue.flatMap(ImportRunRecord.Status.init(rawValue:)) else { return }
            run.status = status
            run.reason = p["reason"]?.stringValue
            run.rowsLeft = p["rowsLeft"]?.intValue
            if let bytes = p["bytesRead"]?.intValue { run.bytesRead = bytes }
            run.finishedAt = at
            runs[id] = run
        case ImporterEvent.runResumed:
            guard let id = p["importerRunId"]?.stringValue, var run = runs[id] else { return }
            run.status = .running
            run.reason = nil
            run.rowsLeft = nil
            run.finishedAt = nil
            runs[id] = run
        default:
            break
        }
        if event.stream.hasPrefix(Streams.importRunPrefix) {
            let id = String(event.stream.dropFirst(Streams.importRunPrefix.count))
            runs[id]?.streamVersion = event.streamVersion
        }
        position = event.position
    }
}

/// Event types and streams of the importers.
public enum ImporterEvent {
    public static let dataSourceCreated = "datasource.created.v1"
    public static let dataSourceDeleted = "datasource.deleted.v1"
    public static let importerSaved = "importer.saved.v1"
    public static let runStarted = "importer.run_started.v1"
    public static let rowsProcessed = "importer.rows_processed.v1"
    public static let runFinished = "importer.run_finished.v1"
    public static let runResumed = "importer.run_resumed.v1"

    static func event(_ type: String, _ payload: JSONValue, actor: String?) -> NewEvent {
        NewEvent(type: type, payload: payload.jsonBytes, metadata: EventMetadata(actor: actor))
    }
}

extension Streams {
    static let importRunPrefix = "importrun-"
    static func dataSource(_ id: String) -> String { "datasource-" + id }
    static func importer(_ id: String) -> String { "importer-" + id }
    static func importRun(_ id: String) -> String { importRunPrefix + id }
}

/// A data source: an uploaded CSV file kept in the data directory, or an S3 location.
public struct DataSourceRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case csv, s3 }
    public var id: String
    public var name: String
    public var kind: Kind
    /// CSV: the file, relative to the uploads directory; its size and SHA-256.
    public var file: String?
    public var bytes: Int?
    public var sha256: String?
    /// CSV: the header row, read when the file was uploaded.
    public var header: [String]?
    /// S3: where the objects are (credentials are kept in the vault, outside the log).
    public var s3: S3Settings?
    public var createdAt: Int64
    public var createdBy: String?

    init?(_ p: JSONValue, at: Int64, by: String?) {
        guard let id = p["dataSourceId"]?.stringValue, let name = p["name"]?.stringValue,
              let kind = p["kind"]?.stringValue.flatMap(Kind.init(rawValue:)) else { return nil }
        self.id = id
        self.name = name
        self.kind = kind
        file = p["file"]?.stringValue
        bytes = p["bytes"]?.intValue
        sha256 = p["sha256"]?.stringValue
        header = p["header"]?.arrayValue?.compactMap(\.stringValue)
        s3 = p["s3"].flatMap(S3Settings.init(json:))
        createdAt = at
        createdBy = by
    }
}

/// Where an S3 data source reads: one object (`key`) or every object under `prefix`.
public struct S3Settings: Sendable, Hashable {
    public var bucket: String
    public var key: String?
    public var prefix: String?
    public var region: String
    public var endpoint: String?

    public init(bucket: String, key: String?, prefix: String?, region: String, endpoint: String?) {
        self.bucket = bucket
        self.key = key
        self.prefix = prefix
        self.region = region
        self.endpoint = endpoint
    }

    init?(json: JSONValue) {
        guard let bucket = json["bucket"]?.stringValue, let region = json["region"]?.stringValue else { return nil }
        self.init(bucket: bucket, key: json["key"]?.stringValue, prefix: json["prefix"]?.stringValue, region: region,
                  endpoint: json["endpoint"]?.stringValue)
    }

    var json: JSONValue {
        var o: [String: JSONValue] = ["bucket": .string(bucket), "region": .string(region)]
        if let key { o["key"] = .string(key) }
        if let prefix { o["prefix"] = .string(prefix) }
        if let endpoint { o["endpoint"] = .string(endpoint) }
        return .object(o)
    }
}

/// An importer: source, destination workflow pinned to a version, mapping and query box.
public struct ImporterRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var dataSourceId: String
    public var workflowId: String
    /// The workflow's latest published version when the importer was (last) saved.
    public var version: Int
    public var mapping: ImporterMapping
    public var query: ImporterQuery
    public var revision: Int
    public var savedAt: Int64
    public var savedBy: String?

    init?(_ p: JSONValue, at: Int64, by: String?) {
        guard let id = p["importerId"]?.stringValue, let name = p["name"]?.stringValue,
              let dataSourceId = p["dataSourceId"]?.stringValue, let workflowId = p["workflowId"]?.stringValue,
              let version = p["version"]?.intValue, let mapping = try? ImporterMapping(json: p["mapping"]),
              let query = try? ImporterQuery(json: p["query"]) else { return nil }
        self.id = id
        self.name = name
        self.dataSourceId = dataSourceId
        self.workflowId = workflowId
        self.version = version
        self.mapping = mapping
        self.query = query
        revision = p["revision"]?.intValue ?? 1
        savedAt = at
        savedBy = by
    }
}

/// One row that did not become a run.
public struct ErroredRow: Sendable, Hashable {
    public var row: Int
    public var line: Int
    public var field: String
    public var value: String
    public var error: String
    /// The row's cells as read (empty for rows that were not valid CSV).
    public var cells: [String]

    var json: JSONValue {
        ["row": .integer(Int64(row)), "line": .integer(Int64(line)), "field": .string(field), "value": .string(value),
         "error": .string(error), "cells": .array(cells.map(JSONValue.string))]
    }

    init(row: Int, line: Int, field: String, value: String, error: String, cells: [String]) {
        self.row = row
        self.line = line
        self.field = field
        self.value = value
        self.error = error
        self.cells = cells
    }

    init?(json: JSONValue) {
        guard let row = json["row"]?.intValue, let error = json["error"]?.stringValue else { return nil }
        self.init(row: row, line: json["line"]?.intValue ?? 0,
                  field: json["field"]?.stringValue ?? "", value: json["value"]?.stringValue ?? "", error: error,
                  cells: json["cells"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}

/// An importer run (the seed's "kick-off"): its status is that of creating the runs, not of the
/// runs themselves.
public struct ImportRunRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case running, completed, failed, cancelled, stopped
    }
    public var id: String
    public var importerId: String
    public var workflowId: String
    public var version: Int
    public var dryRun: Bool
    /// For a re-run of errored rows: only these rows.
    public var onlyRows: [Int]?
    public var rerunOf: String?
    public var status: Status = .running
    public var reason: String?
    public var startedAt: Int64
    public var startedBy: String?
    public var finishedAt: Int64?
    public var header: [String] = []
    public var rowsRead = 0
    public var runsCreated = 0
    public var rowsSkipped = 0
    public var rowsErrored = 0
    /// The last row whose outcome is recorded: a resumed run continues after it.
    public var lastRow = 0
    public var rowsLeft: Int?
    /// Bytes of the source read up to the last checkpoint (at most one 8 KiB slice past its last
    /// row), and the source's size: nil until known (an upload's at the start, S3 objects' once
    /// listed; nil when an object's size cannot be had).
    public var bytesRead = 0
    public var bytesTotal: Int?
    public var errors: [ErroredRow] = []
    public var streamVersion: UInt64 = 0

    init?(_ p: JSONValue, at: Int64, by: String?) {
        guard let id = p["importerRunId"]?.stringValue, let importerId = p["importerId"]?.stringValue,
              let workflowId = p["workflowId"]?.stringValue, let version = p["version"]?.intValue else { return nil }
        self.id = id
        self.importerId = importerId
        self.workflowId = workflowId
        self.version = version
        dryRun = p["dryRun"]?.boolValue ?? false
        onlyRows = p["onlyRows"]?.arrayValue?.compactMap { $0.intValue }
        rerunOf = p["rerunOf"]?.stringValue
        bytesTotal = p["bytesTotal"]?.intValue
        startedAt = at
        startedBy = by
    }

    mutating func apply(progress p: JSONValue) {
        if let header = p["header"]?.arrayValue { self.header = header.compactMap(\.stringValue) }
        func int(_ key: String) -> Int { p[key]?.intValue ?? 0 }
        rowsRead += int("read")
        runsCreated += int("created")
        rowsSkipped += int("skipped")
        rowsErrored += int("errored")
        lastRow = max(lastRow, int("lastRow"))
        if let bytes = p["bytesRead"]?.intValue { bytesRead = bytes }
        if let total = p["bytesTotal"]?.intValue { bytesTotal = total }
        errors += (p["errors"]?.arrayValue ?? []).compactMap(ErroredRow.init(json:))
    }

    /// Errored rows grouped by error, most frequent first.
    public var errorsByReason: [(error: String, count: Int)] {
        var counts: [String: Int] = [:]
        for e in errors { counts[Self.reason(e.error), default: 0] += 1 }
        return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ($0.key, $0.value) }
    }

    /// The error without the row's own values, so that rows with the same problem group together.
    static func reason(_ error: String) -> String { error }
}

/// The importers' read model as a start-up `LogReplay` builds it: register before the replay
/// runs, hand to `ImporterService` after.
///
/// `@unchecked Sendable`: the replay's fold writes it on the thread that runs the replay, before
/// it is handed over; nothing changes it afterwards.
public final class ImportersReplay: @unchecked Sendable {
    private var folded = ImportersState()

    public init(registeringWith replay: LogReplay) {
        replay.register(types: ImportersState.types) { [unowned self] view in folded.apply(view.decode()) }
    }

    /// The state, folded up to `position` (the head the replay read to).
    public func state(at position: UInt64) -> ImportersState {
        var state = folded
        state.position = position
        return state
    }
}
