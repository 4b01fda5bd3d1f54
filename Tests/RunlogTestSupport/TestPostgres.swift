public import EventLog
import Foundation
import PostgresNIO
import PostgresStore

/// The PostgreSQL server `tools/test` starts (`tools/testing/postgres`): its URL is in
/// `RUNLOG_TEST_POSTGRES`. Each test works in a schema of its own, dropped afterwards.
public enum TestPostgres {
    public static let url = ProcessInfo.processInfo.environment["RUNLOG_TEST_POSTGRES"]

    /// Whether the PostgreSQL tests run: with a server, and always in CI (where a missing server
    /// then fails them instead of skipping them).
    public static var isEnabled: Bool { url != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// A schema name no other test uses.
    public static func schemaName() -> String {
        "t_" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
    }

    /// The test server's URL naming `schema`.
    public static func url(schema: String) throws -> String {
        guard let url else { throw TestFailure("RUNLOG_TEST_POSTGRES is not set: run the tests with tools/test") }
        return url + (url.contains("?") ? "&" : "?") + "schema=" + schema
    }

    /// Every event of the log at `url`, in order, read a page at a time through a client of its own.
    public static func forEachEvent(in url: String, _ body: (RecordedEvent) throws -> Void) async throws {
        let log = try PostgresLog(url: url)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await log.run() }
            defer { group.cancelAll() }
            var from: UInt64 = 1
            while true {
                let page = try await log.read(from: from, limit: 5_000)
                guard let last = page.last else { break }
                for event in page { try body(event) }
                from = last.position + 1
            }
        }
    }

    /// Drops `schema` on the test server, through a client of its own.
    public static func drop(_ schema: String) async {
        guard let url, let log = try? PostgresLog(url: url, schema: schema) else { return }
        await withDiscardingTaskGroup { group in
            group.addTask { await log.client.run() }
            _ = try? await log.client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
            group.cancelAll()
        }
    }
}
