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

@Suite("HTTP API")
struct APITests {
    /// Creates an active API-triggered workflow through the API and returns its id.
    static func activeWorkflow(_ client: any TestClientProtocol, _ key: String, definition: JSONValue = apiDefinition) async throws -> String {
        let created = try await client.call(.post, "/v1/workflows", key: key, json: ["name": "Screening"])
        #expect(created.status == .created)
        let id = try #require(created.json["id"]?.stringValue)
        let saved = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key, json: definition,
                                          headers: [.ifMatch: "\"0\""])
        #expect(saved.status == .ok, "\(saved.json)")
        let published = try await client.call(.post, "/v1/workflows/\(id)/versions", key: key,
                                              json: ["description": "first", "activate": true])
        #expect(published.status == .created, "\(published.json)")
        return id
    }

    @Test("authentication: no key or a wrong key is 401, a role without the right is 403")
    func roles() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let none = try await client.call(.get, "/v1/workflows", key: nil)
                #expect(none.status == .unauthorized)
                #expect(none.json["error"]?["code"] == "unauthorized")
                #expect(none.headers[.wwwAuthenticate] == "Bearer")
                #expect(try await client.call(.get, "/v1/workflows", key: "rlk_wrong").status == .unauthorized)
                #expect(try await client.call(.get, "/v1/workflows", key: nil, headers: [.authorization: "Basic abc"]).status
                        == .unauthorized)
                #expect(try await client.call(.get, "/healthz", key: nil).status == .ok)

                // Auditors read; they cannot send commands.
                #expect(try await client.call(.get, "/v1/workflows", key: server.auditor).status == .ok)
                let denied = try await client.call(.post, "/v1/workflows", key: server.auditor, json: ["name": "x"])
                #expect(denied.status == .forbidden)
                #expect(denied.json["error"]?["code"] == "forbidden")

                // Services send commands but cannot revert or manage keys.
                let id = try await Self.activeWorkflow(client, server.service)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/revert", key: server.service, json: ["to": 1]).status
                        == .forbidden)
                #expect(try await client.call(.post, "/v1/keys", key: server.service, json: ["role": "admin"]).status == .forbidden)
                #expect(try await client.call(.get, "/v1/keys", key: server.auditor).status == .forbidden)

                // Admins make keys; the key is shown once and works at once; revoked, it stops working.
                let made = try await client.call(.post, "/v1/keys", key: server.admin, json: ["role": "auditor", "name": "audit"])
                #expect(made.status == .created)
                let newKey = try #require(made.json["key"]?.stringValue)
                let newId = try #require(made.json["id"]?.stringValue)
                #expect(try await client.call(.get, "/v1/log", key: newKey).status == .ok)
                let listed = try await client.call(.get, "/v1/keys", key: server.admin)
                #expect(listed.json["keys"]?.arrayValue?.count == 4)
                #expect(!listed.json.jsonText.contains(newKey))
                #expect(try await client.call(.delete, "/v1/keys/\(newId)", key: server.admin).status == .ok)
                #expect(try await client.call(.get, "/v1/log", key: newKey).status == .unauthorized)

                // The last live admin key cannot be revoked (no one could manage keys over HTTP after);
                // once another admin key exists, it can.
                let adminId = try #require(server.api.keys.authenticate(server.admin)?.id)
                let head = try server.store.head().position
                let last = try await client.call(.delete, "/v1/keys/\(adminId)", key: server.admin)
                #expect(last.status == .conflict)
                #expect(last.json["error"]?["code"] == "last_admin_key", "\(last.json)")
                #expect(try server.store.head().position == head, "nothing recorded")
                let second = try await client.call(.post, "/v1/keys", key: server.admin, json: ["role": "admin", "name": "second"])
                let secondKey = try #require(second.json["key"]?.stringValue)
                #expect(try await client.call(.delete, "/v1/keys/\(adminId)", key: secondKey).status == .ok)
                #expect(try await client.call(.get, "/v1/keys", key: server.admin).status == .unauthorized)
                let secondId = try #require(second.json["id"]?.stringValue)
                #expect(try await client.call(.delete, "/v1/keys/\(secondId)", key: secondKey).status == .conflict)

                // The actor of every event is the key's id, and the log never holds a key's text.
                let log = try await client.call(.get, "/v1/log?type=workflow.created.v1", key: server.auditor)
                let serviceId = try #require(server.api.keys.authenticate(server.service)?.id)
                #expect(log.json["events"]?[0]?["metadata"]?["actor"]?.stringValue == serviceId)
                let all = try await client.call(.get, "/v1/log?limit=1000", key: server.auditor)
                #expect(!all.json.jsonText.contains(newKey))
                #expect(!all.json.jsonText.contains(server.admin))
            }
        }
    }

    @Test("workflows, drafts with If-Match, versions, history, description, activate, deactivate, revert")
    func workflowLifecycle() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let created = try await client.call(.post, "/v1/workflows", key: key, json: ["name": "Fraud"])
                #expect(created.status == .created)
                let id = try #require(created.json["id"]?.stringValue)
                #expect(created.headers[.location] == "/v1/workflows/\(id)")
                #expect(try await client.call(.get, "/v1/workflows/\(id)", key: key).json["name"] == "Fraud")
                #expect(try await client.call(.get, "/v1/workflows", key: key).json["workflows"]?.arrayValue?.count == 1)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/draft", key: key).status == .notFound)

                // Drafts: If-Match carries the draft version; a stale one is 412 and saves nothing.
                let first = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key, json: apiDefinition,
                                                  headers: [.ifMatch: "\"0\""])
                #expect(first.status == .ok)
                #expect(first.headers[.eTag] == "\"1\"")
                let stale = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key, json: apiDefinition,
                                                  headers: [.ifMatch: "\"0\""])
                #expect(stale.status == .preconditionFailed)
                #expect(stale.json["error"]?["code"] == "precondition_failed")
                #expect(try await client.call(.get, "/v1/workflows/\(id)/draft", key: key).headers[.eTag] == "\"1\"")
                let malformed = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key,
                                                      json: ["trigger": ["kind": "api"], "routes": [["name": "r", "condition": ["$bad": 1], "steps": []]]])
                #expect(malformed.status == .unprocessableContent)
                #expect(malformed.json["error"]?["field"] != nil)

                // Publish; If-Match on the workflow is its stream version.
                let workflow = try await client.call(.get, "/v1/workflows/\(id)", key: key)
                let etag = try #require(workflow.headers[.eTag])
                let wrong = try await client.call(.post, "/v1/workflows/\(id)/versions", key: key,
                                                  json: ["description": "v1"], headers: [.ifMatch: "\"99\""])
                #expect(wrong.status == .preconditionFailed)
                let v1 = try await client.call(.post, "/v1/workflows/\(id)/versions", key: key,
                                               json: ["description": "v1", "activate": true], headers: [.ifMatch: etag])
                #expect(v1.status == .created, "\(v1.json)")
                #expect(v1.json["version"] == 1)
                #expect(v1.json["status"] == "active")
                let again = try await client.call(.post, "/v1/workflows/\(id)/versions", key: key, json: ["description": "v1 again"])
                #expect(again.status == .conflict)

                // v2, then history, description edit, activate, deactivate, revert.
                _ = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key, json: eventDefinition)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions", key: key, json: ["description": "v2"]).status == .created)
                let edited = try await client.call(.patch, "/v1/workflows/\(id)/versions/1", key: key, json: ["description": "first"])
                #expect(edited.json["description"] == "first")
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions/2/activate", key: key).json["active_version"] == 2)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions/7/activate", key: key).status == .notFound)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/versions/7", key: key).status == .notFound)
                let v2 = try await client.call(.get, "/v1/workflows/\(id)/versions/2", key: server.auditor)
                #expect(v2.json["definition"] == eventDefinition)
                #expect(v2.json["status"] == "active")
                #expect(try await client.call(.get, "/v1/workflows/\(id)/versions/x", key: key).status == .badRequest)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/deactivate", key: key).json["active_version"] == .null)
                let reverted = try await client.call(.post, "/v1/workflows/\(id)/revert", key: server.admin,
                                                     json: ["to": 1, "activate": true])
                #expect(reverted.status == .created)
                #expect(reverted.json["version"] == 3)
                #expect(reverted.json["reverted_from"] == 1)
                #expect(reverted.json["definition"] == apiDefinition)
                let history = try await client.call(.get, "/v1/workflows/\(id)/versions", key: server.auditor)
                let versions = try #require(history.json["versions"]?.arrayValue)
                #expect(versions.map { $0["status"]?.stringValue } == ["published", "published", "active"])
                #expect(versions.map { $0["description"]?.stringValue } == ["first", "v2", "Revert to version 1"])
                #expect(try await client.call(.get, "/v1/workflows/wf_missing", key: key).status == .notFound)
            }
        }
    }

    @Test("rollouts: stage, arm counts, change percentage, promote, end")
    func rollouts() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let id = try await Self.activeWorkflow(client, key)
                _ = try await client.call(.put, "/v1/workflows/\(id)/draft", key: key, json: apiDefinition)
                let staged = try await client.call(.post, "/v1/workflows/\(id)/versions", key: key,
                                                   json: ["description": "v2", "rollout_percentage": 50, "sticky_field": "email"])
                #expect(staged.status == .created, "\(staged.json)")
                #expect(staged.json["status"] == "treatment")
                for i in 0..<40 {
                    let run = try await client.call(.post, "/v1/workflows/\(id)/runs", key: key,
                                                    json: ["parameters": ["email": .string("user\(i)@example.com")]])
                    #expect(run.status == .created)
                }
                let rollout = try await client.call(.get, "/v1/workflows/\(id)/rollout", key: key)
                let treatment = try #require(rollout.json["arms"]?["treatment"]?.int)
                let control = try #require(rollout.json["arms"]?["control"]?.int)
                #expect(treatment + control == 40)
                #expect(treatment > 5 && control > 5)
                let treated = try await client.call(.get, "/v1/workflows/\(id)/runs?arm=treatment&limit=1000", key: key)
                #expect(treated.json["runs"]?.arrayValue?.count == treatment)
                #expect(try await client.call(.patch, "/v1/workflows/\(id)/rollout", key: key, json: ["percentage": 80]).status == .ok)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/rollout", key: key).json["percentage"] == 80.0)
                #expect(try await client.call(.patch, "/v1/workflows/\(id)/rollout", key: key, json: ["percentage": 80.123]).status
                        == .unprocessableContent)
                let promoted = try await client.call(.post, "/v1/workflows/\(id)/rollout/promote", key: key)
                #expect(promoted.json["active_version"] == 2)
                #expect(promoted.json["rollout"] == .null)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/rollout/end", key: key).status == .conflict)

                // Stage an explicit rollout of v1 against v2, then end it: v2 stays active.
                #expect(try await client.call(.post, "/v1/workflows/\(id)/rollout", key: key,
                                              json: ["version": 1, "percentage": 10]).status == .created)
                let ended = try await client.call(.post, "/v1/workflows/\(id)/rollout/end", key: key)
                #expect(ended.json["active_version"] == 2)
                let past = try await client.call(.get, "/v1/workflows/\(id)/rollouts", key: key)
                #expect(past.json["rollouts"]?.arrayValue?.map { $0["status"]?.stringValue } == ["promoted", "ended"])
                // The final percentage, and every one before it with who set it.
                let rollouts = past.json["rollouts"]?.arrayValue ?? []
                #expect(rollouts.map { $0["percentage"] } == [100.0, 0.0])
                #expect(rollouts.first?["history"]?.arrayValue?.map { $0["percentage"] } == [50.0, 80.0, 100.0])
                #expect(rollouts.last?["history"]?.arrayValue?.map { $0["percentage"] } == [10.0, 0.0])
                let actor = try #require(server.api.keys.authenticate(key)?.id)
                #expect(rollouts.first?["history"]?.arrayValue?.allSatisfy { $0["by"]?.stringValue == actor } == true)
            }
        }
    }

    @Test("runs: created by the API trigger with validation, read with step history, listed with filters")
    func runs() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let id = try await Self.activeWorkflow(client, key)
                let bad = try await client.call(.post, "/v1/workflows/\(id)/runs", key: key,
                                                json: ["parameters": ["email": 5, "amount": "x"]])
                #expect(bad.status == .unprocessableContent)
                let issues = try #require(bad.json["error"]?["issues"]?.arrayValue)
                #expect(Set(issues.compactMap { $0["field"]?.stringValue }) == ["email", "amount"])
                #expect(issues.first { $0["field"] == "email" }?["value"] == "5")
                let before = try server.store.head().position
                let started = try await client.call(.post, "/v1/workflows/\(id)/runs", key: key,
                                                    json: ["parameters": ["email": "a@example.com", "amount": 150]])
                #expect(started.status == .created)
                let runId = try #require(started.json["id"]?.stringValue)
                #expect(started.headers[.location] == "/v1/runs/\(runId)")
                #expect(started.json["arm"] == "none")
                #expect(started.json["version"] == 1)
                #expect(try server.store.head().position > before)
                _ = try await client.call(.post, "/v1/workflows/\(id)/runs", key: key,
                                          json: ["parameters": ["email": "b@example.com"], "queue": "batch"])
                #expect(await server.engine.waitUntilIdle())
                let run = try await client.call(.get, "/v1/runs/\(runId)", key: server.auditor)
                #expect(run.json["status"] == "completed")
                #expect(run.json["route"] == "big")
                #expect(run.json["decision"] == "declined")
                #expect(run.json["steps"]?[0]?["step_uid"] == "s-decline")
                #expect(run.json["steps"]?[0]?["status"] == "completed")
                let all = try await client.call(.get, "/v1/workflows/\(id)/runs", key: key)
                #expect(all.json["runs"]?.arrayValue?.count == 2)
                let page = try await client.call(.get, "/v1/workflows/\(id)/runs?limit=1", key: key)
                #expect(page.json["runs"]?.arrayValue?.count == 1)
                let next = try #require(page.json["next_after"]?.stringValue)
                let rest = try await client.call(.get, "/v1/workflows/\(id)/runs?after=\(next)", key: key)
                #expect(rest.json["runs"]?.arrayValue?.count == 1)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/runs?status=completed&version=1", key: key)
                    .json["runs"]?.arrayValue?.count == 2)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/runs?status=flying", key: key).status == .badRequest)
                #expect(try await client.call(.get, "/v1/workflows/\(id)/runs?limit=0", key: key).status == .badRequest)
                #expect(try await client.call(.get, "/v1/runs/run_missing", key: key).status == .notFound)
            }
        }
    }

    @Test("events start matching workflows; objects and lists read back; a repeated event id records nothing")
    func eventsObjectsLists() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                _ = try await Self.activeWorkflow(client, key, definition: eventDefinition)
                let event: JSONValue = ["id": "evt-1", "type": "inquiry.completed", "object_type": "inquiry",
                                        "object_token": "inq_1", "data": ["ip": "10.0.0.1"],
                                        "occurred_at": "2026-11-20T10:00:00Z"]
                let posted = try await client.call(.post, "/v1/events", key: key, json: event)
                #expect(posted.status == .created, "\(posted.json)")
                #expect(posted.json["run_ids"]?.arrayValue?.count == 1)
                #expect(await server.engine.waitUntilIdle())
                let head = try server.store.head().position
                let repeated = try await client.call(.post, "/v1/events", key: key, json: event)
                #expect(repeated.status == .ok)
                #expect(repeated.json["duplicate"] == true)
                #expect(repeated.json["run_ids"] == posted.json["run_ids"])
                #expect(try server.store.head().position == head)
                #expect(await server.engine.waitUntilIdle())
                let object = try await client.call(.get, "/v1/objects/inquiry/inq_1", key: server.auditor)
                #expect(object.json["tags"] == ["seen"])
                #expect(object.json["events"]?[0]?["data"]?["ip"] == "10.0.0.1")
                #expect(object.json["events"]?[0]?["occurred_at"] == "2026-11-20T10:00:00.000Z")
                #expect(try await client.call(.get, "/v1/objects/inquiry/nope", key: key).status == .notFound)
                #expect(try await client.call(.get, "/v1/lists", key: key).json["lists"]?[0]?["id"] == "seen-ips")
                #expect(try await client.call(.get, "/v1/lists/seen-ips", key: key).json["values"] == ["10.0.0.1"])
                #expect(try await client.call(.get, "/v1/lists/none", key: key).status == .notFound)
                // Actions run on an existing object.
                let action = try JSONValue(parsing: #"""
                    {"trigger": {"kind": "action", "object_type": "inquiry", "inputs": {"fields": [
                        {"name": "note", "type": "string", "required": true}]}},
                     "routes": [{"name": "all", "steps": [{"step_uid": "d", "type": "decline"}]}]}
                    """#)
                let actionId = try await Self.activeWorkflow(client, key, definition: action)
                let ran = try await client.call(.post, "/v1/workflows/\(actionId)/actions", key: key,
                                                json: ["object_token": "inq_1", "inputs": ["note": "fraud ring"]])
                #expect(ran.status == .created, "\(ran.json)")
                #expect(ran.json["object"]?["token"] == "inq_1")
                #expect(ran.json["source"]?["kind"] == "action")
                #expect(try await client.call(.post, "/v1/workflows/\(actionId)/actions", key: key,
                                              json: ["object_token": "inq_404", "inputs": ["note": "x"]]).status == .notFound)
                let badInputs = try await client.call(.post, "/v1/workflows/\(actionId)/actions", key: key,
                                                      json: ["object_token": "inq_1", "inputs": [:]])
                #expect(badInputs.status == .unprocessableContent)
                #expect(badInputs.json["error"]?["field"] == "note")
                #expect(await server.engine.waitUntilIdle())
                #expect(try await client.call(.get, "/v1/objects/inquiry/inq_1", key: key).json["decision"] == "declined")

                let missing = try await client.call(.post, "/v1/events", key: key, json: ["type": "x", "object_type": "inquiry"])
                #expect(missing.status == .unprocessableContent)
                #expect(missing.json["error"]?["field"] == "object_token")
                let badTime = try await client.call(.post, "/v1/events", key: key,
                                                    json: ["type": "x", "object_type": "a", "object_token": "b", "occurred_at": "yesterday"])
                #expect(badTime.json["error"]?["field"] == "occurred_at")
            }
        }
    }

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
            let kept = try #require(try server.store.requestRecord("idem/key_1/read-1"))
            #expect(try JSONValue(parsing: kept)["status"] == 200)
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

    @Test("log pages with the filters of runlog log read; metrics; health")
    func logMetricsHealth() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                _ = try await Self.activeWorkflow(client, server.service)
                let page = try await client.call(.get, "/v1/log?from=1&limit=2", key: server.auditor)
                #expect(page.json["events"]?.arrayValue?.map { $0["position"]?.int } == [1, 2])
                #expect(page.json["next"] == 3)
                let typed = try await client.call(.get, "/v1/log?type=workflow.created.v1,workflow.version_published.v1",
                                                  key: server.auditor)
                #expect(typed.json["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue }
                        == ["workflow.created.v1", "workflow.version_published.v1"])
                let prefixed = try await client.call(.get, "/v1/log?stream_prefix=apikeys", key: server.auditor)
                #expect(prefixed.json["events"]?.arrayValue?.count == 3)
                let backward = try await client.call(.get, "/v1/log?backward=true&limit=1", key: server.auditor)
                #expect(backward.json["events"]?[0]?["position"]?.int == page.json["head_position"]?.int)
                let health = try await client.call(.get, "/healthz", key: nil)
                #expect(health.json["status"] == "ok")
                let metrics = try await client.execute(uri: "/metrics", method: .get,
                                                       headers: [.authorization: "Bearer \(server.auditor)"]) { response in
                    String(buffer: response.body)
                }
                #expect(metrics.contains("runlog_http_requests_total{"))
                #expect(metrics.contains("route=\"/v1/workflows/{id}/versions\""))
                #expect(metrics.contains("runlog_http_request_duration_seconds_bucket"))
                #expect(metrics.contains("runlog_log_head_position "))
                #expect(metrics.contains("runlog_append_batch_requests_bucket{le=\"+Inf\"}"))
            }
        }
    }
}
