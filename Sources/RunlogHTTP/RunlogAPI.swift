import RunlogJSON
public import Access
import HTTPTypes
public import EventLog
import Foundation
public import Hummingbird
public import Logging
import ServiceLifecycle
import WorkflowModel
public import Workflows
public import Importers
public import Profiles

/// The HTTP API: every route, on one engine and store.
public struct RunlogAPI: Sendable {
    public typealias Context = RunlogRequestContext
    public let engine: WorkflowEngine
    public let store: any EventStore
    public let keys: KeyRing
    public let importers: ImporterService?
    /// Integration accounts of the launch API (`/v3/` routes are served when set).
    public let accounts: AccountBook?
    public let tasks: BatchTasks?
    let idempotency: IdempotencyCache
    let metrics = ServerMetrics()
    let logger: Logger
    /// Requests per minute per key; nil for no limit.
    let limiter: RateLimiter?
    /// The dashboard's sign-in sessions.
    let sessions = DashboardSessions()
    /// Whether the dashboard is verifying the log (one verification at a time).
    let verifying = SharedFlag()
    /// Whether a preview runs (one at a time: each reads the whole log).
    let previewGate = SharedFlag()
    /// Whether the dashboard's session cookie is always `Secure` (`runlog serve --secure-cookies`,
    /// behind a TLS proxy that sends no `X-Forwarded-Proto`); otherwise only over TLS.
    public var secureCookies = false

    public init(engine: WorkflowEngine, keys: KeyRing, importers: ImporterService? = nil, accounts: AccountBook? = nil,
                tasks: BatchTasks? = nil,
                rateLimit: Int?, idempotencyHours: Int? = 24, logger: Logger) {
        self.engine = engine
        self.store = engine.store
        self.keys = keys
        self.importers = importers
        self.tasks = tasks
        self.accounts = accounts
        self.idempotency = IdempotencyCache(store: engine.store, retentionHours: idempotencyHours)
        self.limiter = rateLimit.map(RateLimiter.init(perMinute:))
        self.logger = logger
    }

    /// The router: a route group per API dialect, each with its own middleware (authentication,
    /// rate limit, error shape; Middleware.swift), and for requests that match no route the
    /// middleware of the dialect their path belongs to.
    public func makeRouter() -> Router<Context> {
        let router = Router(context: Context.self)
        let recorder = RequestRecorder(metrics: metrics, logger: logger)
        let check = KeyCheck(keys: keys, limiter: limiter)
        let bearer = DialectMiddleware(dialect: BearerDialect(check: check), recorder: recorder)
        let open = DialectMiddleware(dialect: OpenDialect(), recorder: recorder)
        let launch = DialectMiddleware(dialect: LaunchDialect(check: check), recorder: recorder)
        let batch = DialectMiddleware(dialect: BatchDialect(), recorder: recorder)

        let v1 = router.group("v1").add(middleware: bearer)
        addSystemRoutes(open: router.group().add(middleware: open), root: router.group().add(middleware: bearer), v1: v1)
        addKeyRoutes(to: v1)
        addWorkflowRoutes(to: v1)
        addPreviewRoutes(to: v1)
        addRunRoutes(to: v1)
        addLogRoutes(to: v1)
        if let importers { addImporterRoutes(to: v1, importers) }
        if let tasks { addBatchTaskRoutes(to: router.group("api/v1.1").add(middleware: batch), tasks) }
        if let accounts { addLaunchRoutes(to: router.group("v3").add(middleware: launch), accounts: accounts) }
        let signIn = DialectMiddleware(dialect: DashboardDialect(check: check, sessions: sessions, requiresSession: false),
                                       recorder: recorder)
        let dashboard = DialectMiddleware(dialect: DashboardDialect(check: check, sessions: sessions, requiresSession: true),
                                          recorder: recorder)
        addDashboardRoutes(root: router.group().add(middleware: signIn), open: router.group("ui").add(middleware: signIn),
                           pages: router.group("ui").add(middleware: dashboard))
        // Added after every route, this middleware runs only in front of the not-found answer.
        router.add(middleware: UnmatchedMiddleware(bearer: bearer, open: open, launch: launch, batch: batch,
                                                   dashboard: dashboard))
        return router
    }

    /// Every route, with `HEAD` answered wherever `GET` is: the `GET` route's status and headers
    /// (its `Content-Length` too, when known) without the body.
    public func makeResponder() -> some HTTPResponder<Context> {
        HeadAsGetResponder(base: makeRouter().buildResponder())
    }

    /// Runs a command: checks the role, reads and parses the body, and, with an
    /// `Idempotency-Key`, answers a retry with the first answer instead of running it again.
    /// `lenient` bodies (the launch API's) that are not strict JSON are parsed again after
    /// `LenientJSON.normalize`.
    func command(
        _ request: Request,
        _ context: Context,
        _ permission: Permission,
        allowed: Set<String>?,
        lenient: Bool = false,
        kept: (@Sendable (Answer) -> Answer)? = nil,
        _ body: @escaping (BodyFields) async throws -> Answer
    ) async throws -> Answer {
        try context.require(permission)
        let bytes = try await request.bodyBytes()
        var json: JSONValue?
        if !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            if !lenient { try Self.requireJSONContentType(request) }
            do {
                json = lenient ? try LenientJSON.parse(bytes) : try JSONValue(parsing: bytes)
            } catch {
                if let path = error.path {
                    // Valid JSON with a number out of range: named by its path, never rounded.
                    throw APIError.badRequest(error.message, field: path.isEmpty ? "body" : path)
                }
                throw APIError.badRequest("the request body is not valid JSON"
                                          + (lenient ? " (also after removing comments, trailing commas and placeholders)" : "")
                                          + ": \(error.message)", field: "body")
            }
        }
        let run: () async throws -> Answer = {
            do {
                return try await body(try BodyFields(json, allowed: allowed))
            } catch let error as WorkflowError {
                throw APIError(error)
            } catch let error as EventStoreError {
                throw APIError(error)
            }
        }
        guard let key = request.headers[Self.idempotencyKey], let keyId = context.key?.id else { return try await run() }
        // A launch API project is part of the request: the same key and body in another project
        // is another request.
        let fingerprint = IdempotencyCache.fingerprint(method: request.method.rawValue,
                                                       path: request.uri.description + (context.projectId.map { " " + $0 } ?? ""),
                                                       body: bytes)
        return try await idempotency.run(keyId: keyId, idempotencyKey: key, fingerprint: fingerprint, kept: kept, run)
    }

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!

    /// 415 unless a body comes as JSON: `application/json`, a `+json` type, or no Content-Type.
    static func requireJSONContentType(_ request: Request) throws {
        guard let header = request.headers[.contentType], header != "application/json" else { return }
        let type = header.split(separator: ";", maxSplits: 1)[...].first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        guard type == "application/json" || type.hasSuffix("+json") else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type",
                           "the request body must be JSON: send Content-Type: application/json",
                           field: "Content-Type", value: header)
        }
    }
}

extension RunlogAPI {
    func addSystemRoutes(open: RouterGroup<Context>, root: RouterGroup<Context>, v1: RouterGroup<Context>) {
        open.get("healthz") { _, _ in
            let head = try store.head().position
            return Answer(["status": "ok", "head_position": .integer(Int64(head))])
        }
        root.get("metrics") { _, context in
            try context.require(.read)
            return Answer(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                          body: metrics.render(store: store))
        }
        v1.get("quota") { _, context in
            try context.require(.read)
            return Answer(Representation.quota(await engine.quotaStatus()))
        }
    }

    func addKeyRoutes(to router: RouterGroup<Context>) {
        router.get("keys") { _, context in
            try context.require(.admin)
            return Answer(["keys": .array(keys.all.map(Representation.key))])
        }
        router.post("keys") { request, context in
            // A retry with the same Idempotency-Key gets 409: the key's text is never stored.
            try await command(request, context, .admin, allowed: ["role", "name"],
                              kept: Answer.keyAlreadyCreated) { body in
                let made = try await createKey(roleText: try body.requiredString("role"), name: try body.string("name") ?? "",
                                               actor: context.actor)
                var json = Representation.key(keys.key(id: made.id)!)
                json = .object((json.objectValue ?? [:]).merging(["key": .string(made.text)]) { $1 })
                return Answer(json, status: .created, headers: [.location: "/v1/keys/\(made.id)"])
            }
        }
        router.delete("keys/{id}") { request, context in
            try await command(request, context, .admin, allowed: []) { _ in
                Answer(Representation.key(try await revokeKey(try context.parameters.require("id"), actor: context.actor)))
            }
        }
    }

    /// Creates an API key of the role named `roleText` (the API's and the dashboard's command);
    /// answers its id and its text (shown once: only its hash is stored).
    func createKey(roleText: String, name: String, actor: String?) async throws -> (id: String, text: String) {
        guard let role = Role(rawValue: roleText) else {
            throw APIError.invalid(field: "role", value: .string(roleText), rule: "must be one of service, auditor, admin")
        }
        guard name.utf8.count <= 200 else {
            throw APIError.invalid(field: "name", value: .string(name), rule: "must be at most 200 bytes")
        }
        let made = KeyEvent.make(role: role, name: name)
        var event = made.event
        event.metadata = EventMetadata(actor: actor)
        let result = try await store.append(to: KeyEvent.stream, expected: .any, [event])
        for recorded in try store.readAll(from: result.firstPosition, limit: 1) { keys.apply(recorded) }
        return (made.id, made.key)
    }

    /// Revokes key `id` (a revoked key stays revoked); the last live admin key is kept.
    func revokeKey(_ id: String, actor: String?) async throws -> APIKeyRecord {
        guard let key = keys.key(id: id) else { throw APIError.notFound("key \(id) does not exist") }
        if key.revokedAt == nil {
            // The last live admin key stays: without it no one could manage keys over HTTP.
            let version = keys.streamVersion
            if key.role == .admin, keys.otherLiveAdmins(than: id) == 0 {
                throw APIError(.conflict, "last_admin_key",
                               "key \(id) is the last live admin key; create another admin key before revoking it",
                               field: "id", value: id)
            }
            var event = KeyEvent.revoked(id)
            event.metadata = EventMetadata(actor: actor)
            let result: AppendResult
            do {
                result = try await store.append(to: KeyEvent.stream, expected: .exact(version), [event])
            } catch {
                guard error.code == .wrongExpectedVersion else { throw error }
                throw APIError(.conflict, "conflict", "the keys changed while key \(id) was being revoked; retry")
            }
            for recorded in try store.readAll(from: result.firstPosition, limit: 1) { keys.apply(recorded) }
        }
        return keys.key(id: id)!
    }
}

/// Answers `HEAD` with what `GET` answers, minus the body (RFC 9110, 9.3.2); a streamed body is
/// never started.
struct HeadAsGetResponder<Base: HTTPResponder>: HTTPResponder {
    let base: Base

    func respond(to request: Request, context: Base.Context) async throws -> Response {
        guard request.method == .head else { return try await base.respond(to: request, context: context) }
        var head = request.head
        head.method = .get
        var response = try await base.respond(to: Request(head: head, body: request.body), context: context)
        let length = response.headers[.contentLength] ?? response.body.contentLength.map { String($0) }
        // Setting the body resets Content-Length: it goes back on after.
        response.body = ResponseBody { writer in try await writer.finish(nil) }
        if let length {
            response.headers[.contentLength] = length
        } else {
            // A stream of unknown length: nothing frames the empty answer but the end of the connection.
            response.headers[.connection] = "close"
        }
        return response
    }
}
