import RunlogJSON
public import HTTPTypes
public import Hummingbird
import EventLog
import Foundation
public import WorkflowModel
import Workflows

/// An error answered to an HTTP client, always in one JSON shape:
/// `{"error": {"code", "message", "field"?, "value"?, "issues"?}}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var value: String?
    public var issues: [FieldIssue]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String,
                field: String? = nil, value: String? = nil, issues: [FieldIssue] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.value = value
        self.issues = issues
        self.headers = headers
    }

    /// 400: the request itself is malformed (not JSON, a bad query parameter).
    static func badRequest(_ message: String, field: String? = nil, value: String? = nil) -> APIError {
        APIError(.badRequest, "bad_request", message, field: field, value: value)
    }

    /// 422: well-formed input that breaks a rule of the domain.
    static func invalid(field: String, value: JSONValue?, rule: String) -> APIError {
        let issue = FieldIssue(field: field, value: value?.jsonText, rule: rule)
        return APIError(.unprocessableContent, "invalid", "\(field) \(rule)", field: field, value: issue.value,
                        issues: [issue])
    }

    static func notFound(_ message: String) -> APIError {
        APIError(.notFound, "not_found", message)
    }

    var body: JSONValue {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let field { error["field"] = .string(field) }
        if let value { error["value"] = .string(value) }
        if !issues.isEmpty {
            error["issues"] = .array(issues.map { issue in
                var entry: [String: JSONValue] = ["field": .string(issue.field), "rule": .string(issue.rule)]
                if let value = issue.value { entry["value"] = .string(value) }
                return .object(entry)
            })
        }
        return ["error": .object(error)]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try Answer(self).response(from: request, context: context)
    }
}

extension APIError {
    /// The one place where domain errors become statuses.
    init(_ error: WorkflowError) {
        let status: HTTPResponse.Status
        switch error.code {
        case .invalid: status = .unprocessableContent
        case .notFound: status = .notFound
        case .conflict: status = .conflict
        case .preconditionFailed: status = .preconditionFailed
        case .quotaExceeded: status = .tooManyRequests
        case .tooLarge: status = .contentTooLarge
        default: status = .serviceUnavailable
        }
        let first = error.issues.first
        if error.code == .storage {
            let (status, code) = Self.storage(error.cause)
            self.init(status, code, error.description)
            return
        }
        self.init(status, error.code.description, error.description, field: first?.field, value: first?.value,
                  issues: error.issues)
        if let resetsAt = error.resetsAt {
            let seconds = max(0, (resetsAt - Int64(Date().timeIntervalSince1970 * 1000) + 999) / 1000)
            headers[.retryAfter] = String(seconds)
            message += " (resets at \(JSONText.timestamp(milliseconds: resetsAt)))"
        }
    }

    init(_ error: EventStoreError) {
        switch error.code {
        case .invalidArgument:
            self.init(.unprocessableContent, "invalid", error.message, field: error.field, value: error.value)
        case .payloadTooLarge:
            self.init(.contentTooLarge, "payload_too_large", error.message, field: error.field, value: error.value)
        case .wrongExpectedVersion:
            self.init(.conflict, "conflict", error.message)
        case .idempotencyConflict:
            self.init(.conflict, "idempotency_conflict", error.message)
        default:
            let (status, code) = Self.storage(StorageCause(error.code))
            self.init(status, code, error.message)
        }
    }

    /// The status and code of a store that cannot serve, by what the store said: the one place
    /// they are decided. A full data file is 507 `storage_full` (retrying does not help until
    /// an operator acts); a store open read-only is 503 `read_only`; a server that is stopping
    /// 503 `shutting_down`; a damaged file 500 `storage_corrupted`; anything else 503 `storage`.
    static func storage(_ cause: StorageCause?) -> (HTTPResponse.Status, String) {
        switch cause {
        case .full?: (HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "storage_full")
        case .readOnly?: (.serviceUnavailable, "read_only")
        case .shuttingDown?: (.serviceUnavailable, "shutting_down")
        case .corrupted?: (.internalServerError, "storage_corrupted")
        case .unavailable?, nil: (.serviceUnavailable, "storage")
        }
    }
}

/// A handler's answer: status, headers and a JSON body. Kept as text so that an idempotent
/// command can store it and answer a retry with the same bytes.
struct Answer: Sendable, ResponseGenerator {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: String

    init(status: HTTPResponse.Status, headers: HTTPFields = [:], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) {
        var fields = headers
        fields[.contentType] = "application/json"
        self.init(status: status, headers: fields, body: value.jsonText)
    }

    init(_ error: APIError) {
        self.init(error.body, status: error.status, headers: error.headers)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
