// Figure 13: a draft previewed against a workflow's past runs.
import RunlogJSON
import EventLog
import Foundation
import WorkflowModel
import Workflows

/// A workflow with list conditions gets `runs` batch runs; its draft (another threshold) is then
/// previewed against all of them, each evaluated with the lists as of its route choice.
struct PreviewBench {
    var runs: Int
    var passes: Int
    var tasks = 64

    /// Declines an address seen before (the `seen` list, which the approving route fills),
    /// approves amounts over `threshold`.
    static func definition(threshold: Int) -> String {
        """
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true},
                                                          {"name": "amount", "type": "integer", "required": true}]}},
         "routes": [
            {"name": "seen", "condition": {"parameters.ip": {"$inList": "seen"}}, "steps": [{"step_uid": "again", "type": "decline"}]},
            {"name": "large", "condition": {"parameters.amount": {"$gt": \(threshold)}}, "steps": [
                {"step_uid": "remember", "type": "add_to_list", "parameters": {"list": "seen", "path": "parameters.ip"}},
                {"step_uid": "ok", "type": "approve"}]},
            {"name": "else", "steps": [{"step_uid": "no", "type": "decline"}]}]}
        """
    }

    struct Result {
        var created: Duration
        var events: UInt64
        var passes: [Duration]
        var report: PreviewReport
    }

    func run(_ temp: TempDirs) async throws -> Result {
        let h = try await EngineHarness(temp, "preview")
        let engine = h.engine
        let workflow = try await Flows.activate(engine, name: "preview", Self.definition(threshold: 500))
        let clock = ContinuousClock()
        let start = clock.now
        let (total, tasks) = (runs, self.tasks)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in stride(from: t, to: total, by: tasks) {
                        // Addresses come back every 20,000 runs: later runs meet the list earlier ones filled.
                        let parameters: JSONValue = ["ip": Flows.parameters(i % 20_000)["ip"] ?? .null,
                                                     "amount": .integer(Int64((i &* 7_919) % 1_000))]
                        _ = try await engine.startRun(workflowId: workflow, parameters: parameters, queue: .batch)
                    }
                }
            }
            try await group.waitForAll()
        }
        guard await engine.waitUntilIdle(timeout: .seconds(600)) else { throw BenchError("the runs did not finish in 600 s") }
        let created = clock.now - start
        _ = try await engine.saveDraft(workflowId: workflow, definition: try JSONValue(parsing: Self.definition(threshold: 700)),
                                       expectedDraftVersion: 1, actor: "bench")
        let candidate = try WorkflowDefinition(json: try JSONValue(parsing: Self.definition(threshold: 700)))
        var times: [Duration] = []
        var report: PreviewReport?
        for _ in 0..<passes {
            let began = clock.now
            report = try await engine.preview(workflowId: workflow, candidate: candidate, label: "draft",
                                              scope: PreviewScope(runs: min(runs, PreviewScope.maxRuns)))
            times.append(clock.now - began)
        }
        let events = try h.store.head().position
        try await h.close()
        return Result(created: created, events: events, passes: times, report: report!)
    }
}

extension Bench {
    /// 13. A draft previewed against 100,000 past runs.
    static func preview(_ s: Settings, _ temp: TempDirs, total: Int, summary: inout [[String]]) async throws {
        say()
        let bench = PreviewBench(runs: s.previewRuns, passes: s.repetitions)
        say("[13/\(total)] preview: a workflow whose routes read a list its runs fill gets \(grouped(Double(bench.runs))) batch runs;")
        say("      its draft (another threshold) is previewed against them all, each run evaluated with the list as of its route choice")
        let r = try await bench.run(temp)
        say("  runs created and executed in \(fixed(r.created.seconds, 1)) s; log of \(grouped(Double(r.events))) events")
        let report = r.report
        say("  report: \(grouped(Double(report.evaluated))) evaluated, \(grouped(Double(report.changed))) changed, "
            + "\(grouped(Double(report.unchanged))) unchanged, drift \(report.drift); cells: "
            + report.cells.map { "\($0.before) → \($0.after) \(grouped(Double($0.runs)))" }.joined(separator: ", "))
        var rates: [Double] = []
        for (i, time) in r.passes.enumerated() {
            let perSecond = Double(report.runs) / time.seconds
            rates.append(perSecond)
            say("  pass \(i + 1): \(fixed(time.seconds, 3)) s, \(grouped(perSecond)) runs previewed/s")
        }
        let medianRate = median(rates)
        let medianTime = median(r.passes.map(\.seconds))
        say("  median: \(fixed(medianTime, 3)) s, \(grouped(medianRate)) runs previewed/s")
        summary.append(["[13] preview of a draft, \(grouped(Double(report.runs))) runs", "\(grouped(medianRate)) runs/s",
                        "\(grouped(Double(report.runs))) runs in <= 5 s", status(medianTime <= 5)])
    }
}
