import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Synchronization
import Testing
@testable import Importers
import WorkflowModel
import Workflows

/// A clock tests can move (to cross quota days, or to make events old).
final class TestClock: Sendable {
    private let now = Mutex(Int64(1_790_000_000_000))
    var value: Int64 { now.withLock { $0 } }
    func advance(days: Int) { now.withLock { $0 += Int64(days) * 86_400_000 } }
}

/// A store, an engine and an importer service on a fresh data directory.
final class ImportFixture: AsyncClosable, @unchecked Sendable {
    let path: String
    var store: LMDBEventStore
    var engine: WorkflowEngine
    var service: ImporterService
    let clock = TestClock()
    /// Seals S3 credentials; the same across restarts, as a server's key file is.
    let box = SecretBox.random()
    let quota: Int?
    let batchSize: Int
    let s3: (@Sendable (S3Settings, S3Secret) -> any S3ObjectSource)?

    init(quota: Int? = nil, batchSize: Int = 1_000,
         s3: (@Sendable (S3Settings, S3Secret) -> any S3ObjectSource)? = nil) async throws {
        path = TemporaryDirectory.uniquePath("runlog-imp")
        self.quota = quota
        self.batchSize = batchSize
        self.s3 = s3
        store = try LMDBEventStore(directory: path, options: .init(mapSize: 512 << 20))
        (engine, service) = try await Self.start(store, quota: quota, clock: clock, batchSize: batchSize, path: path,
                                                 box: box, s3: s3)
    }

    /// Runs `body` with a fresh fixture, then closes it (awaited) whether `body` returns or throws.
    static func with<Value>(quota: Int? = nil, batchSize: Int = 1_000,
                            s3: (@Sendable (S3Settings, S3Secret) -> any S3ObjectSource)? = nil,
                            _ body: (ImportFixture) async throws -> Value) async throws -> Value {
        try await ImportFixture(quota: quota, batchSize: batchSize, s3: s3).closing(body)
    }

    static func start(_ store: LMDBEventStore, quota: Int?, clock: TestClock, batchSize: Int, path: String, box: SecretBox,
                      s3: (@Sendable (S3Settings, S3Secret) -> any S3ObjectSource)?) async throws -> (WorkflowEngine, ImporterService) {
        let engine = try await WorkflowEngine(store: store, configuration: EngineConfiguration(
            dailyRunQuota: quota, clock: { clock.value }))
        await engine.start()
        let service = try s3.map {
            try ImporterService(engine: engine, uploads: path + "/uploads", secrets: box, batchSize: batchSize, s3: $0)
        } ?? ImporterService(engine: engine, uploads: path + "/uploads", secrets: box, batchSize: batchSize)
        await service.start()
        return (engine, service)
    }

    /// Stops the service and engine without finishing anything, then starts them again.
    func restart() async throws {
        await service.shutdown()
        await engine.shutdown()
        store.close()
        store = try LMDBEventStore(directory: path, options: .init(mapSize: 512 << 20))
        (engine, service) = try await Self.start(store, quota: quota, clock: clock, batchSize: batchSize, path: path,
                                                 box: box, s3: s3)
    }

    func close() async {
        await service.shutdown()
        await engine.shutdown()
        store.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    func activeWorkflow(_ definition: String) async throws -> String {
        let wf = try await engine.createWorkflow(name: "wf", actor: "test")
        _ = try await engine.saveDraft(workflowId: wf.id, definition: try JSONValue(parsing: definition),
                                       expectedDraftVersion: nil, actor: "test")
        _ = try await engine.publish(workflowId: wf.id, description: "v", activate: true, actor: "test")
        return wf.id
    }

    func upload(_ csv: String, name: String = "file.csv") async throws -> DataSourceRecord {
        let bytes = Array(csv.utf8)
        // Uneven chunks, as a network upload would bring.
        let chunks = stride(from: 0, to: bytes.count, by: 7_001).map { Array(bytes[$0..<min(bytes.count, $0 + 7_001)]) }
        return try await service.createCSVDataSource(name: name, chunks: ChunkList(chunks), actor: "test")
    }

    /// Starts a run and waits for it to stop running.
    func run(_ importerId: String, dryRun: Bool = false) async throws -> ImportRunRecord {
        let started = try await service.startRun(importerId: importerId, dryRun: dryRun, actor: "test")
        return try await finished(started.id)
    }

    func finished(_ runId: String) async throws -> ImportRunRecord {
        await service.waitUntilIdle()
        return try #require(await service.snapshot.runs[runId])
    }
}

let apiWorkflow = #"""
    {"trigger": {"kind": "api", "schema": {"fields": [
        {"name": "ip", "type": "string", "required": true},
        {"name": "score", "type": "integer"}]}},
     "routes": [{"name": "all", "steps": [{"step_uid": "l", "type": "add_to_list", "parameters": {"list": "ips", "path": "parameters.ip"}}]}]}
    """#
