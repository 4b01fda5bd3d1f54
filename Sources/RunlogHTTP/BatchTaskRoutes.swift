import RunlogJSON
import Access
import HTTPTypes
import Hummingbird
import Profiles
import WorkflowModel
import Workflows

/// Seed 003's API: `POST /api/v1.1/workflows/import_and_start_batch_task` and
/// `POST /api/v1.1/tasks/status`, with the API token in the body and every answer, errors
/// included, in that API's own shape (`error`, `error_text`, `error_debug`).
extension RunlogAPI {
    static let batchAPIPrefix = "/api/v1.1/"

    func addBatchTaskRoutes(to router: RouterGroup<Context>, _ tasks: BatchTasks) {
        router.post("workflows/import_and_start_batch_task") { request, _ in
            let body = try await batchBody(request)
            let key = try batchKey(body, .write)
            let task = try BatchTaskRequest(body, maxProfiles: tasks.maxProfiles)
            let taskId = try await tasks.submit(task, actor: key.id)
            return Answer(["error": 0, "error_text": "Successful operation", "task_id": .string(taskId)])
        }
        router.post("tasks/status") { request, _ in
            let body = try await batchBody(request)
            _ = try batchKey(body, .read)
            guard case .string(let taskId)? = body["task_id"], !taskId.isEmpty else {
                throw TaskAPIError.invalid("task_id", body["task_id"], "must be the task_id a task request answered")
            }
            if let unknown = body.objectValue?.keys.sorted().first(where: { $0 != "token" && $0 != "task_id" }) {
                throw TaskAPIError.invalid(unknown, body[unknown], "is not a parameter of this request; allowed: task_id, token")
            }
            return Answer(try await tasks.status(taskId))
        }
    }

    /// The body as JSON; over the limit or not JSON is the API's "Invalid request".
    private func batchBody(_ request: Request) async throws -> JSONValue {
        let bytes: [UInt8]
        do {
            bytes = try await request.bodyBytes()
        } catch let error as APIError where error.status == .contentTooLarge {
            throw TaskAPIError.bodyTooLarge
        }
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            throw TaskAPIError(400, "Invalid request", debug: "the body is not valid JSON: \(error.message)")
        }
    }

    /// The key the body's `token` names, allowed `permission` and within its rate limit.
    private func batchKey(_ body: JSONValue, _ permission: Permission) throws -> APIKeyRecord {
        let token = try BatchTaskRequest.token(of: body)
        guard let key = keys.authenticate(token) else {
            throw TaskAPIError.unauthorized("unknown or revoked API token")
        }
        guard key.role.allows(permission) else {
            throw TaskAPIError(403, "the token's key \(key.id) has role \(key.role.rawValue), which may not \(permission.verb)")
        }
        if let limiter {
            let decision = limiter.take(key.id)
            if !decision.allowed {
                throw TaskAPIError(429, "key \(key.id) is over its limit of \(decision.limit) requests per minute; "
                                   + "retry in \(decision.resetSeconds) s")
            }
        }
        return key
    }
}

extension TaskAPIError {
    var answer: Answer {
        Answer(json, status: HTTPResponse.Status(code: code))
    }

    /// Another error met on this API's paths, in its shape.
    init(_ error: APIError) {
        self.init(Int(error.status.code), error.message)
    }
}
