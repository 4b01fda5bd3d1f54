import ArgumentParser
import EventLog
import Foundation
import LMDBStore
import Logging
import PostgresStore

extension LogCommand {
    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a log between a data directory and a PostgreSQL database, either way.",
            discussion: """
                Each of --from and --to is a data directory or a PostgreSQL log \
                (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]). Events keep their positions, \
                ids and hashes, so `runlog log verify` prints the same head hash on both; the side tables \
                (sealed secrets, Idempotency-Key answers, checkpoints) come along, and entries the source no \
                longer has are deleted from the target. A target that already \
                holds the beginning of the same log is continued (an interrupted copy resumes); one that \
                holds another log is refused. Stop the servers that write to the source first, or copy \
                again afterwards to bring the target up to date.
                """
        )

        @Option(help: ArgumentHelp("The log to copy: a data directory or a postgres:// URL.", valueName: "dir-or-url"))
        var from: String
        @Option(help: ArgumentHelp("Where to copy it: a data directory or a postgres:// URL.", valueName: "dir-or-url"))
        var to: String

        func validate() throws {
            guard from != to else { throw ValidationError("--from and --to name the same log") }
        }

        func run() async throws {
            let logger = Logger(label: "runlog.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
            do {
                try await LogEnd.open(from, writable: false, logger: logger) { source in
                    try await LogEnd.open(to, writable: true, logger: logger) { target in
                        try await copy(from: source, to: target)
                    }
                }
            } catch let error as EventStoreError {
                throw CLIError(error.message)
            }
        }

        private func copy(from source: LogEnd, to target: LogEnd) async throws {
            var head = try await target.head()
            if head.position > 0 {
                let same = try await source.envelopes(after: head.position - 1, limit: 1).first
                let checked = same?.withUnsafeBytes { Envelope.check($0, at: head.position, previous: nil) }
                guard case .success(let hash)? = checked, hash == head.hash else {
                    throw CLIError("\(PostgresLog.withoutPassword(to)) holds another log (its event at position "
                                   + "\(head.position) is not the same as in \(PostgresLog.withoutPassword(from))): copy to an "
                                   + "empty data directory or schema")
                }
            }
            var copied: UInt64 = 0
            // The source's side entries, and deletes of those the target has but the source no
            // longer does (a vault entry deleted to forget a subject stays forgotten in the copy).
            let entries = try await source.sideEntries()
            let kept = Set(entries.map { "\($0.table.rawValue)/\($0.name)" })
            let changes = entries + (try await target.sideEntries()).filter { !kept.contains("\($0.table.rawValue)/\($0.name)") }
                .map { SideChange($0.table, $0.name, nil) }
            var first = true
            while true {
                let envelopes = try await source.envelopes(after: head.position, limit: 512)
                guard !envelopes.isEmpty || first else { break }
                head = try await target.write(ReplicaBatch(envelopes: envelopes, changes: first ? changes : []))
                copied += UInt64(envelopes.count)
                first = false
            }
            let deleted = changes.count - entries.count
            print("copied \(copied) events and \(entries.count) side entries" + (deleted > 0 ? " (\(deleted) deleted)" : "")
                  + "; head \(head.position), hash \(head.hash.hex)")
        }
    }
}

/// One end of `runlog log copy`: a data directory's LMDB log or a PostgreSQL log.
private enum LogEnd {
    case lmdb(LMDBEventStore)
    case postgres(PostgresLog)

    static func isPostgres(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    /// Runs `body` with the log at `location`, closed afterwards.
    static func open(_ location: String, writable: Bool, logger: Logger,
                     _ body: (LogEnd) async throws -> Void) async throws {
        if isPostgres(location) {
            let log = try PostgresLog(url: location, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await log.run() }
                defer { group.cancelAll() }
                if log.endpoints.count > 1 { await log.locatePrimary() }
                if writable { try await log.migrate() }
                try await body(.postgres(log))
            }
        } else {
            let store = try LMDBEventStore(directory: location, options: .init(readOnly: !writable))
            defer { store.close() }
            try await body(.lmdb(store))
        }
    }

    func head() async throws -> LogHead {
        switch self {
        case .lmdb(let store): try store.head()
        case .postgres(let log): try await log.head()
        }
    }

    /// Up to `limit` envelopes after `position`, as stored.
    func envelopes(after position: UInt64, limit: Int) async throws -> [[UInt8]] {
        switch self {
        case .lmdb(let store):
            var envelopes: [[UInt8]] = []
            try store.forEachView(from: position + 1) { view in
                envelopes.append([UInt8](view.view.bytes))
                return envelopes.count < limit
            }
            return envelopes
        case .postgres(let log):
            return try await log.changes(after: position, changesAfter: UInt64.max >> 1, limit: limit).envelopes
        }
    }

    /// Every side-table entry.
    func sideEntries() async throws -> [SideChange] {
        switch self {
        case .lmdb(let store):
            return try store.sideEntries()
        case .postgres(let log):
            var entries: [SideChange] = []
            var after: UInt64 = 0
            while true {
                let batch = try await log.changes(after: UInt64.max >> 1, changesAfter: after, limit: 512)
                entries += batch.changes.filter { $0.value != nil }
                guard batch.changes.count == 512, let reached = batch.changesReached else { return entries }
                after = reached
            }
        }
    }

    func write(_ batch: ReplicaBatch) async throws -> LogHead {
        switch self {
        case .lmdb(let store): try await store.replicate(batch)
        case .postgres(let log): try await log.replicate(batch)
        }
    }
}
