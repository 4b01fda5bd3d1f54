import ArgumentParser
import EventLog
import Foundation
import LMDBStore
import Logging
import PostgresStore

/// `--data-dir` and `--store`, shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "The data directory (default: $RUNLOG_DATA_DIR, else ./data). With --store, the node's own files: its copy of the log, uploads, secret.key.",
            valueName: "dir"
        )
    )
    var dataDir: String?

    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            "A log in PostgreSQL, postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]...]/DATABASE[?schema=NAME]: several hosts are a primary and its standbys (default: $RUNLOG_STORE; neither: the data directory's own log).",
            valueName: "url"
        )
    )
    var storeURL: String?

    var directory: String {
        if let dataDir { return dataDir }
        if let env = ProcessInfo.processInfo.environment["RUNLOG_DATA_DIR"], !env.isEmpty { return env }
        return "./data"
    }

    /// The PostgreSQL log to use, or nil for the data directory's LMDB log.
    var postgresURL: String? {
        if let storeURL { return storeURL }
        if let env = ProcessInfo.processInfo.environment["RUNLOG_STORE"], !env.isEmpty { return env }
        return nil
    }

    /// The PostgreSQL log without its password, for messages; nil for the data directory's log.
    var postgresLocation: String? { postgresURL.map(PostgresLog.withoutPassword) }

    /// Where a node keeps its copy of a PostgreSQL log (`PostgresEventStore`).
    var mirrorDirectory: String { directory + "/mirror" }

    /// Opens the store; read-only opens work while a server holds it for writing (on PostgreSQL,
    /// they then read the server's copy of the log).
    func open(readOnly: Bool) async throws -> any EventStore {
        if let url = postgresURL { return try await openPostgres(url, readOnly: readOnly) }
        do {
            return try LMDBEventStore(directory: directory, options: .init(readOnly: readOnly))
        } catch {
            throw CLIError(error.message)
        }
    }

    /// Opens the store for a writing command; when a server holds the data directory, says to go
    /// through the server.
    func openForWriting() async throws -> any EventStore {
        if let url = postgresURL { return try await openPostgres(url, readOnly: false) }
        do {
            return try LMDBEventStore(directory: directory)
        } catch where error.code == .writerLocked {
            throw CLIError(error.message + "; while a server runs, send the command to it with --server URL --key KEY")
        } catch {
            throw CLIError(error.message)
        }
    }

    /// The data directory's LMDB log itself (backups, and what only a data directory has).
    func openDataDirectory(readOnly: Bool) throws -> LMDBEventStore {
        if let location = postgresLocation {
            throw CLIError("this command works on a data directory's log, not on \(location): leave out --store and RUNLOG_STORE")
        }
        do {
            return try LMDBEventStore(directory: directory, options: .init(readOnly: readOnly))
        } catch {
            throw CLIError(error.message)
        }
    }

    /// The node's store on PostgreSQL: appends go to the database, reads to the node's copy of the
    /// log in the data directory. While a server of this node holds that copy, a read-only open
    /// reads it as the server keeps it, and a writing command is refused.
    private func openPostgres(_ url: String, readOnly: Bool) async throws -> any EventStore {
        let logger = Logger(label: "runlog.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        do {
            return try await PostgresEventStore.open(url: url, mirror: mirrorDirectory, creating: !readOnly, logger: logger)
        } catch where error.code == .writerLocked {
            guard readOnly else {
                throw CLIError("a server holds this node's copy of the log in \(mirrorDirectory); send the command to it "
                               + "with --server URL --key KEY")
            }
            do {
                return try LMDBEventStore(directory: mirrorDirectory, options: .init(readOnly: true))
            } catch {
                throw CLIError(error.message)
            }
        } catch {
            throw CLIError(error.message)
        }
    }
}

/// A failure to report as `Error: message` with exit code 1 (ArgumentParser prints it so).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Buffered standard output: one `write` per 64 KiB, and a flush on demand.
struct Output {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("Error: " + message + "\n").utf8))
}
