// Batch task API tests of the profiles a task inserts or updates: matching modes, tags,
// custom_request and skip_triggers, and the content and custom_data its runs see.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Profiles
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

extension BatchTaskAPITests {
    @Test("each matching mode inserts a profile the first time and updates the same profile the next")
    func matchingModes() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, number) = try await Self.workflow(client, key, profileTagDefinition)
                func run(_ body: JSONValue) async throws -> [String] {
                    var request = body.objectValue ?? [:]
                    request["token"] = .string(key)
                    request["workflow_id"] = .integer(Int64(number))
                    let answer = try await Self.post(client, Self.importPath, .object(request))
                    #expect(answer.status == .ok, "\(answer.json)")
                    let taskId = try #require(answer.json["task_id"]?.stringValue)
                    return Self.profileIds(try await Self.completed(client, key, taskId))
                }

                // email: the profile's own email, or an email subscription.
                let a = try await run(["matching": "email", "data": [["data": ["email": "Ann@Example.com", "_fname": "Ann"]]]])
                let a2 = try await run(["matching": "email", "data": [["data": ["email": "ann@example.com", "_lname": "Lee"]]]])
                #expect(a.count == 1 && a == a2)
                let ann = try await Self.profile(client, key, a[0])
                #expect(ann["data"]?["_fname"] == "Ann")
                #expect(ann["data"]?["_lname"] == "Lee")
                let sub = try await run(["matching": "phone", "data": [["data": [
                    "phone": "+1 555 0100 200", "subscriptions": [["channel": "email", "email": "news@example.com"]]]]]])
                let bySubscription = try await run(["matching": "email", "data": [["email": "news@example.com", "data": ["x": 1]]]])
                #expect(bySubscription == sub)
                let onlyProfile = try await run(["matching": "email_profile",
                                                 "data": [["data": ["email": "other@example.com", "subscriptions": [
                                                     ["channel": "email", "email": "shared@example.com"]]]]]])
                let viaProfileField = try await run(["matching": "email_profile", "data": [["email": "shared@example.com", "data": [:]]]])
                #expect(viaProfileField != onlyProfile, "email_profile does not look at subscriptions")
                let viaSubscription = try await run(["matching": "email", "data": [["email": "shared@example.com", "data": [:]]]])
                #expect(Set(viaSubscription).isSuperset(of: onlyProfile))

                // phone: digits compared, formatting ignored.
                let p = try await run(["matching": "phone", "data": [["data": ["phones": "+7 900 111-22-33", "_fname": "Pat"]]]])
                let p2 = try await run(["matching": "phone", "data": [["data": ["phone": "79001112233", "_lname": "Doe"]]]])
                #expect(p.count == 1 && p == p2)

                // profile_id: an unknown id is inserted with that id, then updated.
                let given = "5f19953a03e4227216278ba4"
                #expect(try await run(["matching": "profile_id", "data": [["data": ["profile_id": .string(given), "_fname": "Id"]]]]) == [given])
                #expect(try await run(["matching": "profile_id", "data": [["profile_id": .string(given.uppercased()), "data": ["_lname": "Known"]]]]) == [given])
                let known = try await Self.profile(client, key, given)
                #expect(known["data"]?["_fname"] == "Id")
                #expect(known["data"]?["_lname"] == "Known")
                #expect(known["data"]?["profile_id"] == nil)

                // custom: by a custom field's value.
                let c = try await run(["matching": "custom", "field_name": "CRM_ID", "data": [["data": ["CRM_ID": "12345", "n": 1]]]])
                let c2 = try await run(["matching": "custom", "field_name": "CRM_ID", "field_value": "12345", "data": [["data": ["n": 2]]]])
                #expect(c.count == 1 && c == c2)
                #expect(try await Self.profile(client, key, c[0])["data"]?["n"] == 2)
            }
        }
    }

    @Test("tags: a custom value \"tag-1, tag-2\" finds the profiles holding both tags")
    func tags() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, number) = try await Self.workflow(client, key, profileTagDefinition)
                let made = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)), "matching": "email",
                    "data": [["data": ["email": "both@example.com", "_tags": "tag-1, tag-2"]],
                             ["data": ["email": "one@example.com", "_tags": ["tag-1"]]],
                             ["data": ["email": "all@example.com", "_tags": ["tag-2", "tag-3", "tag-1"]]]],
                ])
                let all = Self.profileIds(try await Self.completed(client, key, try #require(made.json["task_id"]?.stringValue)))
                #expect(all.count == 3)
                #expect(try await Self.profile(client, key, all[0])["data"]?["_tags"] == ["tag-1", "tag-2"])
                let updated = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)), "matching": "custom", "field_name": "_tags",
                    "data": [["field_value": "tag-1, tag-2", "data": ["segment": "both"]]],
                ])
                let matched = Self.profileIds(try await Self.completed(client, key, try #require(updated.json["task_id"]?.stringValue)))
                #expect(Set(matched) == [all[0], all[2]])
                #expect(try await Self.profile(client, key, all[2])["data"]?["segment"] == "both")
                #expect(try await Self.profile(client, key, all[1])["data"]?["segment"] == nil)
            }
        }
    }

    @Test("custom_request picks existing profiles by a query; skip_triggers keeps profile events from starting workflows")
    func customRequestAndTriggers() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, number) = try await Self.workflow(client, key, profileTagDefinition)
                let watcher = try await APITests.activeWorkflow(client, key, definition: try JSONValue(parsing: #"""
                    {"trigger": {"kind": "event", "event_type": "profile.created"},
                     "routes": [{"name": "all", "steps": [{"step_uid": "w", "type": "tag", "parameters": {"tags": ["welcomed"]}}]}]}
                    """#))
                func watcherRuns() async throws -> Int {
                    try await client.call(.get, "/v1/workflows/\(watcher)/runs", key: key).json["runs"]?.arrayValue?.count ?? -1
                }
                let base: [String: JSONValue] = ["token": .string(key), "workflow_id": .integer(Int64(number)), "matching": "email"]
                var skipped = base
                skipped["skip_triggers"] = true
                skipped["data"] = [["data": ["email": "a@example.com", "_lname": "Lambert"]],
                                   ["data": ["email": "b@example.com", "_lname": "Other"]]]
                let first = try await Self.post(client, Self.importPath, .object(skipped))
                _ = try await Self.completed(client, key, try #require(first.json["task_id"]?.stringValue))
                #expect(try await watcherRuns() == 0)
                var triggering = base
                triggering["data"] = [["data": ["email": "c@example.com", "_lname": "Lambert"]]]
                let second = try await Self.post(client, Self.importPath, .object(triggering))
                let cId = Self.profileIds(try await Self.completed(client, key, try #require(second.json["task_id"]?.stringValue)))
                #expect(try await watcherRuns() == 1)

                let query = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)),
                    "custom_request": ["_lname": "Lambert"], "custom_data": ["why": "query"],
                ])
                #expect(query.status == .ok, "\(query.json)")
                let picked = Self.profileIds(try await Self.completed(client, key, try #require(query.json["task_id"]?.stringValue)))
                #expect(picked.count == 2)
                #expect(picked.contains(cId[0]))
                // A query with a malformed operator is refused, naming it.
                let bad = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)), "custom_request": ["age": ["$bogus": 1]],
                ])
                #expect(bad.status == .badRequest)
                #expect(bad.json["error_text"]?.stringValue?.contains("$bogus") == true, "\(bad.json)")
            }
        }
    }

    @Test("root and per-object content and custom_data reach the steps as apicontent.NAME and custom_data.NAME")
    func contentReachesSteps() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, number) = try await Self.workflow(client, key, profileContentDefinition)
                let answer = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)), "matching": "email",
                    "content": ["one": "root one", "two": "Timestamp: 1595512477"],
                    "custom_data": ["field": "root value"],
                    "data": [["data": ["email": "root@example.com"]],
                             ["data": ["email": "own@example.com"], "content": ["one": "My email = own@example.com"],
                              "custom_data": ["field": "own value"]]],
                ])
                let ids = Self.profileIds(try await Self.completed(client, key, try #require(answer.json["task_id"]?.stringValue)))
                #expect(ids.count == 2)
                let root = try await Self.profile(client, key, ids[0])
                #expect(root["data"]?["greeting"] == "root one")
                #expect(root["data"]?["crm_note"] == "root value")
                let own = try await Self.profile(client, key, ids[1])
                #expect(own["data"]?["greeting"] == "My email = own@example.com")
                #expect(own["data"]?["crm_note"] == "own value")
            }
        }
    }
}
