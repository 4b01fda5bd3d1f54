import RunlogJSON
import ArgumentParser
import EventLog
import LMDBStore
import PostgresStore
import Foundation
import WorkflowModel
import Workflows

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Append to, read, follow, verify and measure the event log.",
        subcommands: [Append.self, Read.self, Verify.self, Stats.self, Copy.self]
    )
}

extension LogCommand {
    struct Append: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append one event and print the stored envelope as one JSON line."
        )

        @OptionGroup var store: StoreOptions
        @Option(help: "The stream to append to.") var stream: String
        @Option(help: "The event type.") var type: String
        @Option(help: "The payload, a JSON document.") var payload: String
        @Option(
            name: .customLong("expected-version"),
            help: "Append only if the stream is at this version: a number, 'any', 'no-stream' or 'exists'."
        )
        var expectedVersion: String = "any"
        @Option(help: "The event id (a UUID); re-appending an id already stored changes nothing.") var id: String?
        @Option(help: "Who appends (metadata).") var actor: String?
        @Option(name: .customLong("correlation-id"), help: "Correlation id (metadata).") var correlationId: String?
        @Option(name: .customLong("causation-id"), help: "Causation id (metadata).") var causationId: String?

        func run() async throws {
            let expected: ExpectedVersion
            switch expectedVersion {
            case "any": expected = .any
            case "no-stream": expected = .noStream
            case "exists": expected = .streamExists
            default:
                guard let v = UInt64(expectedVersion) else {
                    throw ValidationError(
                        "--expected-version \"\(expectedVersion)\" is invalid: a number, 'any', 'no-stream' or 'exists'"
                    )
                }
                expected = .exact(v)
            }
            var eventId = UUID.timeOrdered()
            if let id {
                guard let parsed = UUID(uuidString: id) else {
                    throw ValidationError("--id \"\(id)\" is invalid: must be a UUID")
                }
                eventId = parsed
            }
            if DomainEvent.isDomainType(type) || ["apikey.", "job.", "account."].contains(where: type.hasPrefix) {
                throw ValidationError("--type \"\(type)\" is invalid: types beginning with workflow., run., object., "
                                      + "list., apikey., job. or account. are written only by Runlog itself")
            }
            let bytes = Array(payload.utf8)
            do {
                _ = try JSONValue(parsing: bytes)
            } catch {
                throw ValidationError("--payload \(quoted(payload)) is invalid: \(error.message); it must be one JSON "
                                      + "document (RFC 8259: no trailing commas, no byte order mark)")
            }
            let store = try await self.store.open(readOnly: false)
            defer { store.close() }
            let event = NewEvent(
                id: eventId, type: type, payload: bytes,
                metadata: EventMetadata(actor: actor, correlationId: correlationId, causationId: causationId)
            )
            let result: AppendResult
            do {
                result = try await store.append(to: stream, expected: expected, [event])
            } catch {
                throw CLIError(error.message)
            }
            guard let stored = try store.event(at: result.firstPosition) else {
                throw CLIError("position \(result.firstPosition) is missing after the append")
            }
            var out = Output()
            out.line(stored.jsonLine())
            out.flush()
        }
    }

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as JSON Lines: the whole log, or one stream.",
            discussion: """
                Without --stream, --from is a global position; with --stream it is a version of that \
                stream. --follow keeps printing new events as they are committed (forward only).
                """
        )

        @OptionGroup var store: StoreOptions
        @Option(help: "Start here (inclusive): a position, or a stream version with --stream.") var from: UInt64?
        @Option(help: "Only this stream.") var stream: String?
        @Option(name: .customLong("stream-prefix"), help: "Only streams whose name begins with this.")
        var streamPrefix: String?
        @Option(help: "Only events of this type (repeat for several).") var type: [String] = []
        @Option(help: "At most this many events.") var limit: Int?
        @Flag(help: "Newest first.") var backward = false
        @Flag(help: "After the stored events, wait for and print new ones until interrupted.") var follow = false

        func validate() throws {
            if backward && follow { throw ValidationError("--follow reads forward; it cannot be used with --backward") }
            if let limit, limit < 0 { throw ValidationError("--limit \(limit) is invalid: must be 0 or more") }
            if stream != nil && streamPrefix != nil {
                throw ValidationError("--stream and --stream-prefix cannot be used together")
            }
        }

        func run() async throws {
            let store = try await self.store.open(readOnly: true)
            defer { store.close() }
            var out = Output()
            var remaining = limit ?? .max
            let types = type.isEmpty ? nil : Set(type)
            let direction: ReadDirection = backward ? .backward : .forward
            do {
                if let stream {
                    var next = from
                    while remaining > 0 {
                        let page = try store.readStream(stream, from: next, direction: direction, limit: 1000)
                        for event in page where types?.contains(event.type) ?? true {
                            out.line(event.jsonLine())
                            remaining -= 1
                            if remaining == 0 { break }
                        }
                        guard let last = page.last, page.count == 1000 else { break }
                        if direction == .backward && last.streamVersion == 1 { break }
                        next = direction == .forward ? last.streamVersion + 1 : last.streamVersion - 1
                    }
                    if follow && remaining > 0 {
                        let start = try store.readStream(stream, direction: .backward, limit: 1).first
                        let startPosition = try (start?.position ?? store.head().position) + 1
                        out.flush()
                        try await followLog(store, from: startPosition, filter: EventFilter(types: types, streamPrefix: stream),
                                            exactStream: stream, remaining: remaining, out: &out)
                    }
                } else {
                    let filter = EventFilter(types: types, streamPrefix: streamPrefix)
                    if follow {
                        try await followLog(store, from: from ?? 1, filter: filter, exactStream: nil,
                                            remaining: remaining, out: &out)
                    } else {
                        var next = from
                        while remaining > 0 {
                            let page = try store.readAll(from: next, direction: direction, filter: filter,
                                                         limit: min(remaining, 4096))
                            for event in page { out.line(event.jsonLine()) }
                            remaining -= page.count
                            guard let last = page.last, page.count == 4096 else { break }
                            if direction == .backward && last.position == 1 { break }
                            next = direction == .forward ? last.position + 1 : last.position - 1
                        }
                    }
                }
            } catch let error as EventStoreError {
                out.flush()
                throw CLIError(error.message)
            }
            out.flush()
        }

        private func followLog(
            _ store: any EventStore, from: UInt64, filter: EventFilter, exactStream: String?,
            remaining: Int, out: inout Output
        ) async throws {
            var remaining = remaining
            var iterator = store.subscribe(from: from, filter: filter).makeAsyncIterator()
            while remaining > 0 {
                // Flush before the subscription reads or waits, so a follower sees each event
                // as soon as it is committed.
                if !iterator.hasBuffered { out.flush() }
                guard let event = try await iterator.next() else { break }
                if let exactStream, event.stream != exactStream { continue }
                out.line(event.jsonLine())
                remaining -= 1
            }
            out.flush()
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain: exit 0 when intact, 1 naming the first bad position.",
            discussion: "With --store, the chain in the database is read and checked (not this node's copy)."
        )

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let report: VerifyReport
            if let url = store.postgresURL {
                // The database itself, not this node's copy of it.
                report = try await PostgresLog.verifying(url: url)
            } else {
                let store = try await self.store.open(readOnly: true)
                defer { store.close() }
                do {
                    report = try store.verify()
                } catch {
                    throw CLIError(error.message)
                }
            }
            switch report {
            case .intact(let count, let head):
                print("intact: \(count) events, head hash \(head.hex)")
            case .broken(let position, let reason):
                print("broken at position \(position): \(reason)")
                throw ExitCode(1)
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Event count, streams, size on disk, head position.")

        @OptionGroup var store: StoreOptions
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            let store = try await self.store.open(readOnly: true)
            defer { store.close() }
            let stats: LogStats
            do {
                stats = try store.stats()
            } catch {
                throw CLIError(error.message)
            }
            if json {
                print("{\"events\":\(stats.eventCount),\"streams\":\(stats.streamCount),"
                      + "\"headPosition\":\(stats.head.position),\"headHash\":\"\(stats.head.hash.hex)\","
                      + "\"fileBytes\":\(stats.fileBytes),\"usedBytes\":\(stats.usedBytes),\"mapBytes\":\(stats.mapBytes)}")
            } else {
                let recorded = stats.head.position == 0 ? "" : ", recorded \(JSONText.timestamp(milliseconds: stats.head.recordedAt))"
                print("""
                    events     \(stats.eventCount)
                    streams    \(stats.streamCount)
                    head       \(stats.head.position) (hash \(stats.head.hash.hex)\(recorded))
                    on disk    \(formatBytes(stats.fileBytes)) (\(formatBytes(stats.usedBytes)) in use, map \(formatBytes(stats.mapBytes)))
                    """)
            }
        }
    }
}

/// `value` in quotes, cut at 80 characters, for error messages.
func quoted(_ value: String) -> String {
    "\"" + (value.count > 80 ? String(value.prefix(80)) + "…" : value) + "\""
}

func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
