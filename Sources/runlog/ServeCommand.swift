import ArgumentParser
import EventLog
import Foundation
import Hummingbird
import LMDBStore
import Logging
import PostgresStore
import RunlogHTTP
import Workflows

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API on the data directory's log (the one process that writes to it), or on a PostgreSQL log (--store).",
        discussion: """
            Stops gracefully on SIGTERM or SIGINT: requests in flight are answered, then the \
            engine stops and the store closes. Prints `listening on http://HOST:PORT` once ready. \
            Refuses a data directory that group or others may read (run chmod 700 on it), a damaged \
            data.mdb, and a log whose last --verify-tail events do not verify.
            """
    )

    @OptionGroup var store: StoreOptions
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port (0 picks a free one).") var port = 8080
    @Option(name: .customLong("rate-limit"), help: "Requests per minute per API key (0: no limit).")
    var rateLimit = 60_000
    @Option(name: .customLong("daily-run-quota"), help: "Runs that may be created per UTC day (0: no limit).")
    var dailyRunQuota = 0
    @Option(name: .customLong("max-batch-profiles"),
            help: "Profiles one import_and_start_batch_task request may carry.")
    var maxBatchProfiles = 10_000
    @Option(name: .customLong("shared-workers"),
            help: "Run workers that take real-time runs first, then batch runs (besides 1 real-time-only worker). More drain batch work faster; real-time runs wait longer while it runs.")
    var sharedWorkers = 3
    @Option(name: .customLong("batch-yield-ms"),
            help: "Milliseconds batch work (an importer's next batch, a batch run) waits for real-time runs in flight before it goes ahead anyway (0: never waits).")
    var batchYieldMs = 100
    @Option(name: .customLong("idempotency-hours"),
            help: "Hours an Idempotency-Key answer is kept; a retry after that runs the command again (0: forever).")
    var idempotencyHours = 24
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(name: .customLong("idle-timeout"),
            help: "Seconds a connection may stay idle, or take to send a request's line and headers, before it is closed.")
    var idleTimeout = 60
    @Option(name: .customLong("body-timeout"),
            help: "Seconds a request body may send nothing before its connection is closed (also closed below 1 KiB/s on average after 10 s).")
    var bodyTimeout = 30
    @Option(name: .customLong("max-connections"),
            help: "Open connections at most; at the cap a new connection closes the one idle longest (default: 10000, or half the descriptor limit when lower).")
    var maxConnections: Int?
    @Option(name: .customLong("verify-tail"),
            help: "Events at the end of the log whose hash chain is recomputed at start (0: only the head's).")
    var verifyTail = 10_000
    @Option(name: .customLong("s3-connect-timeout"),
            help: "Seconds connecting to an S3 endpoint may take when an importer run reads an S3 data source (a refused connection fails at once).")
    var s3ConnectTimeout = 5.0
    @Flag(name: .customLong("secure-cookies"),
          help: "Mark the dashboard's session cookie Secure on every response (behind a TLS proxy that sends no X-Forwarded-Proto); without it, only when the request came over TLS.")
    var secureCookies = false
    @Option(name: .customLong("lease-seconds"),
            help: "With --store: seconds this node's work lease lasts without renewal (renewed every third of it); the runs and importer runs of a node that died are taken over by another node after about this long.")
    var leaseSeconds = 10.0
    @Option(name: .customLong("node-name"),
            help: "With --store: this node's name in the database's leases table, for operators (default: HOST:PORT).")
    var nodeName: String?
    @Flag(name: .customLong("allow-broken-chain"),
          help: "Start and append even when the end of the chain does not verify (after an operator has looked).")
    var allowBrokenChain = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) must be from 0 to 65535") }
        guard rateLimit >= 0 else { throw ValidationError("--rate-limit must be 0 or more") }
        guard dailyRunQuota >= 0 else { throw ValidationError("--daily-run-quota must be 0 or more") }
        guard (0...256).contains(sharedWorkers) else { throw ValidationError("--shared-workers must be from 0 to 256") }
        guard (0...60_000).contains(batchYieldMs) else { throw ValidationError("--batch-yield-ms must be from 0 to 60000") }
        guard maxBatchProfiles >= 1 else { throw ValidationError("--max-batch-profiles must be 1 or more") }
        guard (0...87_600).contains(idempotencyHours) else {
            throw ValidationError("--idempotency-hours must be from 0 (forever) to 87600 (ten years)")
        }
        guard (1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be from 1 to 86400") }
        guard (1...86_400).contains(bodyTimeout) else { throw ValidationError("--body-timeout must be from 1 to 86400") }
        if let maxConnections, !(1...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be from 1 to 1000000")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is unknown") }
        guard s3ConnectTimeout.isFinite, s3ConnectTimeout >= 0.1, s3ConnectTimeout <= 600 else {
            throw ValidationError("--s3-connect-timeout \(s3ConnectTimeout) must be from 0.1 to 600 seconds")
        }
        guard verifyTail >= 0 else { throw ValidationError("--verify-tail \(verifyTail) is invalid: must be 0 or more") }
    }

    /// Refuses a data directory that group or others may read or enter: it holds the log (personal
    /// data, the hashes of the API keys) and maybe secret.key.
    static func checkPermissions(_ directory: String) throws {
        var info = stat()
        guard stat(directory, &info) == 0 else { return }  // a new directory is made with mode 0700
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw CLIError("data directory \(directory) is open to group or others (mode \(String(mode, radix: 8))); "
                           + "it holds the log and the keys: run chmod 700 \(directory), then start again")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in ServerLogHandler(label: label, level: level) }
        let logger = Logger(label: "runlog")
        try Self.checkPermissions(store.directory)
        var configuration = ServerConfiguration(
            dataDirectory: store.directory, host: host, port: port,
            rateLimitPerMinute: rateLimit == 0 ? nil : rateLimit, dailyRunQuota: dailyRunQuota == 0 ? nil : dailyRunQuota,
            maxBatchProfiles: maxBatchProfiles)
        configuration.sharedWorkers = sharedWorkers
        configuration.batchYieldLimit = .milliseconds(batchYieldMs)
        configuration.idempotencyHours = idempotencyHours == 0 ? nil : idempotencyHours
        raiseDescriptorLimit()
        configuration.connections = ConnectionLimits(maxConnections: maxConnections ?? ConnectionLimits.defaultMaxConnections)
        configuration.connections.idleTimeout = .seconds(idleTimeout)
        configuration.connections.bodyTimeout = .seconds(bodyTimeout)
        configuration.s3ConnectTimeout = .milliseconds(Int64((s3ConnectTimeout * 1000).rounded()))
        configuration.secureCookies = secureCookies
        if allowBrokenChain {
            logger.warning("--allow-broken-chain: appending even if the end of the hash chain does not verify")
        }
        let app: any ApplicationProtocol
        do {
            let host = self.host
            let log: any EventStore
            if let url = store.postgresURL {
                if configuration.secretKey == nil && ProcessInfo.processInfo.environment[SecretBox.environmentVariable] == nil {
                    logger.warning("""
                        \(SecretBox.environmentVariable) is not set: account secrets are sealed with this node's secret.key, \
                        which other nodes on the same database cannot open; give every node the same key (docs/operations.md)
                        """)
                }
                guard leaseSeconds >= 1, leaseSeconds <= 3600 else {
                    throw CLIError("--lease-seconds must be 1 to 3600, not \(leaseSeconds)")
                }
                if let nodeName, nodeName.isEmpty || nodeName.utf8.count > 200 || nodeName.contains(where: \.isNewline) {
                    throw CLIError("--node-name must be 1 to 200 bytes on one line, not \"\(nodeName.prefix(40))…\" "
                                   + "(\(nodeName.utf8.count) bytes)")
                }
                let lease = PostgresEventStore.LeaseSettings(
                    node: nodeName ?? "\(ProcessInfo.processInfo.hostName):\(port)",
                    timeout: .milliseconds(Int64((leaseSeconds * 1000).rounded())),
                    fenced: { reason in
                        // Fenced off the log (another node took its work, or its copy of the log is not
                        // the database's any more): it must not go on; a restart starts it afresh.
                        FileHandle.standardError.write(Data("runlog serve: \(reason); exiting (status 75)\n".utf8))
                        Foundation.exit(75)
                    })
                log = try await PostgresEventStore.open(url: url, mirror: store.mirrorDirectory, lease: lease, logger: logger)
            } else {
                var options = LMDBEventStore.Options()
                options.verifyTailEvents = verifyTail
                options.allowBrokenChain = allowBrokenChain
                log = try LMDBEventStore(directory: configuration.dataDirectory, options: options)
            }
            app = try await buildApplication(configuration, store: log, logger: logger) { port in
                FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
            }
        } catch {
            throw CLIError("\(error)")
        }
        try await app.runService()
    }
}
