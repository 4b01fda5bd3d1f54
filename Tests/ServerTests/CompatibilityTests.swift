// A data directory written before the storage seam and the module split (early December 2026)
// opens, verifies with the same head hash and serves the same answers with today's code.
import Access
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LMDBStore
import Logging
@testable import RunlogHTTP
import RunlogJSON
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

@Suite("Compatibility")
struct CompatibilityTests {
    /// `Fixtures/log-2026-12`, made by `Fixtures/make-log-2026-12.py` with the runlog of that time.
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/log-2026-12").path

    @Test("a data directory of an earlier version opens, verifies with its head hash, and answers as before",
          .timeLimit(.minutes(1)))
    func earlierDataDirectory() async throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.data, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.data)
        for file in ["data.mdb"] {
            try FileManager.default.copyItem(atPath: Self.fixture + "/" + file, toPath: dir.data + "/" + file)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir.data + "/" + file)
        }
        let verified = try String(contentsOfFile: Self.fixture + "/verify.txt", encoding: .utf8)
        // "intact: N events, head hash H" from the runlog that wrote it.
        let words = verified.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
        let count = try #require(UInt64(words[1]))
        let hash = String(try #require(words.last))

        let store = try LMDBEventStore(directory: dir.data)
        guard case .intact(let verifiedCount, let head) = try store.verify(progress: nil) else {
            Issue.record("the earlier log does not verify")
            store.close()
            return
        }
        #expect(verifiedCount == count)
        #expect(head.hex == hash)
        // A key of this test's own (the fixture keeps no key text), beside the fixture's keys.
        let made = KeyEvent.make(role: .admin, name: "compatibility test")
        try await store.append(to: KeyEvent.stream, [made.event])
        let admin = made.key

        let box = try SecretBox.load(environmentValue: nil, dataDirectory: dir.data)
        let parts = try await RunlogParts.open(store: store, box: box, uploads: dir.path + "/uploads",
                                               engine: EngineConfiguration())
        await parts.engine.start()
        await parts.importers.start()
        let api = parts.api(rateLimit: nil, maxBatchProfiles: 50,
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await Teardown {
            await parts.importers.shutdown()
            await parts.engine.shutdown()
            store.close()
        }.closing { _ in
            try await Application(responder: api.makeResponder()).test(.router) { client in
                let list = try await client.call(.get, "/v1/workflows", key: admin)
                #expect(list.status == .ok)
                let workflows = try #require(list.json["workflows"]?.arrayValue)
                #expect(workflows.count == 1)
                let workflow = try #require(workflows.first)
                let id = try #require(workflow["id"]?.stringValue)
                #expect(workflow["name"] == "Screening" && workflow["active_version"] == 1)

                let versions = try await client.call(.get, "/v1/workflows/\(id)/versions", key: admin).json
                #expect(versions["versions"]?.arrayValue?.compactMap { $0["description"]?.stringValue }
                        == ["the first version", "stricter"])
                let rollout = try await client.call(.get, "/v1/workflows/\(id)/rollout", key: admin)
                #expect(rollout.status == .ok && rollout.json["percentage"]?.numericValue == 50)

                // 16 runs through the API and one per valid row of the import (17 of 20).
                let runs = try #require(try await client.call(.get, "/v1/workflows/\(id)/runs?limit=100", key: admin)
                    .json["runs"]?.arrayValue)
                #expect(runs.count == 33)
                #expect(runs.allSatisfy { $0["status"] == "completed" })
                let lists = try await client.call(.get, "/v1/lists", key: admin).json
                #expect(lists["lists"]?.arrayValue?.isEmpty == false)
                let keys = try #require(try await client.call(.get, "/v1/keys", key: admin).json["keys"]?.arrayValue)
                let active = keys.filter { $0["revoked_at"] == nil || $0["revoked_at"] == .null }
                #expect(active.count == 3, "the fixture's admin and service keys, and this test's")
                let fixtureAdmin = try #require(active.first { $0["role"] == "admin" && $0["id"]?.stringValue != made.id }?["id"]?
                    .stringValue)

                // The answer kept for the fixture admin's Idempotency-Key is replayed, and nothing is
                // recorded: the request as the script sent it (Python's json.dumps of the body).
                let before = try store.head()
                let body = #"{"parameters": {"email": "u0@example.com", "amount": 0}}"#
                let retry = try await api.idempotency.run(
                    keyId: fixtureAdmin, idempotencyKey: "fixture-run-0",
                    fingerprint: IdempotencyCache.fingerprint(method: "POST", path: "/v1/workflows/\(id)/runs",
                                                              body: Array(body.utf8))
                ) {
                    Issue.record("the command ran again")
                    return Answer(["ran": true])
                }
                #expect(retry.status == .created, "\(retry.body)")
                #expect(try JSONValue(parsing: Array(retry.body.utf8))["parameters"]?["email"] == "u0@example.com")
                #expect(retry.headers[IdempotencyCache.replayed] == "true")
                #expect(try store.head() == before)

                // The log goes on from the earlier head: a new run, and the chain still verifies.
                let run = try await client.call(.post, "/v1/workflows/\(id)/runs", key: admin,
                                                json: ["parameters": ["email": "new@example.com", "amount": 300]])
                #expect(run.json["id"]?.stringValue != nil, "\(run.json)")
                guard case .intact(let after, _) = try store.verify(progress: nil) else {
                    Issue.record("the log does not verify after an append")
                    return
                }
                #expect(after > count)
            }
        }
    }
}
