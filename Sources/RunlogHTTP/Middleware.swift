import Access
import HTTPTypes
import EventLog
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import WorkflowModel
import Workflows
import Profiles

/// One API dialect: how a request on its routes authenticates (and is rate limited) and in which
/// shape its errors are answered. Each dialect's routes are a route group with a
/// `DialectMiddleware` of their own (RunlogAPI.makeRouter).
protocol Dialect: Sendable {
    /// Authenticates the request into `context` (key, project) and returns the RateLimit headers
    /// for the answer; throws the refusal.
    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields
    /// The answer to an error met on one of the dialect's routes.
    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer
}

/// `/v1` and the root routes (`/metrics`): `Authorization: Bearer KEY`, `{"error": {...}}`.
struct BearerDialect: Dialect {
    let check: KeyCheck

    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields {
        let key = try check.authenticate(request)
        context.key = key
        return try check.rateLimit(key)
    }

    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer {
        Answer(RequestRecorder.apiError(error, request: request, logger: logger))
    }
}

/// The open routes (`/healthz`): no key, `/v1`'s error shape.
struct OpenDialect: Dialect {
    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields { [:] }

    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer {
        Answer(RequestRecorder.apiError(error, request: request, logger: logger))
    }
}

/// The batch task API (`/api/v1.1/`, seed 003): the token comes in the body (its routes check it,
/// BatchTaskRoutes.swift) and every error is answered in that API's shape.
struct BatchDialect: Dialect {
    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields { [:] }

    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer {
        TaskAPIError(RequestRecorder.apiError(error, request: request, logger: logger)).answer
    }
}

/// The middleware of one dialect's route group: admits the request as the dialect does, turns
/// every error into the dialect's shape, and has the `RequestRecorder` count and log it.
struct DialectMiddleware<D: Dialect>: RouterMiddleware {
    typealias Context = RunlogRequestContext
    let dialect: D
    let recorder: RequestRecorder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        let start = ContinuousClock.now
        var context = context
        var response: Response
        do {
            let limits = try dialect.admit(request, &context)
            response = try await next(request, context)
            response.headers.append(contentsOf: limits)
        } catch let error as TaskAPIError {
            response = (try? error.answer.response(from: request, context: context)) ?? Response(status: .internalServerError)
        } catch {
            let answer = dialect.answer(error, to: request, logger: recorder.logger)
            response = (try? answer.response(from: request, context: context)) ?? Response(status: .internalServerError)
        }
        recorder.record(request, response, context: context, since: start)
        return response
    }
}

/// In front of the requests that match no route (a path or a method no route has): the dialect
/// the path belongs to admits the request first and answers the 404 in its shape, as it would
/// on its own routes.
struct UnmatchedMiddleware: RouterMiddleware {
    typealias Context = RunlogRequestContext
    let bearer: DialectMiddleware<BearerDialect>
    let open: DialectMiddleware<OpenDialect>
    let launch: DialectMiddleware<LaunchDialect>
    let batch: DialectMiddleware<BatchDialect>
    let dashboard: DialectMiddleware<DashboardDialect>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        let path = request.uri.path
        if path.hasPrefix("/v3/") { return await launch.handle(request, context: context, next: next) }
        if path.hasPrefix(RunlogAPI.batchAPIPrefix) { return await batch.handle(request, context: context, next: next) }
        if path == "/healthz" { return await open.handle(request, context: context, next: next) }
        if path == "/ui" || path.hasPrefix("/ui/") { return await dashboard.handle(request, context: context, next: next) }
        return await bearer.handle(request, context: context, next: next)
    }
}

/// What every request shares, whatever its dialect: the metrics and one log line.
struct RequestRecorder: Sendable {
    let metrics: ServerMetrics
    let logger: Logger

    func record(_ request: Request, _ response: Response, context: RunlogRequestContext, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "unmatched"
        metrics.record(method: request.method.rawValue, route: route, status: response.status.code, duration: elapsed)
        if logger.logLevel <= .info {
            let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
            let hundredths = (micros + 5) / 10
            let millis = "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100)"
            logger.info("\(request.method) \(request.uri.path) \(response.status.code)", metadata: [
                "route": .string(route),
                "ms": .string(millis),
                "key": .string(context.key?.id ?? "-"),
            ])
        }
    }

    static func apiError(_ error: any Error, request: Request, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as WorkflowError:
            return APIError(error)
        case let error as EventStoreError:
            return APIError(error)
        case is NIOTooManyBytesError:
            return APIError.bodyTooLarge
        case let error as HTTPParserError:
            return APIError.malformedRequest(error)
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return APIError.notFound("no route \(request.method) \(request.uri.path)")
            case .contentTooLarge:
                return APIError.bodyTooLarge
            case .methodNotAllowed:
                return APIError(.methodNotAllowed, "method_not_allowed",
                                "\(request.method) is not allowed on \(request.uri.path)")
            default:
                return APIError(error.status, "http_error", error.body ?? error.status.reasonPhrase)
            }
        default:
            logger.error("unexpected error", metadata: ["error": .string("\(error)"),
                                                        "path": .string(request.uri.path)])
            return APIError(.internalServerError, "internal", "internal error; the command may not have been recorded")
        }
    }
}

extension APIError {
    static let bodyTooLarge = APIError(
        .contentTooLarge, "body_too_large",
        "the request body is larger than the limit of \(RunlogRequestContext.bodyLimit) bytes (10 MiB)",
        field: "body", value: nil
    )
}

/// The Runlog API keys and the per-key rate limit, shared by the dialects that authenticate with a key
/// in a header.
struct KeyCheck: Sendable {
    let keys: KeyRing
    let limiter: RateLimiter?

    func authenticate(_ request: Request) throws -> APIKeyRecord {
        guard let header = request.headers[.authorization] else {
            throw Self.unauthorized("no API key: send Authorization: Bearer KEY")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw Self.unauthorized("the Authorization header must be Bearer KEY")
        }
        var text = parts[1]
        while text.last == " " || text.last == "\t" { text.removeLast() }
        guard let key = keys.authenticate(String(text)) else {
            throw Self.unauthorized("unknown or revoked API key")
        }
        return key
    }

    /// The RateLimit headers for the answer, or 429 when the key's budget is spent.
    func rateLimit(_ key: APIKeyRecord) throws -> HTTPFields {
        guard let limiter else { return [:] }
        let decision = limiter.take(key.id)
        guard decision.allowed else {
            var error = APIError(.tooManyRequests, "rate_limited",
                                 "key \(key.id) is over its limit of \(decision.limit) requests per minute; "
                                 + "retry in \(decision.resetSeconds) s")
            error.headers = decision.headers
            error.headers[.retryAfter] = String(decision.resetSeconds)
            throw error
        }
        return decision.headers
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, "unauthorized", message, headers: [.wwwAuthenticate: "Bearer"])
    }
}

/// A token bucket per key: `perMinute` requests, refilled continuously.
final class RateLimiter: Sendable {
    let perMinute: Int
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }
    private let buckets = Mutex([String: Bucket]())

    init(perMinute: Int) {
        self.perMinute = perMinute
    }

    struct Decision {
        var allowed: Bool
        var limit: Int
        var remaining: Int
        var resetSeconds: Int

        var headers: HTTPFields {
            [HTTPField.Name("RateLimit-Limit")!: String(limit),
             HTTPField.Name("RateLimit-Remaining")!: String(remaining),
             HTTPField.Name("RateLimit-Reset")!: String(resetSeconds)]
        }
    }

    func take(_ id: String) -> Decision {
        let now = ContinuousClock.now
        let capacity = Double(perMinute)
        let perSecond = capacity / 60
        return buckets.withLock { buckets in
            var bucket = buckets[id] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[id] = bucket
            let reset = allowed ? (capacity - bucket.tokens) / perSecond : (1 - bucket.tokens) / perSecond
            return Decision(allowed: allowed, limit: perMinute, remaining: Int(bucket.tokens),
                            resetSeconds: max(allowed ? 0 : 1, Int(reset.rounded(.up))))
        }
    }
}
