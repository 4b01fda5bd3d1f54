@testable import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("Event payloads and JSON parsing")
struct EventCodingTests {
    static let sealed = SealedData(sealed: "c2VhbGVk")
    static let params: JSONValue = ["ip": "1.2.3.4", "n": 7, "f": 1.5, "nested": ["a": [1, "x", nil, true]]]

    static let all: [DomainEvent] = [
        .workflowCreated(WorkflowCreated(workflowId: "wf_1", name: "Screen", number: 3)),
        .draftSaved(DraftSaved(workflowId: "wf_1", draftVersion: 2, definition: params)),
        .versionPublished(VersionPublished(workflowId: "wf_1", version: 2, definition: params, description: "d", revertedFrom: nil)),
        .versionPublished(VersionPublished(workflowId: "wf_1", version: 3, definition: params, description: "r", revertedFrom: 1)),
        .versionDescriptionEdited(VersionDescriptionEdited(workflowId: "wf_1", version: 1, description: "e")),
        .versionActivated(VersionActivated(workflowId: "wf_1", version: 2)),
        .workflowDeactivated(WorkflowDeactivated(workflowId: "wf_1")),
        .rolloutStaged(RolloutStaged(workflowId: "wf_1", rolloutId: "ro_1", treatmentVersion: 2, controlVersion: 1,
                                     percentage: 12.34, stickyField: "user")),
        .rolloutPercentageChanged(RolloutPercentageChanged(workflowId: "wf_1", rolloutId: "ro_1", percentage: 50)),
        .rolloutPromoted(RolloutPromoted(workflowId: "wf_1", rolloutId: "ro_1", version: 2)),
        .rolloutEnded(RolloutEnded(workflowId: "wf_1", rolloutId: "ro_1")),
        .runCreated(RunCreated(runId: "run_1", workflowId: "wf_1", version: 2, arm: .treatment, rolloutId: "ro_1",
                               source: RunSource(kind: "importer", reference: "imp_1", row: 42), parameters: params,
                               objectType: nil, objectToken: nil, eventType: nil, queue: .batch, quotaDay: "2026-11-22")),
        .runCreated(RunCreated(runId: "run_2", workflowId: "wf_1", version: 1, arm: .none, rolloutId: nil,
                               source: RunSource(kind: "event", reference: "evt_\"quoted\"\n"), parameters: [:],
                               objectType: "inquiry", objectToken: "inq_é😀", eventType: "inquiry.completed",
                               queue: .realtime, quotaDay: "2026-11-22")),
        .runCreated(RunCreated(runId: "run_3", workflowId: "wf_1", version: 1, arm: .none, rolloutId: nil,
                               source: RunSource(kind: "task", reference: "task_1", row: 0), parameters: [:],
                               objectType: "profile", objectToken: "61e947333f62fc26d384452c", eventType: nil,
                               queue: .batch, quotaDay: "2026-11-22",
                               context: ["apicontent": ["one": "1"], "custom_data": ["field": "value"]],
                               stepOverrides: ["s1": ["parameters": ["url": "http://x"], "account": "acc_1"]])),
        .runsImported(RunsImported(workflowId: "wf_1", version: 2, importerRunId: "imr_1", runIdPrefix: "run_0123456789abcdef01234567",
                                   quotaDay: "2026-11-24", rows: [
                                       ImportedRow(row: 1, parameters: params),
                                       ImportedRow(row: 7, parameters: [:], objectType: "inquiry", objectToken: "inq_\"1\"",
                                                   eventType: "inquiry.completed"),
                                   ])),
        .runsImported(RunsImported(workflowId: "wf_1", version: 1, importerRunId: "imr_2", runIdPrefix: "run_x", quotaDay: "2026-11-24",
                                   rows: [])),
        .routeMatched(RouteMatched(runId: "run_1", route: "high risk")),
        .routeMatched(RouteMatched(runId: "run_1", route: nil)),
        .stepStarted(StepStarted(runId: "run_1", stepUid: "s1", stepType: "http_request", attempt: 2, idempotencyKey: "run_1/s1")),
        .stepStarted(StepStarted(runId: "run_1", stepUid: "s2", stepType: "tag", attempt: 1, idempotencyKey: nil)),
        .stepCompleted(StepCompleted(runId: "run_1", stepUid: "s1", output: ["status": 200, "body": params])),
        .stepFailed(StepFailed(runId: "run_1", stepUid: "s1", attempt: 1, error: "HTTP 500", willRetry: true)),
        .runCompleted(RunCompleted(runId: "run_1", decision: "approved")),
        .runCompleted(RunCompleted(runId: "run_1", decision: nil)),
        .runFailed(RunFailed(runId: "run_1", stepUid: "s1", reason: "boom")),
        .runFailed(RunFailed(runId: "run_1", stepUid: nil, reason: "no version")),
        .runCancelled(RunCancelled(runId: "run_1", reason: "job job_1 was stopped")),
        .objectEventRecorded(ObjectEventRecorded(eventId: "e1", objectType: "inquiry", objectToken: "inq_1",
                                                 eventType: "inquiry.completed", occurredAt: 1_795_000_000_123, data: sealed)),
        .objectTagged(ObjectTagged(objectType: "inquiry", objectToken: "inq_1", tags: ["a", "b"], runId: "run_1")),
        .objectFieldSet(ObjectFieldSet(objectType: "inquiry", objectToken: "inq_1", field: "risk", value: sealed, runId: "run_1")),
        .objectDecided(ObjectDecided(objectType: "inquiry", objectToken: "inq_1", decision: "declined", reason: nil, runId: "run_1")),
        .objectDecided(ObjectDecided(objectType: "inquiry", objectToken: "inq_1", decision: "approved", reason: "ok", runId: "run_1")),
        .objectRedacted(ObjectRedacted(objectType: "inquiry", objectToken: "inq_1", runId: "run_1")),
        .listItemAdded(ListItemChanged(listId: "ips", value: "10.0.0.1", runId: "run_1")),
        .listItemRemoved(ListItemChanged(listId: "ips", value: ["k": 1], runId: nil)),
    ]

    @Test("every event type round-trips through its payload")
    func roundTrip() throws {
        for event in Self.all {
            let decoded = try DomainEvent.decode(type: event.type, payload: event.payload())
            #expect(decoded == event, "\(event.type)")
        }
        #expect(try DomainEvent.decode(type: "other.thing", payload: Array("{}".utf8)) == nil)
    }

    @Test("a value reparsed is what parsing its written text gives, integer and number told apart")
    func reparsed() throws {
        /// The value with its integers and numbers named apart (`==` compares them as numbers).
        func typed(_ value: JSONValue) -> String {
            switch value {
            case .integer(let i): "i\(i)"
            case .number(let d): "n\(d)"
            case .array(let items): "[" + items.map(typed).joined(separator: ",") + "]"
            case .object(let fields): "{" + fields.sorted { $0.key < $1.key }.map { "\($0.key):\(typed($0.value))" }
                .joined(separator: ",") + "}"
            default: "\(value)"
            }
        }
        let values: [JSONValue] = [
            .number(3), .number(-0.0), .number(1.5), .number(-2.25e-9), .number(1e15), .number(1e16), .number(1e20),
            .number(123_456_789_012), .number(.nan), .number(.infinity), .integer(7), .string("3.0"), .bool(true), .null,
            ["a": .number(4), "b": [.number(0.5), .number(2), ["c": .number(-8)]], "d": "x"],
            [.integer(1), .string("2")],
        ]
        for value in values {
            var text: [UInt8] = []
            value.write(to: &text)
            let parsed = try JSONValue(parsing: String(decoding: text, as: UTF8.self))
            #expect(typed(value.reparsed) == typed(parsed), "\(String(decoding: text, as: UTF8.self))")
        }
        #expect(typed(JSONValue.number(3).reparsed) == "i3")
        #expect(typed(JSONValue.number(1.5).reparsed) == "n1.5")
    }

    @Test("a payload missing a field or of the wrong shape fails to decode with the field named")
    func badPayloads() {
        for (type, json, field) in [("run.created.v1", "{}", "source"),
                                    ("run.created.v1", #"{"source": {"reference": "x"}}"#, "source.kind"),
                                    ("run.step_completed.v1", #"{"runId": "r", "stepUid": "s"}"#, "output"),
                                    ("object.tagged.v1", #"{"objectType": "a", "objectToken": "b", "tags": [1], "runId": "r"}"#, "tags"),
                                    ("run.created.v1", "[1]", "expected a JSON object"),
                                    ("run.batch_imported.v1", #"{"workflowId": "w", "version": 1, "importerRunId": "i", "runIdPrefix": "p", "quotaDay": "d"}"#, "rows"),
                                    ("run.batch_imported.v1", #"{"rows": [{"row": 1, "parameters": {}} {"row": 2}]}"#, "',' or ']'"),
                                    ("run.batch_imported.v1", #"{"rows": [{"row": 1}]}"#, "parameters"),
                                    ("run.batch_imported.v1", #"{"rows": {"row": 1}}"#, "array"),
                                    ("workflow.created.v1", #"{"workflowId": "wf_1", "name": "a"}"#, "number"),
                                    ("workflow.created.v1", #"{"workflowId": "wf_1", "name": 5, "number": 1}"#, "string"),
                                    ("list.item_added.v1", "{oops", "JSON")] {
            do {
                _ = try DomainEvent.decode(type: type, payload: Array(json.utf8))
                Issue.record("\(type) \(json) decoded")
            } catch {
                #expect("\(error)".contains(field), "\(error)")
            }
        }
    }

    @Test("a batch's rows without details: parameters checked as the parser checks them, read as null")
    func importedRowsWithoutDetails() throws {
        let batch = RunsImported(workflowId: "wf_1", version: 1, importerRunId: "imr_1", runIdPrefix: "run_ab", quotaDay: "2026-11-24",
                                 rows: [ImportedRow(row: 1, parameters: Self.params),
                                        ImportedRow(row: 2, parameters: ["s": "é\"\\\n😀", "e": [], "o": [:], "n": -1.5e-3]),
                                        ImportedRow(row: 3, parameters: .null, objectType: "case", objectToken: "c_1")])
        let payload = DomainEvent.runsImported(batch).payload()
        var ids = DomainEvent.RepeatedIds()
        let summary = try payload.withUnsafeBytes {
            try DomainEvent.decode(.runsImported, payload: $0, ids: &ids, rowDetails: false)
        }
        var expected = batch
        for i in expected.rows.indices { expected.rows[i].parameters = .null }
        #expect(summary == .runsImported(expected))
        // Whatever the parser refuses, skipping refuses too.
        for text in [#"{"a": [1, 2,]}"#, #"{"a" 1}"#, #"["x\q"]"#, "\"\u{01}\"", #"{"a": tru}"#, #"[1 2]"#, #""\ud800""#,
                     #"{"a": {"b": [}}"#, "\"abc", #"[01]"#, "\"\u{FF}\""] {
            let bytes: [UInt8] = text == "\"\u{FF}\"" ? [0x22, 0xFF, 0x22] : Array(text.utf8)
            let parsed = bytes.withUnsafeBytes { try? JSONParser.parse($0) }
            let skipped = bytes.withUnsafeBytes { raw -> Bool in
                var state = JSONParser.State(bytes: raw)
                do {
                    try state.skip(depth: 0)
                    return state.index == raw.count
                } catch {
                    return false
                }
            }
            #expect(parsed == nil && !skipped, "\(text)")
        }
    }

    @Test("ids reused from the payload before (as a replay does) decode exactly as fresh ones")
    func repeatedIds() throws {
        var ids = DomainEvent.RepeatedIds()
        for json in [#"{"runId": "run_1", "route": "a"}"#,
                     #"{"route": "b", "runId": "run_1"}"#,
                     #"{"runId": "run_\u0031", "route": "c"}"#,
                     #"{"runId": "run_12", "route": "d"}"#,
                     #"{"runId": "run_1", "route": "e"}"#,
                     #"{"runId": "a\\b", "route": "f"}"#,
                     #"{"runId": "a\\b", "route": "g"}"#,
                     #"{"runId": "a\b", "route": "h"}"#,
                     #"{"runId": "", "route": "i"}"#,
                     #"{"runId": "", "route": "j"}"#] {
            let bytes = Array(json.utf8)
            let reusing = try bytes.withUnsafeBytes { try DomainEvent.decode(.routeMatched, payload: $0, ids: &ids) }
            let fresh = try DomainEvent.decode(type: "run.route_matched.v1", payload: bytes)
            #expect(reusing == fresh, "\(json)")
        }
        let truncated = Array(#"{"runId": "run_1"#.utf8)
        _ = try Array(#"{"runId": "run_1"}"#.utf8).withUnsafeBytes { try DomainEvent.decode(.routeMatched, payload: $0, ids: &ids) }
        #expect(throws: JSONParseError.self) {
            try truncated.withUnsafeBytes { try DomainEvent.decode(.routeMatched, payload: $0, ids: &ids) }
        }
    }

    @Test("the JSON parser handles escapes, unicode, numbers and rejects malformed text")
    func parser() throws {
        let v = try JSONValue(parsing: #"""
             {"s": "a\"b\\c\/d\n\u00e9\ud83d\ude00", "i": -9223372036854775808, "big": 1.8446744073709551616e19,
              "f": -1.5e3, "z": 0, "t": true, "n": null, "arr": [ ], "o": { } }
            """#)
        #expect(v["s"] == "a\"b\\c/d\né😀")
        #expect(v["i"] == .integer(.min))
        #expect(v["big"] == .number(18446744073709551616))
        #expect(v["f"] == .number(-1500))
        #expect(v["z"] == .integer(0) && v["t"] == true && v["n"] == .null)
        #expect(v["arr"] == [] && v["o"] == [:])
        #expect(try JSONValue(parsing: "\"plain\"") == "plain")
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "tru", "[1] 2", "\"\\ud800\"", "1e"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue(parsing: bad) }
        }
        // A quote, backslash, control or non-ASCII character at every position of strings up to
        // 19 bytes long, as values and as keys the member reader skips.
        for length in 1..<20 {
            for at in 0..<length {
                for (char, escaped) in [("\"", #"\""#), ("\\", #"\\"#), ("\n", #"\n"#), ("é", "é"), ("😀", #"\ud83d\ude00"#)] {
                    var text = Array(repeating: "a", count: length), json = text
                    text[at] = char
                    json[at] = escaped
                    #expect(try JSONValue(parsing: "\"\(json.joined())\"") == .string(text.joined()))
                    // The member reader skips such a key and reads the next member.
                    let payload = Array(#"{"\#(json.joined())": 1, "runId": "r\#(json.joined())"}"#.utf8)
                    var ids = DomainEvent.RepeatedIds()
                    let event = try payload.withUnsafeBytes { try DomainEvent.decode(.routeMatched, payload: $0, ids: &ids) }
                    #expect(event == .routeMatched(RouteMatched(runId: "r" + text.joined(), route: nil)))
                }
                var raw = Array(repeating: "a", count: length)
                raw[at] = "\u{01}"
                #expect(throws: JSONParseError.self) { try JSONValue(parsing: "\"\(raw.joined())\"") }
            }
        }
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
    }
}
