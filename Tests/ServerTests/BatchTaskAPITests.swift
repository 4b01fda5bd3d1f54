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

@Suite("Batch import-and-start task API (seed 003)")
struct BatchTaskAPITests {
    static let importPath = "/api/v1.1/workflows/import_and_start_batch_task"
    static let statusPath = "/api/v1.1/tasks/status"

    /// Creates an active workflow and returns its id and number.
    static func workflow(_ client: any TestClientProtocol, _ key: String, _ definition: JSONValue) async throws -> (String, Int) {
        let id = try await APITests.activeWorkflow(client, key, definition: definition)
        let number = try #require(try await client.call(.get, "/v1/workflows/\(id)", key: key).json["number"]?.int)
        return (id, number)
    }

    /// Sends a body as text (no Authorization header: the token is in the body).
    static func post(_ client: any TestClientProtocol, _ path: String, _ text: String) async throws
        -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue) {
        try await client.call(.post, path, key: nil, body: text, headers: [.contentType: "application/json"])
    }

    static func post(_ client: any TestClientProtocol, _ path: String, _ json: JSONValue) async throws
        -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue) {
        try await post(client, path, json.jsonText)
    }

    /// Polls the task's status until it is completed.
    static func completed(_ client: any TestClientProtocol, _ key: String, _ taskId: String) async throws -> JSONValue {
        for _ in 0..<400 {
            let status = try await post(client, statusPath, ["token": .string(key), "task_id": .string(taskId)])
            #expect(status.status == .ok, "\(status.json)")
            if status.json["data"]?["status"] == "completed" { return status.json }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("task \(taskId) did not complete")
        return .null
    }

    static func profile(_ client: any TestClientProtocol, _ key: String, _ id: String) async throws -> JSONValue {
        try await client.call(.get, "/v1/objects/profile/\(id)", key: key).json
    }

    static func profileIds(_ status: JSONValue) -> [String] {
        (status["data"]?["result"]?["result"]?.arrayValue ?? []).compactMap { $0["profile_id"]?.stringValue }
    }

    /// Same keys at every level, same JSON types; arrays compared element by element up to the
    /// shorter length. With `extraKeys`, `a` may hold keys `b` lacks (fields added for clients
    /// that read more than the seed documents), never fewer.
    static func sameShape(_ a: JSONValue, _ b: JSONValue, at path: String = "", extraKeys: Bool = false) {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            if extraKeys {
                #expect(Set(y.keys).isSubset(of: Set(x.keys)), "keys at \(path.isEmpty ? "root" : path)")
            } else {
                #expect(Set(x.keys) == Set(y.keys), "keys at \(path.isEmpty ? "root" : path)")
            }
            for (k, v) in x { if let w = y[k] { sameShape(v, w, at: path + "." + k, extraKeys: extraKeys) } }
        case (.array(let x), .array(let y)):
            for (i, (v, w)) in zip(x, y).enumerated() { sameShape(v, w, at: path + "[\(i)]", extraKeys: extraKeys) }
        default:
            #expect(a.typeName == b.typeName, "type at \(path)")
        }
    }

    @Test("a task whose runs failed says so: counts, each profile's run status and error, error_text")
    func failedRuns() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                // set_field from a path that is not there fails the run.
                let failing = try JSONValue(parsing: #"""
                    {"trigger": {"kind": "action", "object_type": "profile"},
                     "routes": [{"name": "all", "steps": [{"step_uid": "bad", "type": "http_request",
                        "parameters": {"url": "http://127.0.0.1:9/refused", "retries": 0, "timeout_ms": 1000}}]}]}
                    """#)
                let (_, number) = try await Self.workflow(client, key, failing)
                let answer = try await Self.post(client, Self.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)), "matching": "email",
                    "data": [["data": ["email": "a@example.com"]], ["data": ["email": "b@example.com"]]],
                ])
                let taskId = try #require(answer.json["task_id"]?.stringValue, "\(answer.json)")
                let status = try await Self.completed(client, key, taskId)
                #expect(status["error"] == 0)
                #expect(status["data"]?["failed"] == 2)
                #expect(status["data"]?["succeeded"] == 0)
                #expect(status["data"]?["result"]?["error_text"] == "2 of 2 runs failed")
                let first = status["data"]?["result"]?["result"]?[0]
                #expect(first?["run_status"] == "failed")
                #expect(first?["run_error"]?.stringValue?.isEmpty == false, "\(status)")
            }
        }
    }

    @Test("the seed's request examples, sent as written, answer in the documented shapes; task status matches field by field")
    func seedExamples() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, first) = try await Self.workflow(client, key, profileTagDefinition)
                let (_, second) = try await Self.workflow(client, key, profileTagDefinition)
                let documented = try JSONValue(parsing: Seed003.response)
                var taskIds: [String] = []
                for (example, number, seedNumber) in [(Seed003.matchingEmail, first, 2), (Seed003.matchingCustom, second, 233)] {
                    let body = example.replacingOccurrences(of: Seed003.token, with: key)
                        .replacingOccurrences(of: "\"workflow_id\": \(seedNumber),", with: "\"workflow_id\": \(number),")
                    let answer = try await Self.post(client, Self.importPath, body)
                    #expect(answer.status == .ok, "\(answer.json)")
                    Self.sameShape(answer.json, documented)
                    #expect(answer.json["error"] == 0)
                    #expect(answer.json["error_text"] == "Successful operation")
                    let taskId = try #require(answer.json["task_id"]?.stringValue)
                    #expect(UUID(uuidString: taskId) != nil)
                    taskIds.append(taskId)
                }

                let expected = try JSONValue(parsing: Seed003.statusResponse)
                for taskId in taskIds {
                    let body = Seed003.statusRequest.replacingOccurrences(of: Seed003.token, with: key)
                        .replacingOccurrences(of: "task_b2f9fk6a-2479-4a63-b592-f15d4e3b69c5", with: taskId)
                    var status = try await Self.post(client, Self.statusPath, body)
                    for _ in 0..<400 where status.json["data"]?["status"] != "completed" {
                        try await Task.sleep(for: .milliseconds(10))
                        status = try await Self.post(client, Self.statusPath, body)
                    }
                    #expect(status.status == .ok)
                    Self.sameShape(status.json, expected, extraKeys: true)
                    #expect(status.json["data"]?["succeeded"] == 2)
                    #expect(status.json["data"]?["failed"] == 0)
                    #expect(status.json["data"]?["result"]?["result"]?[0]?["run_status"] == "completed")
                    // Field by field: everything but the profile ids is the example's value.
                    #expect(status.json["data"]?["status"] == expected["data"]?["status"])
                    #expect(status.json["data"]?["progress"] == expected["data"]?["progress"])
                    #expect(status.json["data"]?["result"]?["error"] == expected["data"]?["result"]?["error"])
                    #expect(status.json["data"]?["result"]?["error_text"] == expected["data"]?["result"]?["error_text"])
                    #expect(status.json["error"] == expected["error"])
                    #expect(status.json["error_text"] == expected["error_text"])
                    let ids = Self.profileIds(status.json)
                    #expect(ids.count == 2)
                    #expect(ids.allSatisfy { Profiles.Profile.normalizedId($0) == $0 })
                    for id in ids {
                        let profile = try await Self.profile(client, key, id)
                        #expect(profile["data"]?["_lname"] == "Lambert")
                        #expect(profile["tags"] == ["started"])
                    }
                }

                // The limit answer is exactly the seed's.
                let huge = String(repeating: " ", count: RunlogRequestContext.bodyLimit + 1)
                let tooLarge = try await Self.post(client, Self.importPath, "{\"token\": \"\(key)\"," + huge + "}")
                #expect(tooLarge.status == .badRequest)
                #expect(tooLarge.json == (try JSONValue(parsing: Seed003.tooLarge)))
            }
        }
    }

    @Test("bad requests answer in the API's shape with a clear error_text and change nothing")
    func errors() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let (_, number) = try await Self.workflow(client, key, profileTagDefinition)
                let head = try server.store.head().position
                let good: [String: JSONValue] = ["token": .string(key), "workflow_id": .integer(Int64(number)),
                                                 "data": [["data": ["email": "x@example.com"]]]]
                func expectError(_ body: JSONValue, _ status: HTTPResponse.Status, _ text: String) async throws {
                    let answer = try await Self.post(client, Self.importPath, body)
                    #expect(answer.status == status, "\(body.jsonText) → \(answer.json)")
                    #expect(answer.json["error"]?.int == Int(status.code))
                    #expect(answer.json["error_text"]?.stringValue?.contains(text) == true, "\(answer.json)")
                }
                func with(_ changes: [String: JSONValue?]) -> JSONValue {
                    var o = good
                    for (k, v) in changes { o[k] = v }
                    return .object(o)
                }
                try await expectError(with(["token": nil]), .unauthorized, "token")
                try await expectError(with(["token": "rlk_wrong"]), .unauthorized, "unknown or revoked")
                let auditorAnswer = try await Self.post(client, Self.importPath, with(["token": .string(server.auditor)]))
                #expect(auditorAnswer.status == .forbidden)
                try await expectError(with(["workflow_id": 9999]), .badRequest, "workflow_id = 9999: no workflow has this number")
                try await expectError(with(["workflow_id": "2"]), .badRequest, "workflow_id")
                try await expectError(with(["matching": "fax"]), .badRequest, "matching = \"fax\"")
                try await expectError(with(["matching": "custom"]), .badRequest, "field_name")
                try await expectError(with(["matching": "phone"]), .badRequest, "data[0].data.phone")
                try await expectError(with(["data": [["data": ["email": "not-an-email"]]]]), .badRequest, "data[0].data.email")
                try await expectError(with(["format": "xml"]), .badRequest, "format")
                // Nothing to import is a mistake, not an empty task.
                try await expectError(with(["data": nil]), .badRequest, "data")
                try await expectError(with(["data": []]), .badRequest, "at least one data object")
                try await expectError(with(["colour": "red"]), .badRequest, "colour")
                try await expectError(with(["data": [["data": ["email": "s@example.com", "subscriptions": [["channel": "email"]]]]]]),
                                      .badRequest, "data[0].data.subscriptions[0].email")
                try await expectError(with(["detect_geo": true, "data": [["data": ["email": "g@example.com", "_ip": "10.0.0.300"]]]]),
                                      .badRequest, "data[0].data._ip")
                let many = JSONValue.array((0...TestServer.maxBatchProfiles).map { ["data": ["email": .string("p\($0)@example.com")]] })
                try await expectError(with(["data": many]), .badRequest, "at most \(TestServer.maxBatchProfiles)")
                let invalidJSON = try await Self.post(client, Self.importPath, "{\"token\": ")
                #expect(invalidJSON.status == .badRequest)
                #expect(invalidJSON.json["error_text"] == "Invalid request")
                #expect(try server.store.head().position == head, "a refused request recorded nothing")
                // A workflow the API cannot start for profiles.
                let apiWorkflow = try await APITests.activeWorkflow(client, key)
                let apiNumber = try #require(try await client.call(.get, "/v1/workflows/\(apiWorkflow)", key: key).json["number"]?.int)
                let headBefore = try server.store.head().position
                try await expectError(with(["workflow_id": .integer(Int64(apiNumber))]), .conflict, "not an action on profile objects")
                #expect(try server.store.head().position == headBefore)

                // Without detect_geo, _ip is a field like any other.
                let noGeo = try await Self.post(client, Self.importPath, with(["data": [["data": ["email": "g@example.com", "_ip": "n/a"]]]]))
                #expect(noGeo.status == .ok, "\(noGeo.json)")
                _ = try await Self.completed(client, key, try #require(noGeo.json["task_id"]?.stringValue))

                // An invalid subscription is skipped on request.
                let skipped = try await Self.post(client, Self.importPath, with([
                    "skip_invalid_subscriptions": true,
                    "data": [["data": ["email": "s@example.com", "subscriptions": [["channel": "email"], ["channel": "push"]]]]],
                ]))
                let ids = Self.profileIds(try await Self.completed(client, key, try #require(skipped.json["task_id"]?.stringValue)))
                #expect(try await Self.profile(client, key, ids[0])["data"]?["subscriptions"] == [["channel": "push"]])

                let unknownTask = try await Self.post(client, Self.statusPath, ["token": .string(key), "task_id": "nope"])
                #expect(unknownTask.status == .notFound)
                #expect(unknownTask.json["error_text"]?.stringValue?.contains("no task has this id") == true)
                let noToken = try await Self.post(client, Self.statusPath, ["task_id": "nope"])
                #expect(noToken.status == .unauthorized)
                #expect(noToken.json["error"] == 401)
            }
        }
    }
}

@Suite("Batch tasks across a restart")
struct BatchTaskRestartTests {
    @Test("profiles, tasks and their status come back from the log after a restart")
    func restart() async throws {
        try await TestServer.with { server in
            let key = server.service
            let (number, taskId, id) = try await server.test { client in
                let (_, number) = try await BatchTaskAPITests.workflow(client, key, profileTagDefinition)
                let answer = try await BatchTaskAPITests.post(client, BatchTaskAPITests.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)),
                    "data": [["data": ["email": "again@example.com", "_fname": "Before"]]],
                ])
                let taskId = try #require(answer.json["task_id"]?.stringValue)
                let ids = BatchTaskAPITests.profileIds(try await BatchTaskAPITests.completed(client, key, taskId))
                return (number, taskId, try #require(ids.first))
            }
            try await server.reopen()
            try await server.test { client in
                let status = try await BatchTaskAPITests.completed(client, key, taskId)
                #expect(BatchTaskAPITests.profileIds(status) == [id])
                let answer = try await BatchTaskAPITests.post(client, BatchTaskAPITests.importPath, [
                    "token": .string(key), "workflow_id": .integer(Int64(number)),
                    "data": [["data": ["email": "AGAIN@example.com", "_lname": "After"]]],
                ])
                let again = try await BatchTaskAPITests.completed(client, key, try #require(answer.json["task_id"]?.stringValue))
                #expect(BatchTaskAPITests.profileIds(again) == [id])
                let profile = try await BatchTaskAPITests.profile(client, key, id)
                #expect(profile["data"]?["_fname"] == "Before")
                #expect(profile["data"]?["_lname"] == "After")
            }
        }
    }
}
