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
