import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Testing
import WorkflowModel
import Workflows

/// Integers, times and sizes at and beyond their limits, on every route input that takes them:
/// a clear 4xx naming the input, never a trap (which would end the test process) or a 5xx.
@Suite("Input limits")
struct InputLimitTests {
    /// Integers at and around every limit a parser or a conversion may meet.
    static let integers = [
        "-9223372036854775809", "-9223372036854775808", "-2147483649", "-1", "0", "-0", "1", "2147483647",
        "2147483648", "4294967296", "9007199254740993", "9223372036854775806", "9223372036854775807",
        "9223372036854775808", "18446744073709551615", "18446744073709551616", "99999999999999999999999",
        "1e400", "-1e400", "1e-400", "1.5", "1E2",
    ]

    @Test("Last-Event-ID and from at the limits of a position answer 400 naming the header or parameter")
    func positions() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                for last in ["18446744073709551615", "18446744073709551616", "9223372036854775807", "-1", "x"] {
                    let answer = try await client.call(.get, "/v1/log/stream", key: server.auditor,
                                                       headers: [HTTPField.Name("Last-Event-ID")!: last])
                    #expect(answer.status == .badRequest, "Last-Event-ID \(last)")
                    #expect(answer.json["error"]?["field"] == "Last-Event-ID")
                }
                for from in ["18446744073709551615", "9223372036854775808", "0", "-5"] {
                    let answer = try await client.call(.get, "/v1/log?from=\(from)", key: server.auditor)
                    #expect(answer.status == .badRequest, "from \(from)")
                    #expect(answer.json["error"]?["field"] == "from")
                }
                #expect(try await client.call(.get, "/v1/log?from=9223372036854775807", key: server.auditor).status == .ok)
            }
        }
    }

    @Test("occurred_at outside years 1 to 9999 is refused with 422; the edges are accepted and read back")
    func occurredAt() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                for value: JSONValue in [.integer(Int64.min), .integer(Int64.max), .integer(-62_135_596_800_001),
                                         .integer(253_402_300_800_000), "10000-01-01T00:00:00Z"] {
                    let answer = try await client.call(.post, "/v1/events", key: server.service, json: [
                        "type": "signup", "object_type": "user", "object_token": "u1", "data": [:], "occurred_at": value,
                    ])
                    #expect(answer.status == .unprocessableContent, "occurred_at \(value)")
                    #expect(answer.json["error"]?["field"] == "occurred_at")
                }
                for (token, value) in [("first", JSONValue.integer(-62_135_596_800_000)),
                                       ("last", .integer(253_402_300_799_999))] {
                    let posted = try await client.call(.post, "/v1/events", key: server.service, json: [
                        "type": "signup", "object_type": "user", "object_token": .string(token), "data": [:],
                        "occurred_at": value,
                    ])
                    #expect(posted.status == .created)
                    let object = try await client.call(.get, "/v1/objects/user/\(token)", key: server.auditor)
                    #expect(object.status == .ok)
                    #expect(object.json["events"]?[0]?["occurred_at"]
                            == (token == "first" ? "0001-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z"))
                }
            }
        }
    }

    @Test("timestamps of any stored value are written without trapping")
    func timestampsAreTotal() {
        #expect(JSONText.timestamp(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(JSONText.timestamp(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(JSONText.timestamp(milliseconds: JSONText.timestampRange.lowerBound) == "0001-01-01T00:00:00.000Z")
        #expect(JSONText.timestamp(milliseconds: JSONText.timestampRange.upperBound) == "9999-12-31T23:59:59.999Z")
        for extreme in [Int64.min, Int64.min + 1, Int64.max, Int64.max - 999] {
            #expect(!JSONText.timestamp(milliseconds: extreme).isEmpty)
        }
    }

    @Test("integers at and beyond every limit, on every route input that takes one, never give a 5xx")
    func integersAtTheLimits() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let id = try await APITests.activeWorkflow(client, server.admin)
                for text in Self.integers {
                    var answers: [(String, HTTPResponse.Status)] = []
                    func call(_ method: HTTPRequest.Method, _ uri: String, body: String? = nil,
                              headers: HTTPFields = [:]) async throws {
                        var fields = headers
                        if body != nil { fields[.contentType] = "application/json" }
                        let answer = try await client.call(method, uri, key: server.admin, body: body, headers: fields)
                        answers.append(("\(method) \(uri) \(body ?? "") \(headers)", answer.status))
                    }
                    let query = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
                    try await call(.get, "/v1/log?from=\(query)&limit=\(query)")
                    try await call(.get, "/v1/log?limit=\(query)&backward=true")
                    try await call(.get, "/v1/workflows/\(id)/runs?version=\(query)&limit=\(query)")
                    try await call(.get, "/v1/workflows/\(id)/versions/\(query)")
                    try await call(.get, "/v1/import-runs/imr_x/runs?after_row=\(query)&limit=\(query)")
                    try await call(.put, "/v1/workflows/\(id)/draft", body: apiDefinition.jsonText,
                                   headers: [.ifMatch: "\"\(text)\""])
                    try await call(.post, "/v1/workflows/\(id)/revert", body: #"{"to": \#(text)}"#)
                    try await call(.post, "/v1/workflows/\(id)/versions",
                                   body: #"{"description": "x", "rollout_percentage": \#(text)}"#)
                    try await call(.patch, "/v1/workflows/\(id)/rollout", body: #"{"percentage": \#(text)}"#)
                    try await call(.post, "/v1/workflows/\(id)/runs",
                                   body: #"{"parameters": {"email": "a@b.c", "amount": \#(text)}}"#)
                    try await call(.post, "/v1/events", body: #"{"type": "t", "object_type": "user", "object_token": "u", "#
                                   + #""data": {"n": \#(text)}, "occurred_at": \#(text)}"#)
                    try await call(.post, "/v1/importers", body: #"{"name": "i", "data_source_id": "ds_x", "#
                                   + #""workflow_id": "\#(id)", "version": \#(text)}"#)
                    for (request, status) in answers {
                        #expect(status.code < 500, "\(request) answered \(status.code)")
                    }
                }
                #expect(try await client.call(.get, "/healthz", key: nil).status == .ok)
            }
        }
    }

    @Test("validation work is bounded: 200,000 unknown parameters list 100 issues and count the rest")
    func boundedValidation() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let id = try await APITests.activeWorkflow(client, server.service)
                var parameters: [String: JSONValue] = ["email": "a@b.c"]
                for i in 0..<200_000 { parameters["k\(i)"] = .integer(Int64(i)) }
                let answer = try await client.call(.post, "/v1/workflows/\(id)/runs", key: server.service,
                                                   json: ["parameters": .object(parameters)])
                #expect(answer.status == .unprocessableContent)
                let issues = try #require(answer.json["error"]?["issues"]?.arrayValue)
                #expect(issues.count == 101)
                #expect(issues.last?["rule"]?.stringValue?.contains("199900 more") == true)
                // The first unknown names in sorted order.
                #expect(issues.first?["field"] == "k0")
                #expect((answer.json["error"]?["message"]?.stringValue?.utf8.count ?? .max) < 1_000)
            }
        }
    }

    @Test("an event id that is empty, over 255 bytes or with control characters is refused with 422")
    func eventIds() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                for id in ["", String(repeating: "y", count: 256), "a\u{0}b", "line\nbreak"] {
                    let answer = try await client.call(.post, "/v1/events", key: server.service, json: [
                        "id": .string(id), "type": "signup", "object_type": "user", "object_token": "u1", "data": [:],
                    ])
                    #expect(answer.status == .unprocessableContent, "id \(id.prefix(20))")
                    #expect(answer.json["error"]?["field"] == "id")
                }
            }
        }
    }

    @Test("a workflow whose run_workflow step starts itself stops at 16 runs deep")
    func runWorkflowCycle() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let created = try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "Loop"])
                let id = try #require(created.json["id"]?.stringValue)
                let definition: JSONValue = [
                    "trigger": ["kind": "api", "schema": ["fields": []]],
                    "routes": [["name": "again", "steps": [
                        ["step_uid": "again", "type": "run_workflow", "parameters": ["workflow_id": .string(id)]],
                    ]]],
                ]
                #expect(try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: definition,
                                              headers: [.ifMatch: "\"0\""]).status == .ok)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/versions", key: server.admin,
                                              json: ["activate": true]).status == .created)
                #expect(try await client.call(.post, "/v1/workflows/\(id)/runs", key: server.admin,
                                              json: ["parameters": [:]]).status == .created)
                var runs: [JSONValue] = []
                for _ in 0..<200 {
                    runs = try await client.call(.get, "/v1/workflows/\(id)/runs?limit=1000", key: server.admin)
                        .json["runs"]?.arrayValue ?? []
                    let ended = runs.filter { ["completed", "failed"].contains($0["status"]?.stringValue ?? "") }
                    if runs.count >= 16 && ended.count == runs.count { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .milliseconds(300))
                runs = try await client.call(.get, "/v1/workflows/\(id)/runs?limit=1000", key: server.admin)
                    .json["runs"]?.arrayValue ?? []
                #expect(runs.count == 16)
                #expect(runs.filter { $0["status"] == "failed" }.count == 1)
            }
        }
    }

    @Test("a payload over the store's 1 MiB event limit is 413 too_large, not a retryable 503")
    func payloadTooLarge() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let big = String(repeating: "a", count: 1_100_000)
                let answer = try await client.call(.post, "/v1/events", key: server.service, json: [
                    "type": "signup", "object_type": "user", "object_token": "u1", "data": ["blob": .string(big)],
                ])
                #expect(answer.status == .contentTooLarge)
                #expect(answer.json["error"]?["code"] == "too_large")
                #expect(answer.json["error"]?["message"]?.stringValue?.contains("1048576 bytes") == true)
                #expect(try await client.call(.get, "/v1/objects/user/u1", key: server.auditor).status == .notFound)
            }
        }
    }
}
