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

    // MARK: Jobs

    @Test("job statuses Finished and Warning, counts, results with output columns, pages")
    func jobsAndResults() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
                let path = "/v3/workflows/\(workflow)/schedule"
                let good = try await client.launch(.post, path, key: server.service, json: [
                    "job_name": "all good", "inputs": [["first_name": "Ada"], ["first_name": "Grace", "age": 36]],
                    "steps": [["step_uid": "collect", "output_column": "collected"]],
                ])
                let goodJob = try #require(good.json["job_uid"]?.stringValue)
                let finished = try await Self.job(client, server, goodJob)
                #expect(finished["status"] == "Finished")
                #expect(finished["counts"] == ["total": 2, "queued": 0, "running": 0, "completed": 2, "failed": 0, "cancelled": 0])
                #expect(finished["workflow_uid"]?.stringValue == workflow)
                #expect(finished["workflow_version"] == 1)

                let mixed = try await client.launch(.post, path, key: server.service, json: [
                    "job_name": "mixed",
                    "inputs": [["first_name": "Ada"], ["last_name": "Hopper"], ["first_name": "Linus"], ["company_name": "ACME"]],
                    "steps": [["step_uid": "collect", "output_column": "collected"],
                              ["step_uid": "ok", "parameters": ["reason": "from the job"], "output_column": "verdict"]],
                ])
                let mixedJob = try #require(mixed.json["job_uid"]?.stringValue)
                let warning = try await Self.job(client, server, mixedJob)
                #expect(warning["status"] == "Warning")
                #expect(warning["counts"]?["completed"] == 2)
                #expect(warning["counts"]?["failed"] == 2)

                let page1 = try await client.launch(.get, "/v3/jobs/\(mixedJob)/results?limit=3", key: server.auditor)
                let results = try #require(page1.json["results"]?.arrayValue)
                #expect(results.count == 3)
                #expect(results[0]["index"] == 0)
                #expect(results[0]["input"] == ["first_name": "Ada"])
                #expect(results[0]["status"] == "completed")
                #expect(results[0]["decision"] == "approved")
                #expect(results[0]["collected"] == ["list": "names", "value": "Ada"])
                #expect(results[0]["verdict"] == ["decision": "approved"])
                #expect(results[0]["run_id"]?.stringValue?.hasPrefix("run_") == true)
                #expect(results[1]["status"] == "failed")
                #expect(results[1]["error"]?.stringValue?.contains("parameters.first_name") == true)
                #expect(results[1]["collected"] == .null)
                let cursor = try #require(page1.json["next_cursor"]?.stringValue)
                let page2 = try await client.launch(.get, "/v3/jobs/\(mixedJob)/results?limit=3&cursor=\(cursor)", key: server.auditor)
                #expect(page2.json["results"]?.arrayValue?.map { $0["index"] } == [3])
                #expect(page2.json["next_cursor"] == .null)
                #expect(try await client.launch(.get, "/v3/jobs/\(mixedJob)/results?cursor=x", key: server.auditor).status == .badRequest)

                // The runs are ordinary batch runs with the job as their source and the overrides applied.
                let run = try await client.call(.get, "/v1/runs/\(results[0]["run_id"]!.stringValue!)", key: server.auditor)
                #expect(run.json["source"] == ["kind": "job", "reference": .string(mixedJob), "row": 0])
                #expect(run.json["queue"] == "batch")
                let log = try server.store.readAll(filter: EventFilter(types: [JobEvent.scheduledType]), limit: 10)
                let scheduled = try JSONValue(parsing: log.last!.payload)
                #expect(scheduled["inputCount"] == 4)
                #expect(scheduled["projectId"] == .string(Self.project))
                #expect(log.last!.stream == "job-\(mixedJob)")
                #expect(try await client.launch(.get, "/v3/jobs/job_missing", key: server.auditor).status == .notFound)
            }
        }
    }

    @Test("a job counts against the daily run quota: without room for every input, 429 and nothing created")
    func quota() async throws {
        try await TestServer.with(quota: 2) { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
                let path = "/v3/workflows/\(workflow)/schedule"
                let head = try server.store.head().position
                let three = try await client.launch(.post, path, key: server.service,
                                                    json: ["inputs": [["first_name": "a"], ["first_name": "b"], ["first_name": "c"]]])
                #expect(three.status == .tooManyRequests)
                #expect(three.json["error"]?["code"] == "quota_exceeded")
                #expect(three.headers[.retryAfter] != nil)
                #expect(three.json["error"]?["message"]?.stringValue?.contains("resets at") == true)
                #expect(try server.store.head().position == head)
                let two = try await client.launch(.post, path, key: server.service,
                                                  json: ["inputs": [["first_name": "a"], ["first_name": "b"]]],
                                                  idempotencyKey: "once")
                #expect(two.status == .created)
                // A retry with the same Idempotency-Key answers the same job and creates nothing.
                let again = try await client.launch(.post, path, key: server.service,
                                                    json: ["inputs": [["first_name": "a"], ["first_name": "b"]]],
                                                    idempotencyKey: "once")
                #expect(again.status == .created)
                #expect(again.json == two.json)
                #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            }
        }
    }

    @Test("pause holds a job's queued runs, resume runs them, stop cancels them")
    func pauseResumeStop() async throws {
        let gate = Gate()
        try await TestServer.with(options: .init(sharedWorkers: 3, http: gate)) { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service,
                                                                 definition: Self.httpDefinition("http://gate.test/call"))
                let path = "/v3/workflows/\(workflow)/schedule"
                let inputs = JSONValue.array((0..<8).map { ["first_name": .string("n\($0)")] })
                let first = try await client.launch(.post, path, key: server.service, json: ["job_name": "paused", "inputs": inputs])
                let job = try #require(first.json["job_uid"]?.stringValue)
                try await gate.waitForCalls(3)
                let running = try await client.launch(.get, "/v3/jobs/\(job)", key: server.auditor)
                #expect(running.json["status"] == "Running")
                let paused = try await client.launch(.post, "/v3/jobs/\(job)/pause", key: server.service)
                #expect(paused.status == .ok, "\(paused.json)")
                #expect(paused.json["status"] == "Paused")
                gate.open()
                let held = try await Self.job(client, server, job)
                #expect(held["status"] == "Paused")
                #expect(held["counts"]?["completed"] == 3)
                #expect(held["counts"]?["queued"] == 5)
                #expect(gate.calls == 3)
                let resumed = try await client.launch(.post, "/v3/jobs/\(job)/resume", key: server.service)
                #expect(resumed.json["status"] == "Running")
                let done = try await Self.job(client, server, job)
                #expect(done["status"] == "Finished")
                #expect(done["counts"]?["completed"] == 8)
                #expect(try await client.launch(.post, "/v3/jobs/\(job)/pause", key: server.service).status == .conflict)

                gate.close()
                let second = try await client.launch(.post, path, key: server.service, json: ["job_name": "stopped", "inputs": inputs])
                let stopJob = try #require(second.json["job_uid"]?.stringValue)
                try await gate.waitForCalls(11)
                let stopped = try await client.launch(.post, "/v3/jobs/\(stopJob)/stop", key: server.service)
                #expect(stopped.json["status"] == "Stopped")
                #expect(stopped.json["counts"]?["cancelled"] == 5)
                gate.open()
                let after = try await Self.job(client, server, stopJob)
                #expect(after["status"] == "Stopped")
                #expect(after["counts"]?["completed"] == 3)
                #expect(after["counts"]?["cancelled"] == 5)
                #expect(try await client.launch(.post, "/v3/jobs/\(stopJob)/resume", key: server.service).status == .conflict)
                let results = try await client.launch(.get, "/v3/jobs/\(stopJob)/results", key: server.auditor)
                #expect(results.json["results"]?.arrayValue?.filter { $0["status"] == "cancelled" }.count == 5)
                let cancelled = try server.store.readAll(filter: EventFilter(types: ["run.cancelled.v1"]), limit: 100)
                #expect(cancelled.count == 5)
                // A rebuild from the log gives the same runs and jobs.
                let rebuilt = try WorkflowsState.rebuild(from: server.store, keepsRuns: false)
                #expect(rebuilt == (await server.engine.snapshot))
                #expect(try JobsState.rebuild(from: server.store).jobs == (await server.engine.jobs.jobs))
                // The counts the run table keeps as runs change equal a replay's, and a count of each
                // job's runs.
                let replayed = try WorkflowsState.rebuild(from: server.store)
                #expect(replayed.jobCounts.count == 2)
                for (job, counts) in replayed.jobCounts {
                    #expect(try server.engine.runs.jobCounts(job) == counts, "job \(job)")
                    let statuses = try server.engine.runs.runs(source: "job", reference: job).map(\.status)
                    #expect(statuses == (replayed.runsByJob[job] ?? []).compactMap { replayed.runs[$0]?.status })
                    var recount = JobCounts()
                    recount.total = statuses.count
                    for status in statuses { recount.add(status, 1) }
                    #expect(counts == recount, "job \(job)")
                }
            }
        }
    }

    @Test("a paused job stays paused across a restart; resumed, it finishes")
    func pausedAcrossRestart() async throws {
        let gate = Gate()
        try await TestServer.with(options: .init(sharedWorkers: 3, http: gate)) { server in
            let job = try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service,
                                                                 definition: Self.httpDefinition("http://gate.test/call"))
                let inputs = JSONValue.array((0..<5).map { ["first_name": .string("n\($0)")] })
                let answer = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service,
                                                     json: ["inputs": inputs])
                let job = try #require(answer.json["job_uid"]?.stringValue)
                try await gate.waitForCalls(3)
                #expect(try await client.launch(.post, "/v3/jobs/\(job)/pause", key: server.service).status == .ok)
                gate.open()
                #expect(try await Self.job(client, server, job)["counts"]?["queued"] == 2)
                return job
            }
            try await server.reopen()
            try await server.test { client in
                let held = try await Self.job(client, server, job)
                #expect(held["status"] == "Paused")
                #expect(held["counts"]?["queued"] == 2)
                #expect(gate.calls == 3)
                _ = try await client.launch(.post, "/v3/jobs/\(job)/resume", key: server.service)
                let done = try await Self.job(client, server, job)
                #expect(done["status"] == "Finished")
                #expect(done["counts"]?["completed"] == 5)
            }
        }
    }

    @Test("a job whose runs a stopped server left unfinished is Shutdown until they are taken again")
    func shutdownStatus() async throws {
        // No shared workers: batch runs stay queued.
        try await TestServer.with(options: .init(sharedWorkers: 0)) { server in
            let workflow = try await server.test { client in
                try await APITests.activeWorkflow(client, server.service, definition: Self.definition)
            }
            let job = try await server.test { client in
                let answer = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service,
                                                     json: ["inputs": [["first_name": "a"], ["first_name": "b"]]])
                let job = try #require(answer.json["job_uid"]?.stringValue)
                #expect(try await client.launch(.get, "/v3/jobs/\(job)", key: server.auditor).json["status"] == "Running")
                return job
            }
            try await server.reopen()
            try await server.test { client in
                let view = try await client.launch(.get, "/v3/jobs/\(job)", key: server.auditor)
                #expect(view.json["status"] == "Shutdown")
                #expect(view.json["counts"]?["queued"] == 2)
            }
        }
    }

    @Test("the playground payload of the active version is accepted back as is")
    func playground() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service,
                                                                 definition: Self.httpDefinition("http://127.0.0.1:9/never"))
                let answer = try await client.launch(.get, "/v3/workflows/\(workflow)/playground", key: server.auditor)
                #expect(answer.status == .ok, "\(answer.json)")
                #expect(answer.headers[HTTPField.Name("x-workflow-version")!] == "1")
                let steps = try #require(answer.json["steps"]?.arrayValue)
                #expect(steps.map { $0["step_uid"] } == ["call", "ok"])
                #expect(steps[0]["parameters"]?["url"] == "http://127.0.0.1:9/never")
                #expect(steps[0]["type"] == "http_request")
                #expect(answer.json["input_keys"]?["age"] == ["type": "integer", "required": false])
                #expect(answer.json["inputs"] == [["first_name": "", "last_name": "", "company_name": "", "age": 0]])
                let back = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service,
                                                   body: answer.json.jsonText)
                #expect(back.status == .created, "\(back.json)")
                #expect(try await client.launch(.get, "/v3/workflows/wf_missing/playground", key: server.auditor).status == .notFound)
            }
        }
    }

    // MARK: Accounts

    @Test("accounts: add, update one field keeping the others, cookies by name, masked, never in clear in log or logs")
    func accounts() async throws {
        let lines = LogCapture()
        try await TestServer.with(options: .init(logger: Logger(label: "capture", factory: { _ in lines.handler() }))) { server in
            let secrets = ["sk-live-SECRET-1", "hunter2-SECRET-2", "li-at-SECRET-3", "li-a-SECRET-4", "sk-live-SECRET-5"]
            try await server.test { client in
                let path = "/v3/integrations/linkedin/accounts"
                let made = try await client.launch(.post, path, key: server.service, json: ["account": [
                    "name": "Sales LinkedIn", "username": "sales@example.com", "password": .string(secrets[1]),
                    "api_key": .string(secrets[0]), "cookies": ["li_at": .string(secrets[2])],
                ]])
                #expect(made.status == .created, "\(made.json)")
                let account = try #require(made.json["account"])
                let uid = try #require(account["uid"]?.stringValue)
                #expect(uid.hasPrefix("acc_"))
                #expect(account["api_key"] == "********")
                #expect(account["password"] == "********")
                #expect(account["has_password"] == true)
                #expect(account["username"] == "sales@example.com")
                #expect(account["cookies"] == ["li_at": "********"])

                // One field: the password; the rest stays.
                let password = try await client.launch(.post, path, key: server.service,
                                                       json: ["account": ["uid": .string(uid), "password": "changed-SECRET-6"]])
                #expect(password.status == .ok)
                #expect(password.json["account"]?["name"] == "Sales LinkedIn")
                #expect(password.json["account"]?["api_key"] == "********")
                #expect(password.json["account"]?["cookies"] == ["li_at": "********"])
                // Cookies by name: li_a added, li_at kept, then li_at removed with null.
                _ = try await client.launch(.post, path, key: server.service,
                                            json: ["account": ["uid": .string(uid), "cookies": ["li_a": .string(secrets[3])]]])
                let credentials = try await server.accounts.headers(forAccount: uid, project: Self.project)
                #expect(credentials["Authorization"] == "Bearer \(secrets[0])")
                #expect(credentials["Cookie"] == "li_a=\(secrets[3]); li_at=\(secrets[2])")
                let removed = try await client.launch(.post, path, key: server.service,
                                                      json: ["account": ["uid": .string(uid), "cookies": ["li_at": nil], "api_key": nil]])
                #expect(removed.json["account"]?["cookies"] == ["li_a": "********"])
                #expect(removed.json["account"]?["api_key"] == .null)
                let basic = try await server.accounts.headers(forAccount: uid, project: Self.project)
                #expect(basic["Authorization"] == "Basic " + Data("sales@example.com:changed-SECRET-6".utf8).base64EncodedString())
                _ = try await client.launch(.post, path, key: server.service,
                                            json: ["account": ["uid": .string(uid), "api_key": .string(secrets[4])]])

                let listed = try await client.launch(.get, path, key: server.auditor)
                #expect(listed.json["accounts"]?.arrayValue?.count == 1)
                #expect(listed.json["accounts"]?[0]?["uid"]?.stringValue == uid)

                // Refusals name the field and never repeat a secret.
                let unknown = try await client.launch(.post, path, key: server.service,
                                                      json: ["account": ["uid": "acc_nope", "api_key": "x"]])
                #expect(unknown.status == .notFound)
                let wrongIntegration = try await client.launch(.post, "/v3/integrations/google/accounts", key: server.service,
                                                               json: ["account": ["uid": .string(uid), "name": "x"]])
                #expect(wrongIntegration.status == .notFound)
                let noName = try await client.launch(.post, path, key: server.service, json: ["account": ["api_key": "x"]])
                #expect(noName.status == .unprocessableContent)
                #expect(noName.json["error"]?["field"] == "account.name")
                // Said once, not twice ("…: account.name: is required for a new account").
                #expect(noName.json["error"]?["message"] == "account.name is required for a new account")
                let badSecret = try await client.launch(.post, path, key: server.service,
                                                        json: ["account": ["name": "n", "api_key": "line\nbreak-SECRET-7"]])
                #expect(badSecret.json["error"]?["field"] == "account.api_key")
                #expect(!badSecret.json.jsonText.contains("SECRET-7"))
                let extra = try await client.launch(.post, path, key: server.service, json: ["account": ["name": "n", "token": "t"]])
                #expect(extra.json["error"]?["field"] == "account.token")

                // Never in clear: not in any answer so far, any event, the LMDB file or the server's logs.
                for answer in [made.json, password.json, removed.json, listed.json, unknown.json] {
                    for secret in secrets { #expect(!answer.jsonText.contains(secret)) }
                }
                let events = try server.store.readAll(limit: .max)
                let saved = events.filter { $0.type == AccountBook.savedType }
                #expect(saved.count == 5)
                #expect(saved.allSatisfy { $0.stream == "account-\(uid)" })
                let payload = try JSONValue(parsing: saved.last!.payload)
                #expect(payload["apiKey"]?["sealed"]?.stringValue != nil)
                #expect(payload["username"] == "sales@example.com")
                for event in events {
                    let text = String(decoding: event.payload, as: UTF8.self)
                    for secret in secrets + ["changed-SECRET-6"] { #expect(!text.contains(secret), "\(event.type)") }
                }
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: server.directory).appendingPathComponent("data.mdb"))
            for secret in secrets + ["changed-SECRET-6"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(secret) is in data.mdb")
            }
            let logged = lines.text
            #expect(logged.contains("/v3/integrations/linkedin/accounts"))
            for secret in secrets + ["changed-SECRET-6"] { #expect(!logged.contains(secret)) }
            // The key file the server made is private.
            let mode = try FileManager.default.attributesOfItem(atPath: server.directory + "/secret.key")[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test("an http_request step uses the account's api key, rotates accounts, and fails clearly on an unknown account")
    func httpStepWithAccount() async throws {
        let counter = try HTTPCounter()
        defer { counter.stop() }
        let lines = LogCapture()
        try await TestServer.with(options: .init(http: URLSessionHTTPPerformer(),
                                                 logger: Logger(label: "capture", factory: { _ in lines.handler() }))) { server in
            try await server.test { client in
                let path = "/v3/integrations/crm/accounts"
                var uids: [String] = []
                for (i, secret) in ["key-A-SECRET", "key-B-SECRET"].enumerated() {
                    let made = try await client.launch(.post, path, key: server.service,
                                                       json: ["account": ["name": .string("crm \(i)"), "api_key": .string(secret),
                                                                          "cookies": ["sid": .string("cookie-\(i)-SECRET")]]])
                    uids.append(try #require(made.json["account"]?["uid"]?.stringValue))
                }
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.httpDefinition(counter.url + "/call"))
                let scheduled = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "a"], ["first_name": "b"], ["first_name": "c"], ["first_name": "d"]],
                    "steps": [["step_uid": "call", "accounts": .array(uids.map(JSONValue.string)),
                               "accounts_rotation_enabled": true, "output_column": "response"]],
                ])
                let job = try #require(scheduled.json["job_uid"]?.stringValue)
                let view = try await Self.job(client, server, job)
                #expect(view["status"] == "Finished", "\(view)")
                let stats = try counter.stats()
                let auth = (stats["auth"] as? [String] ?? []).sorted()
                #expect(auth == ["Bearer key-A-SECRET", "Bearer key-A-SECRET", "Bearer key-B-SECRET", "Bearer key-B-SECRET"])
                let cookies = (stats["cookies"] as? [String] ?? []).sorted()
                #expect(cookies == ["sid=cookie-0-SECRET", "sid=cookie-0-SECRET", "sid=cookie-1-SECRET", "sid=cookie-1-SECRET"])
                let results = try await client.launch(.get, "/v3/jobs/\(job)/results", key: server.auditor)
                #expect(results.json["results"]?[0]?["response"]?["status"] == 200)

                // Without rotation every run uses accounts[0].
                let single = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "e"], ["first_name": "f"]],
                    "steps": [["step_uid": "call", "accounts": .array(uids.map(JSONValue.string))]],
                ])
                let singleJob = try #require(single.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, singleJob)["status"] == "Finished")
                let after = (try counter.stats()["auth"] as? [String] ?? [])
                #expect(Array(after.suffix(2)) == ["Bearer key-A-SECRET", "Bearer key-A-SECRET"])

                // A step's own Authorization header wins over the account's api key.
                let own = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "g"]],
                    "steps": [["step_uid": "call", "accounts": [.string(uids[1])],
                               "parameters": ["headers": ["Authorization": "Token mine"]]]],
                ])
                let ownJob = try #require(own.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, ownJob)["status"] == "Finished")
                #expect((try counter.stats()["auth"] as? [String])?.last == "Token mine")

                // An account named by the definition that does not exist: the step fails, naming it.
                let missing = try await APITests.activeWorkflow(
                    client, server.service, definition: Self.httpDefinition(counter.url + "/call", account: "acc_gone"))
                let run = try await client.call(.post, "/v1/workflows/\(missing)/runs", key: server.service,
                                                json: ["parameters": ["first_name": "z"]])
                let runId = try #require(run.json["id"]?.stringValue)
                _ = await server.engine.waitUntilIdle()
                let failed = try await client.call(.get, "/v1/runs/\(runId)", key: server.auditor)
                #expect(failed.json["status"] == "failed")
                #expect(failed.json["failure"]?.stringValue?.contains("account acc_gone does not exist") == true)

                // The credentials reached the server and nothing else.
                for event in try server.store.readAll(limit: .max) {
                    let text = String(decoding: event.payload, as: UTF8.self)
                    #expect(!text.contains("SECRET"), "\(event.type): \(text)")
                }
            }
            #expect(!lines.text.contains("SECRET"))
        }
    }
}

@Suite("Secret key")
struct SecretKeyTests {
    func directory() -> String {
        TemporaryDirectory.uniquePath("runlog-key")
    }

    @Test("RUNLOG_SECRET_KEY: 32 bytes as base64 or hex; anything else is refused, naming the variable")
    func environment() throws {
        let bytes = (0..<32).map { UInt8($0) }
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let base64 = Data(bytes).base64EncodedString()
        let sealed = SecretBox(key: bytes).seal("hello", context: "c")
        for text in [hex, base64, hex.uppercased()] {
            let box = try SecretBox.load(environmentValue: text, dataDirectory: directory())
            #expect(try box.open(sealed, context: "c") == "hello")
            #expect(throws: (any Error).self) { try box.open(sealed, context: "other") }
        }
        for bad in ["", "short", String(hex.dropLast(2)), "not a key at all, just text of some length!!"] {
            do {
                _ = try SecretBox.load(environmentValue: bad, dataDirectory: directory())
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.description.contains("RUNLOG_SECRET_KEY"))
                if !bad.isEmpty { #expect(!error.description.contains(bad)) }
            }
        }
    }

    @Test("the key file is created 0600 once and reused; a group-readable one is refused")
    func keyFile() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
        let path = dir + "/secret.key"
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        let again = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
        #expect(try again.open(first.seal("x", context: "c"), context: "c") == "x")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["secret.key"])
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        do {
            _ = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
            Issue.record("a group-readable key file was accepted")
        } catch {
            #expect(error.description.contains("chmod 600"))
        }
    }
}

// MARK: Support

/// The request examples of seed 001, exactly as written there.
enum SeedExamples {
    static let standardPayload = """
        {
            "inputs": []
            "job_name": "New job to launch",
            "steps": [{
                "accounts": [],
                "parameters": {},
                "step_uid": "",
            }]
        """
    static let mappingInputs = """
        {
            "inputs": [{ "mapping_key": "value" }]
        }
        """
    static let emailInputs = """
        {
            "inputs": [
                { "first_name": "value" },
                { "last_name": "value" },
                { "company_name": "value" }
            ]
        }
        """
    static let accountsFragment = """
        "accounts": ["UID_YOU_JUST_GOT"]
        """
    static let accountApiKey = """
        "account": {
            "uid": "UID_YOU_JUST_GOT",
            "api_key": "" // or cookies, password etc. depending on the integration you're updating
            ...
        }
        """
    static let cookieUpdate = """
        "account": {
            "uid": "YOUR_UID",
            "cookies": {
                "li_at": "YOUR_NEW_VALUE",
                "li_a": "YOUR_NEW_VALUE",
            }
        }
        """
}

extension TestClientProtocol {
    /// A launch-API request: `Authorization: x-api-key KEY` and `x-project-id`.
    @discardableResult
    func launch(
        _ method: HTTPRequest.Method,
        _ uri: String,
        key: String?,
        project: String? = LaunchAPITests.project,
        json: JSONValue? = nil,
        body: String? = nil,
        idempotencyKey: String? = nil
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue) {
        var headers: HTTPFields = [:]
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        if let key { headers[.authorization] = "x-api-key \(key)" }
        if let project { headers[HTTPField.Name("x-project-id")!] = project }
        return try await call(method, uri, key: nil, json: json, body: body, headers: headers)
    }
}

/// An HTTP performer that holds every call until opened.
final class Gate: HTTPPerformer, @unchecked Sendable {
    private let state = Mutex((open: false, calls: 0))

    var calls: Int { state.withLock { $0.calls } }
    func open() { state.withLock { $0.open = true } }
    func close() { state.withLock { $0.open = false } }

    func waitForCalls(_ n: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while calls < n {
            guard ContinuousClock.now < deadline else { throw GateTimeout() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func perform(_ request: OutboundRequest) async throws -> OutboundResponse {
        state.withLock { $0.calls += 1 }
        while !state.withLock({ $0.open }) { try await Task.sleep(for: .milliseconds(2)) }
        return OutboundResponse(status: 200, body: Array(#"{"ok": true}"#.utf8))
    }
}

struct GateTimeout: Error {}

/// Every line a logger writes, with its metadata.
final class LogCapture: Sendable {
    private let stored = Mutex([String]())
    var lines: [String] { stored.withLock { $0 } }
    var text: String { lines.joined(separator: "\n") }

    func handler() -> some LogHandler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.stored.withLock { $0.append("\(event.level) \(event.message) \(all)") }
        }
    }
}
