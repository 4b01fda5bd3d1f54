import RunlogJSON
import Access
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RunlogTestSupport
import Testing
import Importers
import Profiles
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// A server on a fresh data directory: store, engine, keys of each role and the router, driven
/// through Hummingbird's testing client. `reopen()` simulates a restart on the same directory.
final class TestServer: AsyncClosable, @unchecked Sendable {
    // `@unchecked`: set up once, then only read (reopen runs between requests).
    let directory: String
    var store: LMDBEventStore
    var engine: WorkflowEngine
    var importers: ImporterService
    var api: RunlogAPI
    let admin: String
    let service: String
    let auditor: String
    let rateLimit: Int?
    let quota: Int?
    /// The launch API's accounts, sealed with `box` (a key in the data directory, as a server makes).
    var accounts: AccountBook
    let box: SecretBox
    let options: Options

    /// Settings of the engine and the API that a few tests change.
    struct Options: Sendable {
        var sharedWorkers = 3
        var http: (any HTTPPerformer)?
        var logger: Logger?
        /// Where uploads are written (nil: the disk).
        var uploadFiles: (any UploadFiles)?
    }

    init(rateLimit: Int? = nil, quota: Int? = nil, options: Options = Options()) async throws {
        directory = TemporaryDirectory.uniquePath("runlog-http")
        self.rateLimit = rateLimit
        self.quota = quota
        self.options = options
        store = try LMDBEventStore(directory: directory)
        box = try SecretBox.load(environmentValue: nil, dataDirectory: directory)
        var made: [String] = []
        for role in [Role.admin, .service, .auditor] {
            let key = KeyEvent.make(role: role, name: "test \(role.rawValue)")
            _ = try await store.append(to: KeyEvent.stream, [key.event])
            made.append(key.key)
        }
        (admin, service, auditor) = (made[0], made[1], made[2])
        (engine, importers, accounts, api) = try await Self.start(store, directory: directory, rateLimit: rateLimit,
                                                                  quota: quota, box: box, options: options)
    }

    /// Runs `body` with a fresh server, then closes it (awaited) whether `body` returns or throws.
    static func with<Value>(rateLimit: Int? = nil, quota: Int? = nil, options: Options = Options(),
                            _ body: (TestServer) async throws -> Value) async throws -> Value {
        try await TestServer(rateLimit: rateLimit, quota: quota, options: options).closing(body)
    }

    /// Profiles one batch task may carry (small, so the limit is cheap to reach in tests).
    static let maxBatchProfiles = 50

    private static func start(_ store: LMDBEventStore, directory: String, rateLimit: Int?, quota: Int?, box: SecretBox,
                              options: Options) async throws -> (WorkflowEngine, ImporterService, AccountBook, RunlogAPI) {
        var configuration = EngineConfiguration(dailyRunQuota: quota, sharedWorkers: options.sharedWorkers)
        if let http = options.http { configuration.http = http }
        // The server's own composition (`RunlogParts`, as `buildApplication` makes it).
        let parts = try await RunlogParts.open(store: store, box: box, uploads: directory + "/uploads", engine: configuration,
                                               files: options.uploadFiles ?? DiskUploadFiles())
        await parts.engine.start()
        await parts.importers.start()
        let api = parts.api(rateLimit: rateLimit, maxBatchProfiles: maxBatchProfiles,
                            logger: options.logger ?? Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (parts.engine, parts.importers, parts.accounts, api)
    }

    /// Stops everything and opens the directory again, as a restarted server would.
    func reopen() async throws {
        await importers.shutdown()
        await engine.shutdown()
        store.close()
        store = try LMDBEventStore(directory: directory)
        (engine, importers, accounts, api) = try await Self.start(store, directory: directory, rateLimit: rateLimit,
                                                                  quota: quota, box: box, options: options)
    }

    func close() async {
        await importers.shutdown()
        await engine.shutdown()
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var application: some ApplicationProtocol { Application(responder: api.makeResponder()) }

    /// Runs `body` with a client of the application.
    @discardableResult
    func test<Value: Sendable>(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        try await application.test(.router, body)
    }
}

extension TestClientProtocol {
    /// Sends a request with `key` (nil: none) and a JSON body, and returns status, headers and JSON.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method,
        _ uri: String,
        key: String?,
        json: JSONValue? = nil,
        body: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue) {
        var fields = headers
        if let key { fields[.authorization] = "Bearer \(key)" }
        var buffer: ByteBuffer?
        if let json {
            fields[.contentType] = "application/json"
            buffer = ByteBuffer(string: json.jsonText)
        } else if let body {
            buffer = ByteBuffer(string: body)
        }
        return try await execute(uri: uri, method: method, headers: fields, body: buffer) { response in
            let bytes = Array(response.body.readableBytesView)
            let parsed = bytes.isEmpty ? JSONValue.null : ((try? JSONValue(parsing: bytes)) ?? .string(String(decoding: bytes, as: UTF8.self)))
            return (response.status, response.headers, parsed)
        }
    }
}

extension JSONValue {
    var int: Int? { numericValue.map { Int($0) } }

    subscript(index: Int) -> JSONValue? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }
}

/// An API-triggered workflow definition with one required string and an optional integer.
let apiDefinition = try! JSONValue(parsing: #"""
    {"trigger": {"kind": "api", "schema": {"fields": [
        {"name": "email", "type": "string", "required": true},
        {"name": "amount", "type": "integer"}]}},
     "routes": [
        {"name": "big", "condition": {"parameters.amount": {"$gte": 100}}, "steps": [{"step_uid": "s-decline", "type": "decline"}]},
        {"name": "else", "steps": [{"step_uid": "s-approve", "type": "approve"}]}]}
    """#)

/// An event-triggered workflow on `inquiry.completed`.
let eventDefinition = try! JSONValue(parsing: #"""
    {"trigger": {"kind": "event", "event_type": "inquiry.completed"},
     "routes": [{"name": "all", "steps": [
        {"step_uid": "t", "type": "tag", "parameters": {"tags": ["seen"]}},
        {"step_uid": "l", "type": "add_to_list", "parameters": {"list": "seen-ips", "path": "event.data.ip"}}]}]}
    """#)
