// Launch API tests of jobs: statuses, counts and results, the run quota, pause, resume and stop
// (also across a restart), the Shutdown status, and the playground payload.
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


extension LaunchAPITests {
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
}
