@testable import RunlogJSON
import Foundation
import Testing
import EventLog
import LMDBStore
@testable import WorkflowModel
@testable import Workflows

@Suite("JSON text")
struct JSONTextTests {
    @Test("jsonText writes what JSONEncoder (sorted keys, unescaped slashes) writes")
    func matchesJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let values: [JSONValue] = [
            .null, true, false, 0, -42, .integer(.max), .integer(.min),
            100.0, 1.5, 0.1, -0.0, 1e21, 1e-7, 123456789.123, 0.30000000000000004,
            .number(.leastNonzeroMagnitude), .number(.greatestFiniteMagnitude),
            "", "plain",
            "quote \" backslash \\ slash / newline \n tab \t cr \r nul \u{0} unit \u{1f} é 漢 🎉 \u{2028}",
            [], [1, "a", nil, [true]],
            ["b": 1, "a": ["z": [], "y": ["nested": "x"]], "A": 2, "_": 3, "é": 4, "aa": 5],
        ]
        for value in values {
            let expected = String(decoding: try encoder.encode(value), as: UTF8.self)
            #expect(value.jsonText == expected)
            #expect(try JSONValue(parsing: value.jsonText) == value)
        }
        #expect(JSONValue.number(.nan).jsonText == "null")
        #expect(JSONValue.number(.infinity).jsonText == "null")
    }

    @Test("nonNull is nil for null and the value otherwise")
    func nonNull() {
        #expect(JSONValue.null.nonNull == Optional<JSONValue>.none)
        #expect(JSONValue.object([:]).nonNull == .some(.object([:])))
        #expect(JSONValue.integer(0).nonNull == .some(.integer(0)))
    }

    @Test("timestamps are RFC 3339 in UTC with milliseconds, before 1970 too")
    func timestamps() {
        for (ms, text) in [(Int64(0), "1970-01-01T00:00:00.000Z"), (-1, "1969-12-31T23:59:59.999Z"),
                           (1_795_388_701_042, "2026-11-22T23:05:01.042Z"), (951_782_400_000, "2000-02-29T00:00:00.000Z"),
                           (253_402_300_799_999, "9999-12-31T23:59:59.999Z"), (-62_135_596_800_000, "0001-01-01T00:00:00.000Z")] {
            #expect(JSONText.timestamp(milliseconds: ms) == text, "\(ms)")
        }
        #expect(JSONText.timestamp(milliseconds: 253_402_300_800_000) == "10000-01-01T00:00:00.000Z")
    }
}

@Suite("Event payloads")
struct EventPayloadTests {
    @Test("the hand-written payloads are byte for byte what JSONEncoder writes")
    func fastPayloadsMatchEncoder() throws {
        let parameters: JSONValue = ["ip": "10.0.0.1", "nested": ["b": 1.5, "a": [true, nil, "x\"y"]], "n": 3]
        let events: [DomainEvent] = [
            .workflowCreated(WorkflowCreated(workflowId: "wf_1", name: "Screening \"A\"", number: 7)),
            .runCreated(RunCreated(runId: "run_1", workflowId: "wf_1", version: 2, arm: .treatment, rolloutId: "ro_1",
                                   source: RunSource(kind: "importer", reference: "irun_1", row: 42), parameters: parameters,
                                   objectType: "case", objectToken: "case_1", eventType: "case.opened", queue: .batch,
                                   quotaDay: "2026-11-23")),
            .runCreated(RunCreated(runId: "run_2", workflowId: "wf_1", version: 1, arm: .none, rolloutId: nil,
                                   source: RunSource(kind: "api"), parameters: [:], objectType: nil, objectToken: nil,
                                   eventType: nil, queue: .realtime, quotaDay: "2026-11-23")),
            .runsImported(RunsImported(workflowId: "wf_1", version: 3, importerRunId: "imr_1", runIdPrefix: "run_00aa",
                                       quotaDay: "2026-11-24", rows: [
                                           ImportedRow(row: 2, parameters: parameters),
                                           ImportedRow(row: 9, parameters: ["x": nil], objectType: "case", objectToken: "case_1",
                                                       eventType: "case.opened"),
                                       ])),
            .runsImported(RunsImported(workflowId: "wf_1", version: 1, importerRunId: "imr_1", runIdPrefix: "run_00ab",
                                       quotaDay: "2026-11-24", rows: [])),
            .routeMatched(RouteMatched(runId: "run_1", route: "all")),
            .routeMatched(RouteMatched(runId: "run_1", route: nil)),
            .stepStarted(StepStarted(runId: "run_1", stepUid: "s", stepType: "http_request", attempt: 2,
                                     idempotencyKey: "run_1/s")),
            .stepStarted(StepStarted(runId: "run_1", stepUid: "s", stepType: "tag", attempt: 1, idempotencyKey: nil)),
            .stepCompleted(StepCompleted(runId: "run_1", stepUid: "s", output: ["status": 200, "body": parameters])),
            .stepFailed(StepFailed(runId: "run_1", stepUid: "s", attempt: 3, error: "HTTP 500", willRetry: false)),
            .runCompleted(RunCompleted(runId: "run_1", decision: "approved")),
            .runCompleted(RunCompleted(runId: "run_1", decision: nil)),
            .runFailed(RunFailed(runId: "run_1", stepUid: nil, reason: "no")),
            .objectTagged(ObjectTagged(objectType: "case", objectToken: "c", tags: ["a", "b"], runId: "run_1")),
            .objectDecided(ObjectDecided(objectType: "case", objectToken: "c", decision: "declined", reason: nil, runId: "r")),
            .listItemAdded(ListItemChanged(listId: "ips", value: "10.0.0.1", runId: "run_1")),
            .listItemRemoved(ListItemChanged(listId: "ips", value: 12.25, runId: nil)),
        ]
        for event in events {
            let fast = try #require(event.fastPayload())
            #expect(String(decoding: fast, as: UTF8.self) == String(decoding: event.encodedPayload(), as: UTF8.self))
        }
    }
}
