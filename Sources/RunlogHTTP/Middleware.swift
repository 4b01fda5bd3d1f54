import Access
import HTTPTypes
import EventStore
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Workflows
import Profiles

/// In front of every route: authenticates `Authorization: Bearer KEY` (all routes but the open
/// ones) and applies the per-key rate limit; turns every error into the one JSON error shape;
/// records metrics and writes one log line per request.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = RunlogRequestContext
    let keys: KeyRing
    let limiter: RateLimiter?
    let metrics: ServerMetrics
    let logger: Logger
    static let openPaths: Set<String> = ["/healthz"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        let start = ContinuousClock.now
        var context = context
        var response: Response
        // The batch task API (seed 003) carries its token in the body and answers in its own shape.
        let batchAPI = request.uri.path.hasPrefix(RunlogAPI.batchAPIPrefix)
        do {
            var limits = HTTPFields()
            if request.uri.path.hasPrefix("/v3/") {
                // The launch API (seed 001): `x-api-key` and a project (LaunchAuth.swift).
                context.key = try authenticateLaunch(request)
                context.projectId = try Self.launchProject(request)
                limits = try rateLimit(context.key!)
            } else if !Self.openPaths.contains(request.uri.path) && !batchAPI {
                context.key = try authenticate(request)
                limits = try rateLimit(context.key!)
            }
            response = try await next(request, context)
            response.headers.append(contentsOf: limits)
        } catch let error as TaskAPIError {
            response = (try? error.answer.response(from: request, context: context)) ?? Response(status: .internalServerError)
        } catch {
            let apiError = Self.apiError(error, request: request, logger: logger)
            let answer = batchAPI ? TaskAPIError(apiError).answer : Answer(apiError)
            response = (try? answer.response(from: request, context: context)) ?? Response(status: .internalServerError)
        }
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
        return response
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

extension RequestMiddleware {
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
