// HTTP API tests of error answers, the daily quota, the rate limit per key, and Idempotency-Key
// (retries, lost answers, retention).
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

extension APITests {
    @Test("errors: one JSON shape and the right status; bad input changes nothing")
    func errors() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let head = try server.store.head().position
                let notJSON = try await client.call(.post, "/v1/workflows", key: key, body: "{name: ")
                #expect(notJSON.status == .badRequest)
                #expect(notJSON.json["error"]?["code"] == "bad_request")
                #expect(notJSON.json["error"]?["message"]?.stringValue?.isEmpty == false)
                let notObject = try await client.call(.post, "/v1/workflows", key: key, json: [1, 2])
                #expect(notObject.status == .badRequest)
                let unknown = try await client.call(.post, "/v1/workflows", key: key, json: ["name": "a", "colour": "red"])
                #expect(unknown.status == .unprocessableContent)
                #expect(unknown.json["error"]?["field"] == "colour")
                #expect(unknown.json["error"]?["value"] == "\"red\"")
                let wrongType = try await client.call(.post, "/v1/workflows", key: key, json: ["name": 5])
                #expect(wrongType.json["error"]?["field"] == "name")
                #expect(wrongType.json["error"]?["message"]?.stringValue?.contains("string") == true)
                let blank = try await client.call(.post, "/v1/workflows", key: key, json: ["name": "  "])
                #expect(blank.status == .unprocessableContent)
                let route = try await client.call(.get, "/v1/nothing", key: key)
                #expect(route.status == .notFound)
                #expect(route.json["error"]?["code"] == "not_found")
                let big = String(repeating: "x", count: RunlogRequestContext.bodyLimit + 1)
                let tooLarge = try await client.call(.post, "/v1/workflows", key: key, body: "{\"name\": \"\(big)\"}")
                #expect(tooLarge.status == .contentTooLarge)
                #expect(tooLarge.json["error"]?["message"]?.stringValue?.contains("10485760") == true)
                let badIfMatch = try await client.call(.post, "/v1/workflows/x/deactivate", key: key, headers: [.ifMatch: "abc"])
                #expect(badIfMatch.status == .badRequest)
                #expect(badIfMatch.json["error"]?["field"] == "If-Match")
                let badQuery = try await client.call(.get, "/v1/log?from=zero", key: key)
                #expect(badQuery.status == .badRequest)
                #expect(badQuery.json["error"]?["field"] == "from")
                #expect(try server.store.head().position == head)
            }
        }
    }

    @Test("quota: past the daily quota a run is 429 with the reset time")
    func quota() async throws {
        try await TestServer.with(quota: 1) { server in
            try await server.test { client in
                let id = try await Self.activeWorkflow(client, server.service)
                let body: JSONValue = ["parameters": ["email": "a@example.com"]]
                #expect(try await client.call(.post, "/v1/workflows/\(id)/runs", key: server.service, json: body).status == .created)
                let over = try await client.call(.post, "/v1/workflows/\(id)/runs", key: server.service, json: body)
                #expect(over.status == .tooManyRequests)
                #expect(over.json["error"]?["code"] == "quota_exceeded")
                #expect(over.json["error"]?["message"]?.stringValue?.contains("resets at") == true)
                #expect(Int(over.headers[.retryAfter] ?? "") ?? 0 > 0)
                let status = try await client.call(.get, "/v1/quota", key: server.auditor)
                #expect(status.json["used"] == 1)
                #expect(status.json["remaining"] == 0)
            }
        }
    }

    @Test("rate limit per key: 429 with RateLimit headers once the minute's budget is spent")
    func rateLimit() async throws {
        try await TestServer.with(rateLimit: 3) { server in
            try await server.test { client in
                for i in 0..<3 {
                    let ok = try await client.call(.get, "/v1/workflows", key: server.service)
                    #expect(ok.status == .ok)
                    #expect(ok.headers[HTTPField.Name("RateLimit-Limit")!] == "3")
                    #expect(ok.headers[HTTPField.Name("RateLimit-Remaining")!] == String(2 - i))
                }
                let limited = try await client.call(.get, "/v1/workflows", key: server.service)
                #expect(limited.status == .tooManyRequests)
                #expect(limited.json["error"]?["code"] == "rate_limited")
                #expect(limited.headers[.retryAfter] != nil)
                // Another key has its own budget.
                #expect(try await client.call(.get, "/v1/workflows", key: server.auditor).status == .ok)
            }
        }
    }

    @Test("Idempotency-Key: a retry gets the first answer and records nothing, also after a restart")
    func idempotency() async throws {
        try await TestServer.with { server in
            let headers: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "create-1"]
            let firstBody = try await server.test { client in
                let first = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": "Once"], headers: headers)
                #expect(first.status == .created)
                let head = try server.store.head().position
                let retry = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": "Once"], headers: headers)
                #expect(retry.status == .created)
                #expect(retry.json == first.json)
                #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
                #expect(try server.store.head().position == head)
                let reused = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": "Other"], headers: headers)
                #expect(reused.status == .unprocessableContent)
                #expect(reused.json["error"]?["code"] == "idempotency_key_reused")
                // The same key from another API key is another request.
                #expect(try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "Once"], headers: headers).status
                        == .created)
                // Refusals are answers too.
                let refused = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": ""],
                                                    headers: [HTTPField.Name("Idempotency-Key")!: "bad-1"])
                #expect(refused.status == .unprocessableContent)
                return first.json
            }
            let head = try server.store.head().position
            try await server.reopen()
            try await server.test { client in
                let retry = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": "Once"], headers: headers)
                #expect(retry.status == .created)
                #expect(retry.json == firstBody)
                let refused = try await client.call(.post, "/v1/workflows", key: server.service, json: ["name": ""],
                                                    headers: [HTTPField.Name("Idempotency-Key")!: "bad-1"])
                #expect(refused.status == .unprocessableContent)
                #expect(try await client.call(.get, "/v1/workflows", key: server.service).json["workflows"]?.arrayValue?.count == 2)
            }
            #expect(try server.store.head().position == head)
        }
    }

    @Test("Idempotency-Key: a command recorded before its answer was kept is not run again, also after a restart")
    func idempotencyAnswerLost() async throws {
        try await TestServer.with { server in
            let engine = server.engine
            // The command records its events, then the answer is never kept: a failure that is not
            // an answer (a 500), as when the process stops between the commit and keeping the answer.
            let cache = IdempotencyCache(store: server.store)
            await #expect(throws: CancellationError.self) {
                _ = try await cache.run(keyId: "key_1", idempotencyKey: "lost-1", fingerprint: "f1") {
                    _ = try await engine.createWorkflow(name: "Recorded", actor: nil)
                    throw CancellationError()
                }
            }
            let head = try server.store.head().position
            // The mark went in with the events.
            let mark = try #require(try server.store.requestRecord("idem/key_1/lost-1"))
            let markJSON = try JSONValue(parsing: mark)
            #expect(markJSON["fingerprint"] == "f1" && markJSON["recorded"] == true && markJSON["status"] == nil)

            try await server.reopen()
            let reopened = IdempotencyCache(store: server.store)
            let again = server.engine
            var ran = false
            let error = await #expect(throws: APIError.self) {
                _ = try await reopened.run(keyId: "key_1", idempotencyKey: "lost-1", fingerprint: "f1") {
                    ran = true
                    _ = try await again.createWorkflow(name: "Recorded", actor: nil)
                    return Answer(["ran": true])
                }
            }
            #expect(error?.status == .conflict && error?.code == "idempotency_answer_lost")
            #expect(error?.field == "Idempotency-Key")
            #expect(!ran)
            #expect(try server.store.head().position == head)
            #expect(await again.snapshot.workflows.values.filter { $0.name == "Recorded" }.count == 1)
            // Another body under the same key is still a reused key.
            let reused = await #expect(throws: APIError.self) {
                _ = try await reopened.run(keyId: "key_1", idempotencyKey: "lost-1", fingerprint: "f2") { Answer(["ran": true]) }
            }
            #expect(reused?.code == "idempotency_key_reused")
            // A command that records nothing leaves no mark.
            _ = try await reopened.run(keyId: "key_1", idempotencyKey: "read-1", fingerprint: "f3") { Answer(["read": true]) }
            await reopened.settle()
            let kept = try #require(try server.store.requestRecord("idem/key_1/read-1"))
            #expect(try JSONValue(parsing: kept)["status"] == 200)
        }
    }

    @Test("Idempotency-Key: the answer goes out after the command's one commit; a retry before the kept answer is durable gets it too")
    func idempotencyOneCommit() async throws {
        try await TestServer.with { server in
            let engine = server.engine
            // The kept answers wait in `held` until released: the command must answer without them.
            let held = HeldRecordsStore(server.store)
            let cache = IdempotencyCache(store: held)
            let commits = server.store.writerStatistics.commits
            var runs = 0
            let first = try await cache.run(keyId: "key_1", idempotencyKey: "one-1", fingerprint: "f1") {
                runs += 1
                let workflow = try await engine.createWorkflow(name: "Once", actor: nil)
                return Answer(["id": .string(workflow.id)], status: .created)
            }
            #expect(first.status == .created)
            #expect(server.store.writerStatistics.commits == commits + 1, "one durable commit before the answer")
            #expect(held.heldNames == ["idem/key_1/one-1"])
            // Durable so far: the mark that went in with the events.
            let mark = try JSONValue(parsing: try #require(try server.store.requestRecord("idem/key_1/one-1")))
            #expect(mark["recorded"] == true && mark["status"] == nil)
            // A retry now gets the first answer, from memory, and runs nothing.
            let head = try server.store.head().position
            let early = try await cache.run(keyId: "key_1", idempotencyKey: "one-1", fingerprint: "f1") {
                runs += 1
                return Answer(["ran": true])
            }
            #expect(early.status == .created && early.body == first.body)
            #expect(early.headers[IdempotencyCache.replayed] == "true")
            // The same key with another request is still refused.
            let reused = await #expect(throws: APIError.self) {
                _ = try await cache.run(keyId: "key_1", idempotencyKey: "one-1", fingerprint: "f2") { Answer(["ran": true]) }
            }
            #expect(reused?.code == "idempotency_key_reused")
            // Once written, the answer is in the store: a cache that starts afresh (a restart) finds it.
            await held.release()
            let kept = try JSONValue(parsing: try #require(try server.store.requestRecord("idem/key_1/one-1")))
            #expect(kept["status"] == 201 && kept["body"]?.stringValue == first.body)
            let restarted = IdempotencyCache(store: server.store)
            let later = try await restarted.run(keyId: "key_1", idempotencyKey: "one-1", fingerprint: "f1") {
                runs += 1
                return Answer(["ran": true])
            }
            #expect(later.status == .created && later.body == first.body)
            #expect(runs == 1)
            #expect(try server.store.head().position == head)
        }
    }

    @Test("Idempotency-Key records expire after the retention: a later retry runs again, and the sweep deletes them")
    func idempotencyRetention() async throws {
        try await TestServer.with { server in
            let hour: Int64 = 3_600_000
            let clock = Mutex<Int64>(1_000 * hour)
            let cache = IdempotencyCache(store: server.store, retentionHours: 24, now: { clock.withLock { $0 } })
            let runs = Mutex(0)
            @Sendable func command() async throws -> Answer {
                Answer(["run": .integer(Int64(runs.withLock { $0 += 1; return $0 }))])
            }
            let first = try await cache.run(keyId: "k", idempotencyKey: "a", fingerprint: "f", command)
            #expect(first.body == #"{"run":1}"#)
            clock.withLock { $0 += 23 * hour }
            // Within the retention: the first answer.
            #expect(try await cache.run(keyId: "k", idempotencyKey: "a", fingerprint: "f", command).body == #"{"run":1}"#)
            _ = try await cache.run(keyId: "k", idempotencyKey: "b", fingerprint: "f", command)
            clock.withLock { $0 += 2 * hour }
            // Past it: the key is free again.
            #expect(try await cache.run(keyId: "k", idempotencyKey: "a", fingerprint: "other", command).body == #"{"run":3}"#)
            // The sweep deletes what is past the retention and keeps the rest.
            clock.withLock { $0 += 23 * hour }
            #expect(try await cache.sweep(pageSize: 1) == 1)
            #expect(try server.store.requestRecord("idem/k/b") == nil)
            #expect(try server.store.requestRecord("idem/k/a") != nil)
            // Records without a time (written before records had one) count as expired.
            try await server.store.putRequestRecord("idem/k/old", Array(#"{"fingerprint":"f","status":200,"headers":{},"body":"{}"}"#.utf8))
            #expect(try await cache.sweep() == 1)
            #expect(try server.store.requestRecord("idem/k/old") == nil)
            // With no retention nothing expires.
            let forever = IdempotencyCache(store: server.store, retentionHours: nil, now: { clock.withLock { $0 } + 1_000 * hour })
            #expect(try await forever.run(keyId: "k", idempotencyKey: "a", fingerprint: "other", command).body == #"{"run":3}"#)
            #expect(try await forever.sweep() == 0)
        }
    }
}
