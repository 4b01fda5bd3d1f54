import RunlogJSON
import Foundation
import Profiles
import WorkflowModel
import Workflows

/// Figure 10: one `import_and_start_batch_task` of `profiles` new profiles (matching by email),
/// then the same request again (every profile found and updated), through `BatchTasks` in
/// process: request checking, matching, one atomic append of profile events, runs and the task,
/// then the runs on the batch queue.
struct BatchTaskBenchmark {
    var profiles: Int

    struct Pass {
        /// Request parsed and checked → task recorded (what the HTTP caller waits for).
        var accept: Duration
        /// Task recorded → every run ended (`tasks/status` says completed).
        var drain: Duration
    }

    static let definition = #"""
        {"trigger": {"kind": "action", "object_type": "profile"},
         "routes": [{"name": "all", "steps": [
            {"step_uid": "greet", "type": "set_field", "parameters": {"field": "greeting", "path": "apicontent.one"}},
            {"step_uid": "mark", "type": "tag", "parameters": {"tags": ["started"]}}]}]}
        """#

    func run(_ temp: TempDirs) async throws -> (insert: Pass, update: Pass) {
        let h = try await EngineHarness(temp, "tasks")
        let workflowId = try await Flows.activate(h.engine, name: "welcome", Self.definition)
        let number = await h.engine.read { $0.workflows[workflowId]?.number } ?? 0
        let tasks = BatchTasks(engine: h.engine, maxProfiles: profiles)
        var items: [JSONValue] = []
        items.reserveCapacity(profiles)
        for i in 0..<profiles {
            items.append(["data": ["email": .string("profile\(i)@example.com"), "_fname": .string("Name \(i)"),
                                   "_lname": "Lambert", "phones": .string("+7900\(1_000_000 + i)")]])
        }
        let body: JSONValue = ["token": "bench", "workflow_id": .integer(Int64(number)), "matching": "email",
                               "content": ["one": "Hello"], "data": .array(items)]
        func pass() async throws -> Pass {
            let clock = ContinuousClock()
            let start = clock.now
            let request = try BatchTaskRequest(body, maxProfiles: profiles)
            let taskId = try await tasks.submit(request, actor: "bench")
            let accepted = clock.now
            while true {
                let status = try await tasks.status(taskId)
                if status["data"]?["status"] == "completed" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            return Pass(accept: accepted - start, drain: clock.now - accepted)
        }
        let insert = try await pass()
        let update = try await pass()
        try await h.stopEngine()
        return (insert, update)
    }
}
