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
