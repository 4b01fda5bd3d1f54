public import Access
public import EventLog
import Foundation
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle
import WorkflowModel
public import Workflows
public import Importers
import Profiles

/// Settings of `runlog serve`.
public struct ServerConfiguration: Sendable {
    public var dataDirectory: String
    public var host: String
    /// 0 picks a free port (printed when the server is up).
    public var port: Int
    /// Requests per minute per API key; nil for no limit.
    public var rateLimitPerMinute: Int?
    /// Runs per UTC day over every source; nil for no limit.
    public var dailyRunQuota: Int?
    /// Profiles one batch import-and-start task may carry.
    public var maxBatchProfiles: Int
    /// Run workers that take real-time runs first, then batch runs (`EngineConfiguration.sharedWorkers`).
    public var sharedWorkers: Int = EngineConfiguration().sharedWorkers
    /// The longest batch work waits for real-time runs in flight (`EngineConfiguration.batchYieldLimit`).
    public var batchYieldLimit: Duration = EngineConfiguration().batchYieldLimit
    /// The key of the account secrets (32 bytes, base64 or hex). When nil: `RUNLOG_SECRET_KEY`
    /// from the environment, else `<data directory>/secret.key` (created on first start, mode 0600).
    public var secretKey: String?
    /// Hours an `Idempotency-Key` answer is kept; nil: forever.
    public var idempotencyHours: Int? = 24
    /// Timeouts and the cap on open connections (docs/http.md, "Connections").
    public var connections = ConnectionLimits()
    /// How long connecting to an S3 endpoint may take when an importer run reads an S3 data source.
    public var s3ConnectTimeout: Duration = .seconds(5)
    /// Whether the dashboard's session cookie is always `Secure` (else only over TLS).
    public var secureCookies = false

    public init(dataDirectory: String, host: String = "127.0.0.1", port: Int = 8080,
                rateLimitPerMinute: Int? = 60_000, dailyRunQuota: Int? = nil, maxBatchProfiles: Int = 10_000,
                secretKey: String? = nil) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.rateLimitPerMinute = rateLimitPerMinute
        self.dailyRunQuota = dailyRunQuota
        self.maxBatchProfiles = maxBatchProfiles
        self.secretKey = secretKey
    }
}

/// Rebuilds the read models from `store` and builds the server: the HTTP application, with the
/// engine as a service that starts before it and stops after it, so commands in flight finish
/// before the store closes (the application owns the store from here on, and closes it also when
/// this throws). `onRunning` gets the bound port.
public func buildApplication(
    _ configuration: ServerConfiguration,
    store: any EventStore,
    logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    do {
        let box = try SecretBox.load(
            environmentValue: configuration.secretKey ?? ProcessInfo.processInfo.environment[SecretBox.environmentVariable],
            dataDirectory: configuration.dataDirectory)
        let parts = try await RunlogParts.open(
            store: store, box: box, uploads: configuration.dataDirectory + "/uploads",
            engine: EngineConfiguration(dailyRunQuota: configuration.dailyRunQuota, sharedWorkers: configuration.sharedWorkers,
                                        http: AsyncHTTPClientPerformer(), batchYieldLimit: configuration.batchYieldLimit),
            s3ConnectTimeout: configuration.s3ConnectTimeout)
        let (engine, importers) = (parts.engine, parts.importers)
        var api = parts.api(rateLimit: configuration.rateLimitPerMinute, idempotencyHours: configuration.idempotencyHours,
                            maxBatchProfiles: configuration.maxBatchProfiles, logger: logger)
        api.secureCookies = configuration.secureCookies
        let registry = ConnectionRegistry(maxConnections: configuration.connections.maxConnections)
        var app = Application(
            responder: api.makeResponder(),
            server: configuration.connections.server(registry: registry, logger: logger),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "runlog"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
        app.addServices(EngineService(engine: engine, importers: importers, store: store),
                        IdempotencySweeper(cache: api.idempotency, logger: logger))
        return app
    } catch {
        store.close()
        throw error
    }
}

/// Deletes expired `Idempotency-Key` records at start and then every hour, until shutdown, and
/// rewrites records that still hold a new key's text. Without a retention (records kept
/// forever) nothing expires: it makes the one pass at start, for those rewrites.
struct IdempotencySweeper: Service {
    let cache: IdempotencyCache
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let deleted = try await cache.sweep()
                    if deleted > 0 { logger.info("deleted \(deleted) expired idempotency records") }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("cannot delete expired idempotency records", metadata: ["error": .string("\(error)")])
                }
                guard cache.retention != nil else { return }
                try? await Task.sleep(for: .seconds(3_600))
            }
        }
    }
}

/// Starts the engine (projection and run workers) and, on graceful shutdown, after the HTTP
/// server has finished its requests, stops it and closes the store.
struct EngineService: Service {
    let engine: WorkflowEngine
    let importers: ImporterService
    let store: any EventStore

    func run() async throws {
        await engine.start()
        await importers.start()
        try? await gracefulShutdown()
        // Importer runs stop at a batch boundary and resume from their checkpoints next start.
        await importers.shutdown()
        await engine.shutdown()
        await store.shutdown()
    }
}

/// The composition of the parts behind the API on one store: the start-up replay that builds
/// every read model in one pass over the log, then the engine, the importers, the keys and the
/// integration accounts made from what it built.
public struct RunlogParts: Sendable {
    public let store: any EventStore
    public let engine: WorkflowEngine
    public let importers: ImporterService
    public let keys: KeyRing
    public let accounts: AccountBook
    /// The passes over the log the start-up made (one).
    public let startupPasses: Int

    /// Reads the log once for every read model and makes the parts (not started). The engine's
    /// outbound requests use `accounts` for their credentials.
    public static func open(store: any EventStore, box: SecretBox, uploads: String, engine configuration: EngineConfiguration,
                            s3ConnectTimeout: Duration = .seconds(5),
                            files: any UploadFiles = DiskUploadFiles()) async throws -> RunlogParts {
        let replay = LogReplay()
        let accounts = AccountBook(store: store, box: box, registeringWith: replay)
        let engineModels = EngineReplay(registeringWith: replay)
        let keys = KeyRing(registeringWith: replay)
        let importerModels = ImportersReplay(registeringWith: replay)
        // The run tables first: building them is a pass of its own, needed only the first time.
        try await store.attach(RunsProjection())
        let head = try replay.run(store)
        var configuration = configuration
        configuration.credentials = accounts
        let engine = try await WorkflowEngine(store: store, configuration: configuration, replayed: engineModels)
        let importers = try ImporterService(engine: engine, uploads: uploads, secrets: box, files: files,
                                            s3ConnectTimeout: s3ConnectTimeout, replayed: importerModels.state(at: head.position))
        return RunlogParts(store: store, engine: engine, importers: importers, keys: keys, accounts: accounts,
                           startupPasses: replay.passes)
    }

    /// The routes of every API dialect on these parts.
    func api(rateLimit: Int?, idempotencyHours: Int? = IdempotencyCache.defaultRetentionHours, maxBatchProfiles: Int,
             logger: Logger) -> RunlogAPI {
        RunlogAPI(engine: engine, keys: keys, importers: importers, accounts: accounts,
                  tasks: BatchTasks(engine: engine, maxProfiles: maxBatchProfiles), rateLimit: rateLimit,
                  idempotencyHours: idempotencyHours, logger: logger)
    }
}
