import RunlogJSON
import Foundation
import HTTPTypes
import HummingbirdTesting
import RunlogTestSupport
import Testing
@testable import RunlogHTTP
import Workflows

/// Previews of a draft against the runs a workflow had (`POST /v1/workflows/{id}/draft/preview`).
@Suite("previews against history")
struct PreviewTests {
    /// Approves amounts over `threshold` unless the email is on the `blocked` list; with `call`,
    /// the approving route first calls that URL.
    static func definition(threshold: Int, call: String? = nil) -> JSONValue {
        var large: [JSONValue] = [["step_uid": "approve", "type": "approve"]]
        if let call {
            large.insert(["step_uid": "notify", "type": "http_request",
                          "parameters": ["method": "POST", "url": .string(call), "body_path": "parameters"]], at: 0)
        }
        return [
            "trigger": ["kind": "api", "schema": ["fields": [
                ["name": "email", "type": "string", "required": true],
                ["name": "amount", "type": "integer", "required": true],
            ]]],
            "routes": [
                ["name": "blocked", "condition": ["parameters.email": ["$inList": "blocked"]],
                 "steps": [["step_uid": "decline-blocked", "type": "decline"]]],
                ["name": "large", "condition": ["parameters.amount": ["$gt": .integer(Int64(threshold))]], "steps": .array(large)],
                ["name": "else", "steps": [["step_uid": "decline", "type": "decline"]]],
            ],
        ]
    }

    /// Adds the email it is given to the `blocked` list.
    static let blocker: JSONValue = [
        "trigger": ["kind": "api", "schema": ["fields": [["name": "email", "type": "string", "required": true]]]],
        "routes": [["name": "all", "steps": [
            ["step_uid": "block", "type": "add_to_list", "parameters": ["list": "blocked", "path": "parameters.email"]],
        ]]],
    ]

    static func start(_ client: any TestClientProtocol, _ key: String, _ workflow: String, _ parameters: JSONValue) async throws
        -> String {
        let started = try await client.call(.post, "/v1/workflows/\(workflow)/runs", key: key, json: ["parameters": parameters])
        #expect(started.status == .created, "\(started.json)")
        return try #require(started.json["id"]?.stringValue)
    }

    @Test("a draft approving over 200 instead of 100: exactly the runs from 101 to 200 go approved → declined; the list as it was at each run; the http_request step is never called; nothing is appended; the same answer after a restart")
    func draftAgainstHistory() async throws {
        let counter = try HTTPCounter()
        defer { counter.stop() }
        try await TestServer.with { server in
            let admin = server.admin
            let (workflow, blocker) = try await server.test { client in
                (try await APITests.activeWorkflow(client, admin, definition: Self.definition(threshold: 100)),
                 try await APITests.activeWorkflow(client, admin, definition: Self.blocker))
            }
            // Blocked before its run: declined by both versions.
            _ = try await server.test { client in try await Self.start(client, admin, blocker, ["email": "early@example.com"]) }
            #expect(await server.engine.waitUntilIdle())
            let amounts = [0, 50, 100, 101, 150, 199, 200, 201, 250, 1_000]
            var ids: [Int: String] = [:]
            for amount in amounts {
                ids[amount] = try await server.test { client in
                    try await Self.start(client, admin, workflow, ["email": .string("user\(amount)@example.com"),
                                                                   "amount": .integer(Int64(amount))])
                }
            }
            let early = try await server.test { client in
                try await Self.start(client, admin, workflow, ["email": "early@example.com", "amount": 500])
            }
            #expect(await server.engine.waitUntilIdle())
            // Blocked after its run: today's list would decline user150 under both versions.
            _ = try await server.test { client in try await Self.start(client, admin, blocker, ["email": "user150@example.com"]) }
            #expect(await server.engine.waitUntilIdle())
            let earlyRun = try await server.test { client in try await client.call(.get, "/v1/runs/\(early)", key: admin) }
            #expect(earlyRun.json["route"] == "blocked")

            let saved = try await server.test { client in
                try await client.call(.put, "/v1/workflows/\(workflow)/draft", key: admin,
                                      json: Self.definition(threshold: 200, call: counter.url + "/notify"))
            }
            #expect(saved.status == .ok, "\(saved.json)")
            let head = try server.store.head()
            let preview = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: server.auditor, json: ["examples": 10])
            }
            #expect(preview.status == .ok, "\(preview.json)")
            let report = preview.json
            #expect(report["candidate"] == "draft")
            #expect(report["runs"] == 11)
            #expect(report["evaluated"] == 11)
            #expect(report["drift"] == 0)
            let matrix = report["matrix"]?.arrayValue ?? []
            let flipped = try #require(matrix.first { $0["before"] == "approved" && $0["after"] == "declined" })
            #expect(flipped["runs"] == 4)
            let flippedIds = Set((flipped["examples"]?.arrayValue ?? []).compactMap { $0["run_id"]?.stringValue })
            #expect(flippedIds == Set([101, 150, 199, 200].compactMap { ids[$0] }))
            let example = try #require(flipped["examples"]?.arrayValue?.first)
            #expect(example["before"]?["route"] == "large")
            #expect(example["before"]?["condition"] == ["parameters.amount": ["$gt": 100]])
            #expect(example["after"]?["route"] == "else")
            #expect(example["changed"] == ["route", "decision"])
            // Over 200: still approved, after a call the draft adds; it is reported, never made.
            let called = try #require(matrix.first { $0["before"] == "approved" && $0["after"] == "approved" })
            #expect(called["runs"] == 3)
            let call = called["examples"]?[0]?["after"]?["calls"]?[0]
            #expect(call?["would_call"] == .string("POST \(counter.url)/notify"))
            #expect(call?["body"]?["amount"] != nil)
            #expect(called["examples"]?[0]?["after"]?["unknown_steps"] == ["notify"])
            #expect(matrix.count == 2)
            #expect(report["changed"] == 7)
            #expect(report["unchanged"] == 4)
            #expect(report["changes"]?["decision"] == 4)
            #expect(report["changes"]?["calls"] == 3)
            #expect(report["with_unknown_steps"] == 3)
            #expect(try counter.count() == 0, "the preview made no call")
            #expect(try server.store.head() == head, "the preview appended nothing")

            // The dashboard: the button beside Publish, the matrix and the examples; a version at rollout staging.
            let flippedRuns = [101, 150, 199, 200].compactMap { ids[$0] }
            try await server.test { client in
                let admin = try await DashboardTests.signIn(client, server.admin)
                let workflowPage = try await DashboardTests.request(client, .get, "/ui/workflows/\(workflow)", cookie: admin.cookie)
                #expect(workflowPage.body.contains("id=\"preview-draft\"") && workflowPage.body.contains("id=\"preview-version\""))
                let auditor = try await DashboardTests.signIn(client, server.auditor)
                let page = try await DashboardTests.request(client, .get, "/ui/workflows/\(workflow)/preview", cookie: auditor.cookie)
                #expect(page.status == .ok)
                #expect(page.body.contains("approved → declined: 4 runs"), "\(page.body)")
                for run in flippedRuns { #expect(page.body.contains(run)) }
                #expect(page.body.contains("would call POST \(counter.url)/notify"))
                let own = try await DashboardTests.request(client, .get, "/ui/workflows/\(workflow)/preview?version=1",
                                                           cookie: auditor.cookie)
                #expect(own.body.contains("id=\"preview-none\""), "\(own.body)")
                let bad = try await DashboardTests.request(client, .get, "/ui/workflows/\(workflow)/preview?runs=0",
                                                           cookie: auditor.cookie)
                #expect(bad.status == .badRequest)
            }
            #expect(try counter.count() == 0)
            #expect(try server.store.head() == head)

            // Its own version changes nothing; the same draft gives the same answer after a restart.
            let own = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/versions/1/preview", key: admin, json: [:])
            }
            #expect(own.json["changed"] == 0 && own.json["unchanged"] == 11 && own.json["drift"] == 0, "\(own.json)")
            try await server.reopen()
            let again = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: admin, json: ["examples": 10])
            }
            #expect(again.json == report)
            // The last 3 runs only; runs since a time after them all: none.
            let last = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: admin, json: ["runs": 3])
            }
            #expect(last.json["runs"] == 3)
            // A sample spread over all the runs: the same runs each time.
            let sampled = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: admin, json: ["runs": 5, "sample": true])
            }
            #expect(sampled.json["runs"] == 5, "\(sampled.json)")
            let resampled = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: admin, json: ["runs": 5, "sample": true])
            }
            #expect(resampled.json == sampled.json)
            let future = try await server.test { client in
                try await client.call(.post, "/v1/workflows/\(workflow)/draft/preview", key: admin,
                                      json: ["since": "2999-01-01T00:00:00Z"])
            }
            #expect(future.json["runs"] == 0)
            #expect(try counter.count() == 0)
            // A version a workflow does not have is refused on the dashboard, not replaced by the draft.
            try await server.test { client in
                let session = try await DashboardTests.signIn(client, server.auditor)
                let unpublished = try #require(try await client.call(.post, "/v1/workflows", key: server.admin,
                                                                     json: ["name": "unpublished"]).json["id"]?.stringValue)
                let noVersion = try await DashboardTests.request(client, .get, "/ui/workflows/\(unpublished)/preview?version=1",
                                                                 cookie: session.cookie)
                #expect(noVersion.status == .notFound && noVersion.body.contains("has no version 1"), "\(noVersion.body)")
            }
        }
    }

    @Test("a run's own list change, appended before its route, does not count for it; an earlier run's does")
    func ownEffects() async throws {
        let remember: JSONValue = ["step_uid": "remember", "type": "add_to_list",
                                   "parameters": ["list": "seen", "path": "parameters.email"]]
        let repeated: JSONValue = ["name": "repeat", "condition": ["parameters.email": ["$inList": "seen"]],
                                   "steps": [["step_uid": "no", "type": "decline"]]]
        @Sendable func definition(_ routes: [JSONValue]) -> JSONValue {
            ["trigger": ["kind": "api", "schema": ["fields": [["name": "email", "type": "string", "required": true]]]],
             "routes": .array(routes)]
        }
        let first = ["name": "first", "steps": [remember, ["step_uid": "yes", "type": "approve"]]] as JSONValue
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.admin
                let id = try await APITests.activeWorkflow(client, key, definition: definition([repeated, first]))
                var runs: [String] = []
                for email in ["a@example.com", "b@example.com", "a@example.com"] {
                    runs.append(try await Self.start(client, key, id, ["email": .string(email)]))
                    #expect(await server.engine.waitUntilIdle())
                }
                var decisions: [JSONValue?] = []
                for run in runs { decisions.append(try await client.call(.get, "/v1/runs/\(run)", key: key).json["decision"]) }
                #expect(decisions == ["approved", "approved", "declined"])
                let own = try await client.call(.post, "/v1/workflows/\(id)/versions/1/preview", key: key, json: [:])
                #expect(own.json["unchanged"] == 3 && own.json["drift"] == 0, "\(own.json)")
                // Without the repeat route the third run would be approved, and would add to the list again.
                let given = try await client.call(.post, "/v1/workflows/\(id)/draft/preview", key: key,
                                                  json: ["definition": definition([first])])
                let cell = given.json["matrix"]?.arrayValue?.first
                #expect(given.json["changed"] == 1 && cell?["before"] == "declined" && cell?["after"] == "approved", "\(given.json)")
                #expect(cell?["examples"]?.arrayValue?.first?["run_id"] == .string(runs[2]))
                #expect(cell?["examples"]?.arrayValue?.first?["changed"] == ["route", "decision", "lists"])
            }
        }
    }

    @Test("bad input is refused with the field and the rule, and changes nothing")
    func refusals() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.admin
                let id = try await APITests.activeWorkflow(client, key)
                let path = "/v1/workflows/\(id)/draft/preview"
                let head = try server.store.head()
                let noDraft = try await client.call(.post, "/v1/workflows/wf_none/draft/preview", key: key, json: [:])
                #expect(noDraft.status == .notFound)
                for (body, field) in [(["runs": 0], "runs"), (["runs": 100_001], "runs"), (["since": "yesterday"], "since"),
                                      (["since": .integer(Int64.min)], "since"), (["since": -1], "since"),
                                      (["examples": -1], "examples"), (["sample": 3], "sample"),
                                      (["definition": ["routes": []]], "definition.trigger.kind")] as [(JSONValue, String)] {
                    let refused = try await client.call(.post, path, key: key, json: body)
                    #expect(refused.status == .unprocessableContent || refused.status == .badRequest, "\(body): \(refused.json)")
                    let named = refused.json["error"]?["field"]?.stringValue
                        ?? refused.json["error"]?["issues"]?[0]?["field"]?.stringValue
                    #expect(named == field, "\(body): \(refused.json)")
                }
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions/9/preview", key: key, json: [:]).status
                        == .notFound)
                #expect(try await client.call(.post, path, key: nil, json: [:]).status == .unauthorized)
                // One preview at a time on a server: another meanwhile gets 429.
                #expect(server.api.previewGate.take())
                let busy = try await client.call(.post, path, key: key, json: [:])
                #expect(busy.status == .tooManyRequests && busy.json["error"]?["code"] == "busy" && busy.headers[.retryAfter] == "2")
                server.api.previewGate.release()
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions/1/preview", key: key, json: [:]).status == .ok)
                // A definition given with the request is previewed without saving it.
                let given = try await client.call(.post, path, key: key, json: ["definition": apiDefinition])
                #expect(given.status == .ok && given.json["candidate"] == "definition" && given.json["runs"] == 0, "\(given.json)")
                #expect(try server.store.head() == head)
            }
        }
    }
}
