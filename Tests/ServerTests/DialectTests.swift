import RunlogJSON
import Access
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// What each API dialect answers when a request is refused or goes nowhere: `/v1` (and the
/// root routes) with `Authorization: Bearer` and `{"error": {...}}`, `/v3` (launch API) with
/// `x-api-key` and a project, `/api/v1.1/` (batch task API) with the token in the body and
/// `{"error": N, "error_text": ...}`. Clients rely on these exact answers.
@Suite("API dialects: authentication, unknown routes and error shapes")
struct DialectTests {
    /// Status, `WWW-Authenticate` (or `-`) and body of an answer, in one line.
    static func line(_ answer: (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue)) -> String {
        "\(answer.status.code) \(answer.headers[.wwwAuthenticate] ?? "-") \(answer.json.jsonText)"
    }

    static let project = HTTPField.Name("x-project-id")!

    @Test("/v1: no key, a wrong key, a wrong scheme and a wrong role; the root routes are /v1's; /healthz is open")
    func v1() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                #expect((await client.answerLine(.get, "/v1/workflows", key: nil))
                        == #"401 Bearer {"error":{"code":"unauthorized","message":"no API key: send Authorization: Bearer KEY"}}"#)
                #expect((await client.answerLine(.get, "/v1/workflows", key: "rlk_wrong"))
                        == #"401 Bearer {"error":{"code":"unauthorized","message":"unknown or revoked API key"}}"#)
                #expect((await client.answerLine(.get, "/v1/workflows", key: nil,
                                                       headers: [.authorization: "x-api-key \(server.admin)"]))
                        == #"401 Bearer {"error":{"code":"unauthorized","message":"the Authorization header must be Bearer KEY"}}"#)
                let auditor = try await client.call(.post, "/v1/keys", key: server.auditor, json: ["role": "service"])
                #expect(Self.line(auditor) == #"403 - {"error":{"code":"forbidden","message":"key "#
                        + (server.api.keys.authenticate(server.auditor)?.id ?? "?")
                        + #" has role auditor, which may not do this (admin only)"}}"#)
                #expect((await client.answerLine(.get, "/metrics", key: nil))
                        == #"401 Bearer {"error":{"code":"unauthorized","message":"no API key: send Authorization: Bearer KEY"}}"#)
                #expect(try await client.call(.get, "/healthz", key: nil).status == .ok)
                #expect(try await client.call(.get, "/healthz", key: "rlk_wrong").status == .ok)
            }
        }
    }

    @Test("/v3: no key, a wrong key, a wrong scheme, no project and a wrong role")
    func v3() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let path = "/v3/workflows/wf-none/schedule"
                let body: JSONValue = ["job_name": "j", "inputs": [["first_name": "Ada"]]]
                #expect((await client.answerLine(.post, path, key: nil, json: body, headers: [Self.project: "p"]))
                        == #"401 x-api-key {"error":{"code":"unauthorized","message":"no API key: send Authorization: x-api-key KEY"}}"#)
                #expect((await client.answerLine(.post, path, key: nil, json: body,
                                                       headers: [.authorization: "x-api-key rlk_wrong", Self.project: "p"]))
                        == #"401 x-api-key {"error":{"code":"unauthorized","message":"unknown or revoked API key"}}"#)
                #expect((await client.answerLine(.post, path, key: nil, json: body,
                                                       headers: [.authorization: "Basic abc", Self.project: "p"]))
                        == #"401 x-api-key {"error":{"code":"unauthorized","message":"the Authorization header must be x-api-key KEY"}}"#)
                // Bearer is accepted on /v3 too.
                #expect((await client.answerLine(.post, path, key: server.service, json: body))
                        == #"400 - {"error":{"code":"bad_request","field":"x-project-id","message":"the x-project-id header is required: the project the request acts in"}}"#)
                let auditor = try await client.call(.post, path, key: nil, json: body,
                                                    headers: [.authorization: "x-api-key \(server.auditor)", Self.project: "p"])
                #expect(Self.line(auditor) == #"403 - {"error":{"code":"forbidden","message":"key "#
                        + (server.api.keys.authenticate(server.auditor)?.id ?? "?")
                        + #" has role auditor, which may not send commands"}}"#)
            }
        }
    }

    @Test("/api/v1.1/: no token, a wrong token and a wrong role, in the batch API's shape")
    func batch() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let path = "/api/v1.1/workflows/import_and_start_batch_task"
                let json: HTTPFields = [.contentType: "application/json"]
                #expect((await client.answerLine(.post, path, key: nil, body: "{}", headers: json))
                        == #"401 - {"error":401,"error_text":"token is missing: send your API token in the \"token\" field of the body"}"#)
                // A Bearer header is not how this API authenticates.
                #expect((await client.answerLine(.post, path, key: server.service, body: "{}", headers: json))
                        == #"401 - {"error":401,"error_text":"token is missing: send your API token in the \"token\" field of the body"}"#)
                #expect((await client.answerLine(.post, path, key: nil, body: #"{"token": "rlk_wrong"}"#, headers: json))
                        == #"401 - {"error":401,"error_text":"unknown or revoked API token"}"#)
                let auditor = try await client.call(.post, path, key: nil, body: #"{"token": "\#(server.auditor)"}"#, headers: json)
                #expect(Self.line(auditor) == #"403 - {"error":403,"error_text":"the token's key "#
                        + (server.api.keys.authenticate(server.auditor)?.id ?? "?")
                        + #" has role auditor, which may not send commands"}"#)
            }
        }
    }

    @Test("an unknown route: each prefix authenticates in its dialect first, then answers 404 in its shape")
    func unknownRoutes() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let bearer = #"401 Bearer {"error":{"code":"unauthorized","message":"no API key: send Authorization: Bearer KEY"}}"#
                // /v1 and every path outside the other dialects.
                for path in ["/v1/nope", "/nope", "/v3", "/api/v1.1", "/api/nope", "/healthz/x", "/uix"] {
                    #expect((await client.answerLine(.get, path, key: nil)) == bearer, "\(path)")
                    #expect((await client.answerLine(.get, path, key: server.auditor))
                            == #"404 - {"error":{"code":"not_found","message":"no route GET \#(path)"}}"#, "\(path)")
                }
                // A known path with a method it does not have.
                #expect((await client.answerLine(.put, "/v1/workflows", key: server.admin))
                        == #"404 - {"error":{"code":"not_found","message":"no route PUT /v1/workflows"}}"#)
                #expect((await client.answerLine(.post, "/healthz", key: nil))
                        == #"404 - {"error":{"code":"not_found","message":"no route POST /healthz"}}"#)

                // /v3/: x-api-key and a project first.
                #expect((await client.answerLine(.get, "/v3/nope", key: nil))
                        == #"401 x-api-key {"error":{"code":"unauthorized","message":"no API key: send Authorization: x-api-key KEY"}}"#)
                #expect((await client.answerLine(.get, "/v3/nope", key: server.auditor))
                        == #"400 - {"error":{"code":"bad_request","field":"x-project-id","message":"the x-project-id header is required: the project the request acts in"}}"#)
                #expect((await client.answerLine(.get, "/v3/nope", key: server.auditor, headers: [Self.project: "p"]))
                        == #"404 - {"error":{"code":"not_found","message":"no route GET /v3/nope"}}"#)
                #expect((await client.answerLine(.delete, "/v3/jobs/j-1", key: server.auditor, headers: [Self.project: "p"]))
                        == #"404 - {"error":{"code":"not_found","message":"no route DELETE /v3/jobs/j-1"}}"#)

                // /api/v1.1/: no authentication before the route, the batch shape.
                #expect((await client.answerLine(.get, "/api/v1.1/nope", key: nil))
                        == #"404 - {"error":404,"error_text":"no route GET /api/v1.1/nope"}"#)
                #expect((await client.answerLine(.get, "/api/v1.1/tasks/status", key: nil))
                        == #"404 - {"error":404,"error_text":"no route GET /api/v1.1/tasks/status"}"#)
                #expect((await client.answerLine(.get, "/api/v1.1/", key: nil))
                        == #"404 - {"error":404,"error_text":"no route GET /api/v1.1/"}"#)
            }
        }
    }

    @Test("the rate limit answers 429 with Retry-After in each dialect's shape; RateLimit headers on /v1 and /v3 answers")
    func rateLimit() async throws {
        try await TestServer.with(rateLimit: 2) { server in
            try await server.test { client in
                let id = server.api.keys.authenticate(server.auditor)?.id ?? "?"
                let first = try await client.call(.get, "/v1/workflows", key: server.auditor)
                #expect(first.status == .ok)
                #expect(first.headers[HTTPField.Name("RateLimit-Limit")!] == "2")
                #expect(first.headers[HTTPField.Name("RateLimit-Remaining")!] == "1")
                let second = try await client.call(.get, "/v3/jobs/j-none", key: nil,
                                                   headers: [.authorization: "x-api-key \(server.auditor)", Self.project: "p"])
                #expect(second.status == .notFound)
                // An error answer carries no RateLimit headers (only 429 does).
                #expect(second.headers[HTTPField.Name("RateLimit-Limit")!] == nil)
                for path in ["/v1/workflows", "/v1/nope"] {
                    let over = try await client.call(.get, path, key: server.auditor)
                    #expect(over.status == .tooManyRequests)
                    #expect(over.json["error"]?["code"] == "rate_limited")
                    #expect(over.json["error"]?["message"]?.stringValue?.hasPrefix("key \(id) is over its limit of 2 requests per minute") == true)
                    #expect(over.headers[.retryAfter] != nil)
                    #expect(over.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
                }
                let launch = try await client.call(.get, "/v3/jobs/j-none", key: nil,
                                                   headers: [.authorization: "x-api-key \(server.auditor)", Self.project: "p"])
                #expect(launch.status == .tooManyRequests)
                #expect(launch.json["error"]?["code"] == "rate_limited")
                #expect(launch.headers[.retryAfter] != nil)
                let batch = try await client.call(.post, "/api/v1.1/tasks/status", key: nil,
                                                  body: #"{"token": "\#(server.auditor)", "task_id": "t-1"}"#,
                                                  headers: [.contentType: "application/json"])
                #expect(batch.status == .tooManyRequests)
                #expect(batch.json["error"] == 429)
                #expect(batch.json["error_text"]?.stringValue?.hasPrefix("key \(id) is over its limit") == true)
                #expect(batch.headers[.retryAfter] == nil)
            }
        }
    }

    @Test("a storage error is answered in each dialect's shape")
    func storageErrors() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let (_, number) = try await BatchTaskAPITests.workflow(client, server.service, profileTagDefinition)
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: LaunchAPITests.definition)
                server.store.close()
                let v1 = try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "late"])
                #expect(v1.status == .serviceUnavailable)
                #expect(v1.json["error"]?["code"] == "shutting_down", "\(v1.json)")
                let v3 = try await client.call(.post, "/v3/workflows/\(workflow)/schedule", key: nil,
                                               json: ["job_name": "j", "inputs": [["first_name": "Ada"]]],
                                               headers: [.authorization: "x-api-key \(server.service)", Self.project: "p"])
                #expect(v3.status == .serviceUnavailable)
                #expect(v3.json["error"]?["code"] == "shutting_down", "\(v3.json)")
                let batch = try await client.call(.post, "/api/v1.1/workflows/import_and_start_batch_task", key: nil,
                                                  body: #"{"token": "\#(server.service)", "workflow_id": \#(number), "matching": "email", "data": [{"data": {"email": "a@example.com"}}]}"#,
                                                  headers: [.contentType: "application/json"])
                #expect(batch.status == .internalServerError)
                #expect(batch.json["error"] == 500, "\(batch.json)")
                #expect(batch.json["error_text"] == "the task could not be recorded; nothing was changed", "\(batch.json)")
                #expect(batch.json["error_debug"]?.stringValue?.contains("closed") == true, "\(batch.json)")
            }
        }
    }

    @Test("metrics label an unknown route NotFound, or unmatched when authentication refused it first; one log line each")
    func metricsAndLogLines() async throws {
        let capture = LogCapture()
        var options = TestServer.Options()
        options.logger = Logger(label: "test", factory: { _ in capture.handler() })
        try await TestServer.with(options: options) { server in
            try await server.test { client in
                _ = try await client.call(.get, "/v1/nope", key: nil)
                _ = try await client.call(.get, "/v1/nope", key: server.admin)
                _ = try await client.call(.get, "/v1/workflows", key: nil)
                _ = try await client.call(.get, "/api/v1.1/nope", key: nil)
                _ = try await client.call(.get, "/v3/nope", key: server.admin, headers: [Self.project: "p"])
                let metrics = try await client.call(.get, "/metrics", key: server.admin)
                let text = metrics.json.stringValue ?? ""
                #expect(text.contains(#"{method="GET",route="unmatched",status="401"} 1"#), "\(text)")
                #expect(text.contains(#"{method="GET",route="NotFound",status="404"} 3"#), "\(text)")
                #expect(text.contains(#"{method="GET",route="/v1/workflows",status="401"} 1"#), "\(text)")
            }
            let lines = capture.lines.filter { $0.hasPrefix("info GET ") }
            #expect(lines.count == 6, "\(lines)")
            #expect(lines.first?.hasPrefix("info GET /v1/nope 401 ") == true)
            #expect(lines.first?.contains(#"route: unmatched"#) == true || lines.first?.contains(#""route": unmatched"#) == true, "\(lines)")
            let admin = server.api.keys.authenticate(server.admin)?.id ?? "?"
            #expect(lines.dropFirst().first?.contains(admin) == true, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("info GET /v3/nope 404 ") && $0.contains(admin) }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("info GET /api/v1.1/nope 404 ") }, "\(lines)")
        }
    }
}

extension TestClientProtocol {
    /// `DialectTests.line` of the answer to a request (or the error the request threw).
    func answerLine(_ method: HTTPRequest.Method, _ uri: String, key: String?, json: JSONValue? = nil,
                    body: String? = nil, headers: HTTPFields = [:]) async -> String {
        do {
            return DialectTests.line(try await call(method, uri, key: key, json: json, body: body, headers: headers))
        } catch {
            return "error: \(error)"
        }
    }
}
