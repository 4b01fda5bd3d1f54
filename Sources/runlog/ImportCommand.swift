import RunlogJSON
import ArgumentParser
import AsyncHTTPClient
import EventLog
import LMDBStore
import Foundation
import Importers
import NIOCore
import Synchronization
import WorkflowModel
import Workflows

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a CSV file: one workflow run per row (an importer and an importer run).",
        discussion: """
            Maps columns onto the workflow's parameters: a column whose header is a parameter's \
            name maps onto it, --map column=param (a dotted path for a nested object field) maps \
            any other and wins; unmapped columns are listed. Or gives the token column of event-triggered and action \
            workflows (--token-column, with --object-type for event-triggered ones). With \
            --server the file is uploaded to a running server; without, the import runs here on \
            --data-dir (the created runs execute when the server next starts). Shows a progress \
            bar on a terminal (percent of the file read, rows, rows/s, errors, ETA) and a plain \
            summary otherwise. When the import fails before its importer run starts (a bad \
            mapping, an inactive workflow), the data source it uploaded is deleted again. Exit \
            status 1 when rows errored.
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var server: ServerOptions
    @Argument(help: "The CSV file (RFC 4180, UTF-8, a header row).") var file: String
    @Option(help: "The destination workflow (it must be active).") var workflow: String
    @Option(help: "column=parameter, repeated.") var map: [String] = []
    @Option(name: .customLong("token-column"), help: "The column of object tokens (event-triggered and action workflows).")
    var tokenColumn: String?
    @Option(name: .customLong("object-type"), help: "The type of the objects (event-triggered workflows).")
    var objectType: String?
    @Option(name: .customLong("where"), help: "A condition rows must satisfy (the query box), as JSON.")
    var condition: String?
    @Option(help: "The importer's name (default: the file's name).") var name: String?
    @Flag(name: .customLong("dry-run"), help: "Validate every row and report what would be created; create nothing.")
    var dryRun = false

    func validate() throws {
        for pair in map where pair.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--map \(pair) must be column=parameter")
        }
        guard FileManager.default.isReadableFile(atPath: file) else { throw ValidationError("cannot read \(file)") }
    }

    /// The mapping: every column whose header equals a parameter of the workflow's active version
    /// (`parameters`), then the explicit `--map` pairs, which win. Columns left unmapped (but the
    /// token column) are listed on standard error.
    func mapping(parameters: [String]) throws -> JSONValue {
        let header = try Self.header(of: file)
        var columns: [String: JSONValue] = [:]
        let explicitTargets = Set(map.compactMap { $0.split(separator: "=", maxSplits: 1).last.map(String.init) })
        for column in header where parameters.contains(column) && !explicitTargets.contains(column) {
            columns[column] = .string(column)
        }
        for pair in map {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            columns[parts[0]] = .string(parts[1])
        }
        let unmapped = header.filter { columns[$0] == nil && $0 != tokenColumn }
        if !unmapped.isEmpty {
            let note = "columns not mapped (no parameter of that name; --map column=parameter maps one): "
                + unmapped.joined(separator: ", ") + "\n"
            FileHandle.standardError.write(Data(note.utf8))
        }
        var o: [String: JSONValue] = ["columns": .object(columns)]
        if let tokenColumn { o["token_column"] = .string(tokenColumn) }
        if let objectType { o["object_type"] = .string(objectType) }
        return .object(o)
    }

    /// The fields of the file's first record (its header row); at most its first MiB is read.
    static func header(of path: String) throws -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
        defer { try? handle.close() }
        let bytes = (try? handle.read(upToCount: 1 << 20)) ?? Data()
        var parser = CSVParser()
        var first: [String]?
        bytes.withUnsafeBytes { buffer in
            parser.parse(buffer) { record in
                if first == nil, case .fields(let fields, _) = record { first = fields }
            }
        }
        if first == nil {
            parser.finish { record in if first == nil, case .fields(let fields, _) = record { first = fields } }
        }
        return first ?? []
    }

    /// The top-level parameter names of a definition's trigger: the API schema's or the action's inputs.
    static func parameterNames(_ definition: JSONValue?) -> [String] {
        guard let definition, let parsed = try? WorkflowDefinition(json: definition) else { return [] }
        switch parsed.trigger {
        case .api(let schema, _): return schema.fields.map(\.name)
        case .action(_, let inputs): return inputs.fields.map(\.name)
        case .event: return []
        }
    }

    func query() throws -> JSONValue {
        guard let condition else { return [:] }
        do {
            return ["condition": try JSONValue(parsing: condition)]
        } catch {
            throw CLIError("--where is not JSON: \(error)")
        }
    }

    var importerName: String { name ?? URL(fileURLWithPath: file).lastPathComponent }

    func run() async throws {
        let progress = ImportProgress(terminal: isatty(STDERR_FILENO) != 0)
        let final: JSONValue
        do {
            if let client = try server.client() {
                final = try await runRemote(client, progress)
            } else {
                final = try await runLocal(progress)
            }
        } catch {
            // The error on a line of its own, not after a bar.
            if progress.terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            throw error
        }
        progress.summary(final)
        if (final["progress"]?["rows_errored"]?.numericValue ?? 0) > 0 || final["status"] != "completed" {
            throw ExitCode(1)
        }
    }

    // MARK: Through a server

    func runRemote(_ client: APIClient, _ progress: ImportProgress) async throws -> JSONValue {
        let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        progress.fileSize = size
        // The workflow first: an unknown one fails before anything is uploaded.
        var parameters: [String] = []
        if let active = try await client.send(.GET, "/v1/workflows/\(workflow)")["active_version"]?.intValue {
            parameters = Self.parameterNames(
                try await client.send(.GET, "/v1/workflows/\(workflow)/versions/\(active)")["definition"])
        }
        // The mapping and the condition too (a --where that is not JSON).
        let mappingJSON = try mapping(parameters: parameters)
        let queryJSON = try query()
        let name = importerName.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "import"
        var request = HTTPClientRequest(url: client.base + "/v1/data-sources/csv?name=" + name)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "text/csv")
        let chunks = FileByteBuffers(path: file, sent: { progress.uploaded($0) })
        request.body = .stream(chunks, length: .known(Int64(size)))
        let answer = try await client.execute(request, timeout: .seconds(3600))
        let source = answer.json
        guard answer.status == 201, let sourceId = source["id"]?.stringValue else {
            throw CLIError("the upload failed: " + APIClient.describe(answer: answer, method: .POST,
                                                                    url: client.base + "/v1/data-sources/csv"))
        }
        let runId: String
        do {
            let importer = try await client.send(.POST, "/v1/importers", body: [
                "name": .string(importerName), "data_source_id": .string(sourceId), "workflow_id": .string(workflow),
                "mapping": mappingJSON, "query": queryJSON,
            ])
            guard let importerId = importer["id"]?.stringValue else { throw CLIError("no importer id in \(importer.jsonText)") }
            let started = try await client.send(.POST, "/v1/importers/\(importerId)/runs", body: ["dry_run": .bool(dryRun)])
            guard let id = started["id"]?.stringValue else { throw CLIError("no run id in \(started.jsonText)") }
            runId = id
            progress.runStarted()
        } catch {
            // The import did not start: the data source this command uploaded is deleted (the
            // server refuses while an importer names it).
            do {
                _ = try await client.send(.DELETE, "/v1/data-sources/\(sourceId)")
            } catch {
                Self.note("the uploaded data source \(sourceId) was kept: \(error)")
            }
            throw error
        }
        while true {
            let run = try await client.send(.GET, "/v1/import-runs/\(runId)")
            progress.update(run)
            if run["status"] != "running" { return run }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    // MARK: In this process

    func runLocal(_ progress: ImportProgress) async throws -> JSONValue {
        if let location = store.postgresLocation {
            // Its runs would belong to no node, and the upload would stay in this directory.
            throw CLIError("on \(location), import through a server of the cluster: --server URL --key KEY")
        }
        let opened = try await store.openForWriting()
        let engine = try await WorkflowEngine(store: opened)
        await engine.start()
        let service = try ImporterService(engine: engine, uploads: store.directory + "/uploads")
        do {
            let definition: JSONValue? = await engine.read { state in
                guard let record = state.workflows[workflow], let active = record.active,
                      record.versions.indices.contains(active - 1) else { return nil }
                return record.versions[active - 1].definition
            }
            let mappingRecord = try ImporterMapping(json: try mapping(parameters: Self.parameterNames(definition)))
            let queryRecord = try ImporterQuery(json: try query())
            let source = try await service.createCSVDataSource(name: importerName, chunks: FileChunks(path: file),
                                                               actor: "runlog-cli")
            let started: ImportRunRecord
            progress.runStarted()
            do {
                let importer = try await service.saveImporter(
                    id: nil, name: importerName, dataSourceId: source.id, workflowId: workflow,
                    mapping: mappingRecord, query: queryRecord, actor: "runlog-cli")
                started = try await service.startRun(importerId: importer.id, dryRun: dryRun, actor: "runlog-cli")
            } catch {
                // The import did not start: the data source this command made is deleted.
                do {
                    try await service.deleteDataSource(source.id, actor: "runlog-cli")
                } catch {
                    Self.note("the data source \(source.id) was kept: \(error)")
                }
                throw error
            }
            var record = started
            while record.status == .running {
                try await Task.sleep(for: .milliseconds(200))
                record = await service.snapshot.runs[started.id] ?? record
                progress.update(Self.json(record))
            }
            await service.shutdown()
            await engine.shutdown()
            opened.close()
            return Self.json(record)
        } catch {
            await service.shutdown()
            await engine.shutdown()
            opened.close()
            if let error = error as? WorkflowError { throw CLIError(error.description) }
            throw error
        }
    }

    static func json(_ r: ImportRunRecord) -> JSONValue {
        ["id": .string(r.id), "status": .string(r.status.rawValue), "reason": r.reason.map(JSONValue.string) ?? .null,
         "dry_run": .bool(r.dryRun),
         "progress": ["rows_read": .integer(Int64(r.rowsRead)), "runs_created": .integer(r.dryRun ? 0 : Int64(r.runsCreated)),
                      "runs_to_create": r.dryRun ? .integer(Int64(r.runsCreated)) : .null,
                      "rows_skipped": .integer(Int64(r.rowsSkipped)), "rows_errored": .integer(Int64(r.rowsErrored)),
                      "bytes_read": .integer(Int64(r.bytesRead)), "bytes_total": r.bytesTotal.map { .integer(Int64($0)) } ?? .null],
         "errors_by_reason": .array(r.errorsByReason.map { ["error": .string($0.error), "rows": .integer(Int64($0.count))] })]
    }
}

/// Progress on standard error: a bar redrawn in place on a terminal (`ImportProgressBar`);
/// nothing until the summary otherwise.
final class ImportProgress: @unchecked Sendable {
    // `@unchecked`: used from the command's one task only; `uploaded` (called as the upload's
    // chunks are read) keeps its own state under a lock.
    let terminal: Bool
    /// When the importer run started (rows/s and the ETA count from there).
    var started = ContinuousClock.now
    /// The file's size, for when the server does not report `bytes_total`.
    var fileSize: Int?
    private let upload = Mutex<(sent: Int, drawn: ContinuousClock.Instant?)>((0, nil))
    private let uploadStarted = ContinuousClock.now

    init(terminal: Bool) { self.terminal = terminal }

    func runStarted() { started = .now }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// `bytes` more of the file were read for the upload: redraws the upload's bar (at most ten
    /// times a second, and at the end).
    func uploaded(_ bytes: Int) {
        guard terminal, let total = fileSize else { return }
        let now = ContinuousClock.now
        let sent: Int? = upload.withLock { state in
            state.sent += bytes
            if let drawn = state.drawn, now - drawn < .milliseconds(100), state.sent < total { return nil }
            state.drawn = now
            return state.sent
        }
        guard let sent else { return }
        let line = ImportProgressBar.uploadLine(bytesSent: sent, bytesTotal: total,
                                                elapsed: Self.seconds(now - uploadStarted), width: Self.columns())
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    func update(_ run: JSONValue) {
        guard terminal else { return }
        let p = run["progress"] ?? [:]
        let seconds = Self.seconds(ContinuousClock.now - started)
        let line = ImportProgressBar.line(
            bytesRead: p["bytes_read"]?.intValue ?? 0, bytesTotal: p["bytes_total"]?.intValue ?? fileSize,
            rows: p["rows_read"]?.intValue ?? 0, errors: p["rows_errored"]?.intValue ?? 0, elapsed: seconds,
            width: Self.columns())
        // Back to the line's start, the line, then clear what a longer line before left.
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    /// The terminal's width (standard error's), else $COLUMNS, else 80.
    static func columns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
    }

    func summary(_ run: JSONValue) {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        let p = run["progress"] ?? [:]
        func n(_ key: String) -> Int { (p[key]?.intValue ?? 0) }
        let verb = run["dry_run"] == true ? "to create (dry run)" : "created"
        print("importer run \(run["id"]?.stringValue ?? "?"): \(run["status"]?.stringValue ?? "?")"
              + (run["reason"]?.stringValue.map { " (\($0))" } ?? ""))
        let runs = run["dry_run"] == true ? n("runs_to_create") : n("runs_created")
        print("rows read \(n("rows_read")), runs \(verb) \(runs), skipped \(n("rows_skipped")), "
              + "errored \(n("rows_errored"))")
        for reason in run["errors_by_reason"]?.arrayValue ?? [] {
            print("  \((reason["rows"]?.intValue ?? 0)) × \(reason["error"]?.stringValue ?? "")")
        }
    }
}

/// A file as ByteBuffers (for the streamed upload); `sent` is told each chunk's size as it is read.
struct FileByteBuffers: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let sent: @Sendable (Int) -> Void
    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: FileChunks.AsyncIterator
        let sent: @Sendable (Int) -> Void
        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await inner.next() else { return nil }
            sent(chunk.count)
            return ByteBuffer(bytes: chunk)
        }
    }
    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: FileChunks(path: path).makeAsyncIterator(), sent: sent)
    }
}
