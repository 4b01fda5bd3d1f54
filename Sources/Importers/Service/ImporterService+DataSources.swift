import Crypto
import S3
import RunlogJSON
import EventLog
import Foundation
public import WorkflowModel
import Workflows

/// Data sources: uploaded CSV files (streamed to disk) and S3 prefixes, recorded, and deleted
/// when no importer uses them.
extension ImporterService {
    // MARK: Data sources

    /// Stores an uploaded CSV file (streamed to disk, never held whole) and records it. The
    /// content must be text (UTF-8 without NUL bytes, see `TextCheck`: a binary file or another
    /// encoding is refused at its first offending byte) and the header row valid CSV. With `expectedBytes` (the request's `Content-Length`), a body
    /// that ends sooner (a connection cut mid-upload) is refused. When anything fails (the body,
    /// the disk, the header, the append) no file is left behind; a full disk throws an
    /// `UploadIOError` whose `isDiskFull` is true.
    public func createCSVDataSource<Chunks: AsyncSequence>(
        name: String, chunks: Chunks, expectedBytes: Int? = nil, actor: String?
    ) async throws -> DataSourceRecord where Chunks.Element == [UInt8] {
        try Self.validName(name)
        let id = Self.makeId("ds_")
        let file = id + ".csv"
        let path = uploads + "/" + file
        let partial = path + ".partial"
        var recorded = false
        var moved = false
        defer {
            if !recorded { try? FileManager.default.removeItem(atPath: moved ? path : partial) }
        }
        let (bytes, digest, header) = try await write(chunks, to: partial)
        if let expectedBytes, bytes != expectedBytes {
            let rule = "the upload ended after \(bytes) of the \(expectedBytes) bytes announced (the connection was "
                + "cut?); nothing was kept: upload the file again"
            throw WorkflowError(.invalid, rule, issues: [
                FieldIssue(field: "Content-Length", value: String(expectedBytes), rule: "must match the bytes sent"),
            ])
        }
        let columns: [String]
        switch header {
        case .fields(let fields, _)?:
            columns = fields
        case .malformed(let line, let column, let message)?:
            throw WorkflowError(.invalid, "the header row is not valid CSV: line \(line), column \(column): \(message)",
                                issues: [FieldIssue(field: "header", value: nil, rule: message)])
        case nil:
            throw WorkflowError(.invalid, "the file is empty: a CSV data source needs a header row",
                                issues: [FieldIssue(field: "file", value: nil, rule: "must have a header row")])
        }
        if let duplicate = Dictionary(grouping: columns, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw WorkflowError(.invalid, "the header names column \(duplicate) twice",
                                issues: [FieldIssue(field: "header", value: JSONValue.string(duplicate).jsonText,
                                                    rule: "column names must be unique")])
        }
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        moved = true
        let payload: JSONValue = [
            "dataSourceId": .string(id), "name": .string(name), "kind": "csv", "file": .string(file),
            "bytes": .integer(Int64(bytes)), "sha256": .string(digest), "header": .array(columns.map(JSONValue.string)),
        ]
        try await append([StreamWrite(stream: Streams.dataSource(id), expected: .noStream,
                                      events: [ImporterEvent.event(ImporterEvent.dataSourceCreated, payload, actor: actor)])])
        recorded = true
        return state.dataSources[id]!
    }

    /// Writes `chunks` to the new file `path` and syncs it; returns its size, its SHA-256 (hex)
    /// and its first CSV record. The caller deletes the file when this throws.
    fileprivate func write<Chunks: AsyncSequence>(
        _ chunks: Chunks, to path: String
    ) async throws -> (bytes: Int, sha256: String, header: CSVParser.Record?) where Chunks.Element == [UInt8] {
        let handle = try files.create(path)
        defer { try? handle.close() }
        var hasher = SHA256()
        var bytes = 0
        var parser = CSVParser()
        var header: CSVParser.Record?
        var text = TextCheck()
        func refuse(_ violation: TextCheck.Violation) -> WorkflowError {
            let rule = "must be UTF-8 text without NUL bytes: \(violation)"
            return WorkflowError(.invalid, "file \(rule); nothing was kept",
                                 issues: [FieldIssue(field: "file", value: nil, rule: rule)])
        }
        for try await chunk in chunks {
            if let violation = chunk.withUnsafeBytes({ text.check($0) }) { throw refuse(violation) }
            try handle.write(chunk)
            hasher.update(data: chunk)
            bytes += chunk.count
            if header == nil {
                chunk.withUnsafeBytes { raw in parser.parse(raw) { record in if header == nil { header = record } } }
            }
        }
        if let violation = text.finish() { throw refuse(violation) }
        if header == nil { parser.finish { record in if header == nil { header = record } } }
        try handle.synchronize()
        try handle.close()
        return (bytes, hasher.finalize().map { String(format: "%02x", $0) }.joined(), header)
    }

    /// Records an S3 data source. The credentials go to the vault (outside the hash chain), never
    /// to the log, sealed with the server's secret key (AES-GCM, bound to the data source). An
    /// error never shows the secret access key or the session token.
    public func createS3DataSource(name: String, settings: S3Settings, secret: S3Secret,
                                   actor: String?) async throws -> DataSourceRecord {
        try Self.validName(name)
        guard let secrets else {
            throw WorkflowError(.storage, "this importer service has no secret key to seal S3 credentials with")
        }
        guard (settings.key == nil) != (settings.prefix == nil) else {
            throw WorkflowError(.invalid, "an S3 data source reads one key or every key under a prefix",
                                issues: [FieldIssue(field: "s3.key", value: nil, rule: "give exactly one of key and prefix")])
        }
        func refuse(_ field: String, _ value: String, _ rule: String) -> WorkflowError {
            guard !S3Secret.maskedFields.contains(field) else {
                let masked = rule + " (the value is not shown)"
                return WorkflowError(.invalid, "\(field) \(masked)",
                                     issues: [FieldIssue(field: field, value: nil, rule: masked)])
            }
            return WorkflowError(.invalid, "\(field) \(rule)", issues: [
                FieldIssue(field: field, value: JSONValue.string(value).jsonText, rule: rule),
            ])
        }
        for (field, value) in [("s3.bucket", settings.bucket), ("s3.region", settings.region),
                               ("s3.key", settings.key ?? "-"), ("credentials.access_key_id", secret.accessKeyId),
                               ("credentials.secret_access_key", secret.secretAccessKey)] where value.isEmpty {
            throw refuse(field, value, "must not be empty")
        }
        // An endpoint the client cannot use is refused now, not when an importer runs.
        do {
            _ = try S3Client(credentials: S3Credentials(accessKeyId: secret.accessKeyId, secretAccessKey: "-"),
                             region: settings.region, endpoint: settings.endpoint)
        } catch {
            throw refuse("s3.endpoint", settings.endpoint ?? "", "must be an http or https URL with a host and no path")
        }
        let id = Self.makeId("ds_")
        do {
            try await store.putVaultEntry(Self.vaultEntry(id), secret.sealed(with: secrets, dataSource: id))
        } catch {
            throw WorkflowError(storage: error, "cannot keep the S3 credentials")
        }
        let payload: JSONValue = ["dataSourceId": .string(id), "name": .string(name), "kind": "s3", "s3": settings.json]
        try await append([StreamWrite(stream: Streams.dataSource(id), expected: .noStream,
                                      events: [ImporterEvent.event(ImporterEvent.dataSourceCreated, payload, actor: actor)])])
        return state.dataSources[id]!
    }

    /// Deletes a data source no importer uses: records `datasource.deleted.v1`, then deletes its
    /// uploaded file or its S3 credentials. 404 when it does not exist, 409 while an importer
    /// names it (`runlog import` deletes the one it uploaded when the import fails before its
    /// importer run starts).
    public func deleteDataSource(_ id: String, actor: String?) async throws(WorkflowError) {
        catchUp()
        guard let source = state.dataSources[id] else { throw WorkflowError(.notFound, "data source \(id) does not exist") }
        let users = state.importers.values.filter { $0.dataSourceId == id }.map(\.id).sorted()
        guard users.isEmpty else {
            throw WorkflowError(.conflict, "data source \(id) is used by importer \(users.joined(separator: ", ")); "
                                + "only a data source no importer uses can be deleted")
        }
        try await append([StreamWrite(stream: Streams.dataSource(id), expected: .any, events: [
            ImporterEvent.event(ImporterEvent.dataSourceDeleted, ["dataSourceId": .string(id)], actor: actor),
        ])])
        // What is left behind when these fail is deleted at the next start (files) or never read again.
        if let file = source.file { try? FileManager.default.removeItem(atPath: uploads + "/" + file) }
        if source.kind == .s3 { try? await store.deleteVaultEntry(Self.vaultEntry(id)) }
    }

    static func validName(_ name: String) throws(WorkflowError) {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.utf8.count <= 200 else {
            throw WorkflowError(.invalid, "name must be 1 to 200 bytes, not only spaces",
                                issues: [FieldIssue(field: "name", value: JSONValue.string(name).jsonText,
                                                    rule: "must be 1 to 200 bytes, not only spaces")])
        }
    }
}
