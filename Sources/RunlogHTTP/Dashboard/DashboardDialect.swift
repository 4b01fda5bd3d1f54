import Access
import HTTPTypes
import Hummingbird
import Logging

/// The dashboard's pages (`/ui/`): signed in with a session cookie (`DashboardSessions`), the
/// session's API key acting as on the API (its role, its rate limit, the actor of the events);
/// errors answered as pages, and a request without a live session sent to the sign-in page.
struct DashboardDialect: Dialect {
    let check: KeyCheck
    let sessions: DashboardSessions
    /// False for the sign-in page itself.
    let requiresSession: Bool

    static let cookieName = "runlog_session"

    /// Whether the session that opened a live stream still holds (not signed out, expired or its
    /// key revoked): each stream checks before it sends anything.
    static func stillSignedIn(_ context: RunlogRequestContext, _ sessions: DashboardSessions, _ keys: KeyRing) -> Bool {
        guard let session = context.session, sessions.session(session.token) != nil else { return false }
        return keys.key(id: session.keyId)?.revokedAt == nil
    }

    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields {
        guard requiresSession else { return [:] }
        guard let token = Self.cookie(request), let session = sessions.session(token) else { throw SignInRequired() }
        guard let key = check.keys.key(id: session.keyId), key.revokedAt == nil else {
            sessions.end(token)
            throw SignInRequired()
        }
        context.key = key
        context.session = session
        return try check.rateLimit(key)
    }

    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer {
        if error is SignInRequired {
            return Answer(status: .seeOther, headers: [.location: DashboardRoutes.signInPath, .cacheControl: "no-store"],
                          body: "")
        }
        let apiError = RequestRecorder.apiError(error, request: request, logger: logger)
        return DashboardPages.errorPage(apiError)
    }

    /// The session token from the request's `Cookie` header.
    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == cookieName else { continue }
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// The `Set-Cookie` value that starts `session` (or, with nil, ends the browser's).
    static func setCookie(_ session: DashboardSessions.Session?, lifetime: Duration, secure: Bool) -> String {
        let value = session?.token ?? ""
        let maxAge = session == nil ? 0 : lifetime.components.seconds
        return "\(cookieName)=\(value); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}

/// A dashboard request without a live session.
struct SignInRequired: Error {}
