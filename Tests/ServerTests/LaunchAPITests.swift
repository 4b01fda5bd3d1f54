import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RunlogTestSupport
import Synchronization
import Testing
@testable import RunlogHTTP
@testable import WorkflowModel
@testable import Workflows

/// The launch API of seed 001 (`/v3/`): schedule, playground, jobs, results, accounts.
@Suite("Launch API (seed 001)")
struct LaunchAPITests {
    static let project = "proj-1"

    /// Inputs first_name, last_name, company_name (strings) and age (integer); `collect` adds the
    /// first name to a list (and fails without one), `ok` approves.
    static let definition = try! JSONValue(parsing: #"""
        {"trigger": {"kind": "api", "schema": {"fields": [
            {"name": "first_name", "type": "string"}, {"name": "last_name", "type": "string"},
            {"name": "company_name", "type": "string"}, {"name": "age", "type": "integer"}]}},
         "routes": [{"name": "all", "steps": [
            {"step_uid": "collect", "type": "add_to_list", "parameters": {"list": "names", "path": "parameters.first_name"}},
            {"step_uid": "ok", "type": "approve", "parameters": {"reason": "fine"}}]}]}
        """#)

    /// The same inputs; `call` is an http_request step to `url`, then `ok` approves.
    static func httpDefinition(_ url: String, account: String? = nil) -> JSONValue {
        var parameters: JSONValue = ["url": .string(url), "method": "POST", "retries": 0, "timeout_ms": 5000,
                                     "body_path": "parameters"]
        if let account { parameters = .object(parameters.objectValue!.merging(["account": .string(account)]) { $1 }) }
        return [
            "trigger": ["kind": "api", "schema": ["fields": [
                ["name": "first_name", "type": "string"], ["name": "last_name", "type": "string"],
                ["name": "company_name", "type": "string"], ["name": "age", "type": "integer"]]]],
            "routes": [["name": "all", "steps": [
                ["step_uid": "call", "type": "http_request", "parameters": parameters],
                ["step_uid": "ok", "type": "approve"]]]],
        ]
    }

    static func job(_ client: any TestClientProtocol, _ server: TestServer, _ id: String,
                    project: String = project) async throws -> JSONValue {
        _ = await server.engine.waitUntilIdle()
        let answer = try await client.launch(.get, "/v3/jobs/\(id)", key: server.auditor, project: project)
        #expect(answer.status == .ok, "\(answer.json)")
        return answer.json
    }

    // MARK: Seed examples

    @Test("one run's fields sent as separate one-key inputs: the 422 says each input is a run and shows the merged one")
    func singleKeyInputs() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service)
                let answer = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service,
                                                     json: ["job_name": "split", "inputs": [["email": "ada@example.com"],
                                                                                            ["amount": 5]]])
                #expect(answer.status == .unprocessableContent)
                let message = answer.json["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("each element of inputs is one run"), "\(message)")
                #expect(message.contains(#""inputs": [{"amount":5,"email":"ada@example.com"}]"#), "\(message)")
            }
        }
    }

    @Test("every request example of seed 001, sent as written (placeholders replaced), gets the documented answer")
    func seedExamples() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
                let schedule = "/v3/workflows/\(workflow)/schedule"

                // "This is the standard payload": a missing comma, a trailing comma, no closing brace.
                let standard = SeedExamples.standardPayload
                    .replacingOccurrences(of: #""step_uid": "","#, with: #""step_uid": "collect","#)
                let first = try await client.launch(.post, schedule, key: server.service, body: standard)
                #expect(first.status == .created, "\(first.json)")
                let firstJob = try #require(first.json["job_uid"]?.stringValue)
                #expect(firstJob.hasPrefix("job_"))
                #expect(first.json.objectValue?.keys.sorted() == ["job_uid"])
                let empty = try await Self.job(client, server, firstJob)
                #expect(empty["status"] == "Finished")
                #expect(empty["job_name"] == "New job to launch")
                #expect(empty["counts"]?["total"] == 0)

                // Inputs: one input with a mapping key.
                let mapping = SeedExamples.mappingInputs.replacingOccurrences(of: "mapping_key", with: "first_name")
                let second = try await client.launch(.post, schedule, key: server.service, body: mapping)
                #expect(second.status == .created, "\(second.json)")
                let secondJob = try #require(second.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, secondJob)["status"] == "Finished")

                // Three inputs, one key each: three runs; the two without first_name fail their first step.
                let third = try await client.launch(.post, schedule, key: server.service, body: SeedExamples.emailInputs)
                #expect(third.status == .created, "\(third.json)")
                let thirdJob = try #require(third.json["job_uid"]?.stringValue)
                let thirdView = try await Self.job(client, server, thirdJob)
                #expect(thirdView["counts"]?["total"] == 3)
                #expect(thirdView["status"] == "Warning")

                // Integration accounts: an account to update, then the two account examples.
                let made = try await client.launch(.post, "/v3/integrations/google/accounts", key: server.service,
                                                   json: ["account": ["name": "Google", "api_key": "sk-original-123"]])
                #expect(made.status == .created, "\(made.json)")
                let uid = try #require(made.json["account"]?["uid"]?.stringValue)
                let apiKey = SeedExamples.accountApiKey
                    .replacingOccurrences(of: "UID_YOU_JUST_GOT", with: uid)
                    .replacingOccurrences(of: #""api_key": """#, with: #""api_key": "sk-rotated-456""#)
                let updated = try await client.launch(.post, "/v3/integrations/google/accounts", key: server.service,
                                                      body: "{\n" + apiKey + "\n}")
                #expect(updated.status == .ok, "\(updated.json)")
                #expect(updated.json["account"]?["uid"]?.stringValue == uid)
                #expect(updated.json["account"]?["api_key"] == "********")
                #expect(!updated.json.jsonText.contains("sk-rotated-456"))

                let linkedIn = try await client.launch(.post, "/v3/integrations/linkedin/accounts", key: server.service,
                                                       json: ["account": ["name": "LinkedIn", "cookies": ["li_at": "old-at", "JSESSIONID": "j1"]]])
                let linkedInUid = try #require(linkedIn.json["account"]?["uid"]?.stringValue)
                let cookies = SeedExamples.cookieUpdate
                    .replacingOccurrences(of: "YOUR_UID", with: linkedInUid)
                    .replacingOccurrences(of: "YOUR_NEW_VALUE", with: "new-cookie-value")
                let cookieAnswer = try await client.launch(.post, "/v3/integrations/linkedin/accounts", key: server.service,
                                                           body: "{\n" + cookies + "\n}")
                #expect(cookieAnswer.status == .ok, "\(cookieAnswer.json)")
                #expect(cookieAnswer.json["account"]?["cookies"] == ["li_at": "********", "li_a": "********", "JSESSIONID": "********"])

                // "accounts": ["UID_YOU_JUST_GOT"] in a step of the payload.
                let httpWorkflow = try await APITests.activeWorkflow(client, server.service,
                                                                     definition: Self.httpDefinition("http://127.0.0.1:9/never"))
                let fragment = SeedExamples.accountsFragment.replacingOccurrences(of: "UID_YOU_JUST_GOT", with: uid)
                let withAccount = try await client.launch(
                    .post, "/v3/workflows/\(httpWorkflow)/schedule", key: server.service,
                    body: #"{"job_name": "with an account", "inputs": [], "steps": [{"step_uid": "call", "# + fragment + "}]}")
                #expect(withAccount.status == .created, "\(withAccount.json)")
                // Accounts on a step that uses none: the rule names the step's type with its article.
                let onApprove = try await client.launch(
                    .post, "/v3/workflows/\(try await APITests.activeWorkflow(client, server.service, definition: Self.definition))/schedule",
                    key: server.service,
                    body: #"{"job_name": "accounts on approve", "inputs": [], "steps": [{"step_uid": "ok", "# + fragment + "}]}")
                #expect(onApprove.status == .unprocessableContent)
                #expect(onApprove.json["error"]?["issues"]?[0]?["rule"]?.stringValue?.contains("is an approve step") == true,
                        "\(onApprove.json)")
                let accountJob = try #require(withAccount.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, accountJob)["steps"]?[0]?["accounts"] == [.string(uid)])
            }
        }
    }

    @Test("lenient JSON: comments, trailing commas, a missing comma, placeholders; strings untouched")
    func lenientJSON() throws {
        func parse(_ text: String) throws -> JSONValue { try LenientJSON.parse(Array(text.utf8)) }
        #expect(try parse(SeedExamples.standardPayload)
                == ["inputs": [], "job_name": "New job to launch", "steps": [["accounts": [], "parameters": [:], "step_uid": ""]]])
        #expect(try parse("{\n" + SeedExamples.accountApiKey + "\n}") == ["account": ["uid": "UID_YOU_JUST_GOT", "api_key": ""]])
        #expect(try parse("{\n" + SeedExamples.cookieUpdate + "\n}")
                == ["account": ["uid": "YOUR_UID", "cookies": ["li_at": "YOUR_NEW_VALUE", "li_a": "YOUR_NEW_VALUE"]]])
        #expect(try parse(#"{"a": "x // not a comment, /* nor this */ ...", /* c */ "b": [1, 2,],}"#)
                == ["a": "x // not a comment, /* nor this */ ...", "b": [1, 2]])
        #expect(try parse("[1\n2\n\"x\\\"y\"\ntrue\nnull]") == [1, 2, "x\"y", true, nil])
        #expect(throws: JSONParseError.self) { try parse(#"{"a": }"#) }
        #expect(throws: JSONParseError.self) { try parse(#"{"a": "unterminated"#) }
    }

    // MARK: Validation

    @Test("schedule refuses bad input with named errors and records nothing")
    func scheduleValidation() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
                let http = try await APITests.activeWorkflow(client, server.service, definition: Self.httpDefinition("http://127.0.0.1:9/x"))
                let account = try await client.launch(.post, "/v3/integrations/crm/accounts", key: server.service,
                                                      json: ["account": ["name": "CRM", "api_key": "k-1"]])
                let accountUid = try #require(account.json["account"]?["uid"]?.stringValue)
                let head = try server.store.head().position

                func refused(_ id: String, _ body: JSONValue, _ field: String, status: HTTPResponse.Status = .unprocessableContent,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
                    let answer = try await client.launch(.post, "/v3/workflows/\(id)/schedule", key: server.service, json: body)
                    #expect(answer.status == status, "\(answer.json)", sourceLocation: sourceLocation)
                    #expect(answer.json["error"]?["field"]?.stringValue == (field.isEmpty ? nil : field), "\(answer.json)",
                            sourceLocation: sourceLocation)
                }
                try await refused(workflow, ["inputs": [], "steps": [["step_uid": "nope"]]], "steps[0].step_uid")
                try await refused(workflow, ["inputs": [], "steps": [["step_uid": "ok", "parameters": ["colour": "red"]]]],
                                  "steps[0].parameters.colour")
                try await refused(http, ["inputs": [], "steps": [["step_uid": "call", "parameters": ["url": 5]]]],
                                  "steps[0].parameters.url")
                try await refused(http, ["inputs": [], "steps": [["step_uid": "call", "accounts": [.string(accountUid), "acc_missing"]]]],
                                  "steps[0].accounts[1]")
                try await refused(workflow, ["inputs": [], "steps": [["step_uid": "ok", "accounts": [.string(accountUid)]]]],
                                  "steps[0].accounts")
                try await refused(workflow, ["inputs": [["first_name": "a"], ["age": 3], ["middle_name": "x"]]], "inputs[2].middle_name")
                try await refused(workflow, ["inputs": [["age": "old"]]], "inputs[0].age")
                try await refused(workflow, ["inputs": ["just text"]], "inputs[0]")
                try await refused(workflow, ["steps": []], "inputs")
                try await refused(workflow, ["inputs": [], "priority": 1], "priority")
                try await refused(workflow, ["inputs": [], "steps": [["step_uid": "ok", "output_column": "status"]]],
                                  "steps[0].output_column")
                try await refused(workflow, ["inputs": [], "steps": [["step_uid": "ok"], ["step_uid": "ok"]]], "steps[1].step_uid")
                // An account of another project is unknown here.
                let other = try await client.launch(.post, "/v3/workflows/\(http)/schedule", key: server.service, project: "proj-2",
                                                    json: ["inputs": [], "steps": [["step_uid": "call", "accounts": [.string(accountUid)]]]])
                #expect(other.json["error"]?["field"] == "steps[0].accounts[0]")

                let missing = try await client.launch(.post, "/v3/workflows/wf_missing/schedule", key: server.service, json: ["inputs": []])
                #expect(missing.status == .notFound)
                let broken = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service,
                                                     body: #"{"inputs": [}"#)
                #expect(broken.status == .badRequest)
                #expect(broken.json["error"]?["field"] == "body")

                // Not active, or not API-triggered: 409.
                _ = try await client.call(.post, "/v1/workflows/\(workflow)/deactivate", key: server.service)
                try await refused(workflow, ["inputs": []], "", status: .conflict)
                let event = try await APITests.activeWorkflow(client, server.service, definition: eventDefinition)
                let head2 = try server.store.head().position
                try await refused(event, ["inputs": []], "", status: .conflict)
                #expect(try server.store.head().position == head2)
                #expect(head2 > head)
                // Nothing but the workflow commands was recorded.
                let jobEvents = try server.store.readAll(from: head + 1, filter: EventFilter(types: JobEvent.types), limit: 100)
                #expect(jobEvents.isEmpty)
            }
        }
    }

    @Test("x-api-key and x-project-id: 401, 400 naming the header, roles, and another project sees 404")
    func authenticationAndProjects() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
                let path = "/v3/workflows/\(workflow)/schedule"
                let body: JSONValue = ["job_name": "j", "inputs": [["first_name": "Ada"]]]
                let none = try await client.launch(.post, path, key: nil, json: body)
                #expect(none.status == .unauthorized)
                #expect(none.json["error"]?["code"] == "unauthorized")
                #expect(try await client.launch(.post, path, key: "rlk_wrong", json: body).status == .unauthorized)
                let noProject = try await client.launch(.post, path, key: server.service, project: nil, json: body)
                #expect(noProject.status == .badRequest)
                #expect(noProject.json["error"]?["field"] == "x-project-id")
                let badProject = try await client.launch(.post, path, key: server.service, project: "a b", json: body)
                #expect(badProject.json["error"]?["field"] == "x-project-id")
                #expect(try await client.launch(.post, path, key: server.auditor, json: body).status == .forbidden)

                // A plain x-api-key header works too.
                let plain = try await client.call(.post, path, key: nil, json: body,
                                                  headers: [HTTPField.Name("x-api-key")!: server.service,
                                                            HTTPField.Name("x-project-id")!: Self.project])
                #expect(plain.status == .created, "\(plain.json)")
                let job = try #require(plain.json["job_uid"]?.stringValue)
                #expect(plain.headers[.location] == "/v3/jobs/\(job)")
                #expect(try await client.launch(.get, "/v3/jobs/\(job)", key: server.auditor).status == .ok)
                for other in ["/v3/jobs/\(job)", "/v3/jobs/\(job)/results"] {
                    let answer = try await client.launch(.get, other, key: server.auditor, project: "proj-2")
                    #expect(answer.status == .notFound)
                }
                #expect(try await client.launch(.post, "/v3/jobs/\(job)/stop", key: server.service, project: "proj-2").status == .notFound)

                let account = try await client.launch(.post, "/v3/integrations/crm/accounts", key: server.service,
                                                      json: ["account": ["name": "CRM", "api_key": "k"]])
                let uid = try #require(account.json["account"]?["uid"]?.stringValue)
                let elsewhere = try await client.launch(.get, "/v3/integrations/crm/accounts", key: server.auditor, project: "proj-2")
                #expect(elsewhere.json["accounts"] == [])
                let steal = try await client.launch(.post, "/v3/integrations/crm/accounts", key: server.service, project: "proj-2",
                                                    json: ["account": ["uid": .string(uid), "name": "mine"]])
                #expect(steal.status == .notFound)
                #expect(try await client.launch(.post, "/v3/integrations/crm/accounts", key: server.auditor,
                                                json: ["account": ["name": "x"]]).status == .forbidden)
                // Errors keep Runlog's shape.
                let unknownRoute = try await client.launch(.get, "/v3/nothing", key: server.auditor)
                #expect(unknownRoute.status == .notFound)
                #expect(unknownRoute.json["error"]?["code"] == "not_found")
            }
        }
    }
}
