import Access
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import RunlogJSON
import ServiceLifecycle
import WorkflowModel
import Workflows

/// The dashboard's routes (`/ui/`), server-rendered pages on the same engine, keys and log as the
/// API. Every action is the API's command with the signed-in key as the actor.
enum DashboardRoutes {
    static let signInPath = "/ui/signin"
    /// Events on one page of the log.
    static let logPage = 50
    /// Events a filtered page of the log examines at most.
    static let logScan = 10_000
    /// The most bytes of a dashboard form (a workflow definition, URL-encoded).
    static let formLimit = 1 << 20
    /// Runs on one page of a workflow's runs.
    static let runPage = 50
    /// The sources a run can come from (`RunCreated.source.kind`).
    static let runSources = ["api", "event", "action", "importer", "job", "workflow", "task"]
    /// The times the runs filter takes, in UTC.
    static let minuteFormat = utcFormat("yyyy-MM-dd'T'HH:mm")
    static let dayFormat = utcFormat("yyyy-MM-dd")

    static func utcFormat(_ format: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter
    }

    /// A run's events shown on its page at most.
    static let runEvents = 200
    /// Jobs on the launch page, and a job's results on its page.
    static let jobsShown = 50
    static let jobResultsShown = 100
    /// Importer runs on the Imports page.
    static let activityRows = 50
    /// Runs an importer run's page links to (the API pages the rest).
    static let createdRunsShown = 100
    /// How often a live page whose counts are read from the read models looks for a change.
    static let liveInterval: Duration = .milliseconds(250)
}

extension RunlogAPI {
    func addDashboardRoutes(root: RouterGroup<Context>, open: RouterGroup<Context>, pages: RouterGroup<Context>) {
        root.get("/") { _, _ in
            Answer(status: .seeOther, headers: [.location: "/ui/"], body: "")
        }
        open.get("signin") { _, _ in
            DashboardPages.signIn(message: nil)
        }
        open.get("assets/dashboard.js") { _, _ in
            Answer(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                   body: DashboardTemplates.script)
        }
        open.get("assets/dashboard.css") { _, _ in
            Answer(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                   body: DashboardTemplates.css)
        }
        open.post("signin") { request, context in
            // Another site's page may not sign a browser in (under the other site's key).
            if let origin = request.headers[.origin], let authority = request.head.authority,
               origin != "http://" + authority, origin != "https://" + authority {
                throw APIError(.forbidden, "cross_origin", "a sign-in must come from this server's own page", field: "Origin",
                               value: origin)
            }
            let form = try await FormFields(request)
            guard let text = form["key"], !text.isEmpty else {
                return DashboardPages.signIn(message: "Enter an API key.", status: .unprocessableContent)
            }
            guard let key = keys.authenticate(text.trimmingCharacters(in: .whitespaces)) else {
                return DashboardPages.signIn(message: "Unknown or revoked API key.", status: .unauthorized)
            }
            // Signing in counts against the key's rate limit, as a request of the API would.
            _ = try KeyCheck(keys: keys, limiter: limiter).rateLimit(key)
            let session = sessions.start(keyId: key.id)
            return Answer(status: .seeOther, headers: [
                .location: "/ui/",
                .setCookie: DashboardDialect.setCookie(session, lifetime: sessions.lifetime, secure: overTLS(request)),
                .cacheControl: "no-store",
            ], body: "")
        }
        pages.post("signout") { request, context in
            _ = try await dashboardForm(request, context)
            if let session = context.session { sessions.end(session.token) }
            return Answer(status: .seeOther, headers: [
                .location: DashboardRoutes.signInPath,
                .setCookie: DashboardDialect.setCookie(nil, lifetime: .zero, secure: overTLS(request)),
            ], body: "")
        }

        pages.get("/") { _, context in
            try context.require(.read)
            let today = await engine.quotaStatus().day
            let (workflows, counts) = await engine.read { state in
                (state.workflows.values.sorted { $0.number < $1.number }, state.runsOnLatestDay)
            }
            let rows = workflows.map { workflow in
                var row = DashboardPages.workflowRow(workflow)
                row["runs_today"] = counts.runs(of: workflow.id, on: today)
                return row
            }
            return DashboardPages.page("Workflows", context, template: "workflows", ["workflows": rows, "empty": rows.isEmpty])
        }
        pages.get("workflows/{id}") { _, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            var data = DashboardPages.workflowPage(workflow)
            if let rollout = workflow.rollout, var shown = data["rollout"] as? [String: Any] {
                let outcomes = try engine.runs.rolloutOutcomes(rollout.id)
                shown["treatment_outcomes"] = DashboardPages.outcomeText(outcomes["treatment"])
                shown["control_outcomes"] = DashboardPages.outcomeText(outcomes["control"])
                data["rollout"] = shown
            }
            return DashboardPages.page(workflow.name, context, template: "workflow", data)
        }

        addDashboardWorkflowRoutes(to: pages)
        addDashboardRunRoutes(to: pages)
        if let importers { addDashboardImportRoutes(to: pages, importers) }
        addDashboardLaunchRoutes(to: pages)

        pages.get("log") { request, context in
            try context.require(.read)
            let head = try store.head()
            let before = try request.queryInt("before", UInt64.self, in: 1...Self.maxPosition)
            let from = before.map { $0 - 1 } ?? head.position
            let type = request.query("type").flatMap { $0.isEmpty ? nil : $0 }
            let prefix = request.query("stream_prefix").flatMap { $0.isEmpty ? nil : $0 }
            let filter = EventFilter(types: type.map { [$0] }, streamPrefix: prefix)
            // With a filter, a page examines at most `logScan` events (a filter matching nothing on a
            // long log would otherwise read all of it): fewer matches say where to search on.
            var events: [RecordedEvent] = []
            var searchedTo: UInt64?
            if from > 0, type == nil, prefix == nil {
                events = try store.readAll(from: from, direction: .backward, filter: filter, limit: DashboardRoutes.logPage)
            } else if from > 0 {
                let window = try store.readAll(from: from, direction: .backward, filter: EventFilter(), limit: DashboardRoutes.logScan)
                for event in window where (type == nil || event.type == type) && (prefix.map { event.stream.hasPrefix($0) } ?? true) {
                    events.append(event)
                    if events.count == DashboardRoutes.logPage { break }
                }
                if events.count < DashboardRoutes.logPage, window.count == DashboardRoutes.logScan, let last = window.last {
                    searchedTo = last.position
                }
            }
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "type", value: type ?? ""), URLQueryItem(name: "stream_prefix", value: prefix ?? "")]
            let filters = query.percentEncodedQuery ?? ""
            var data: [String: Any] = [
                "head_position": head.position, "head_hash": head.hash.hex,
                "events": events.map(DashboardPages.eventRow), "type": type ?? "", "stream_prefix": prefix ?? "",
                "live": "/ui/log/live?from=\(head.position + 1)&" + filters,
            ]
            if events.count == DashboardRoutes.logPage, let last = events.last, last.position > 1 {
                data["older"] = "/ui/log?before=\(last.position)&" + filters
            } else if let searchedTo, searchedTo > 1 {
                data["searched"] = ["from": searchedTo, "to": from]
                data["older"] = "/ui/log?before=\(searchedTo)&" + filters
            }
            if before != nil { data["newest"] = "/ui/log?" + filters }
            return DashboardPages.page("Log", context, template: "log", data)
        }
        // New events as they commit (the log page's "Follow"), with the page's filters.
        pages.get("log/live") { request, context in
            try context.require(.read)
            var from = try request.queryInt("from", UInt64.self, in: 1...Self.maxPosition) ?? (try store.head().position + 1)
            // A browser that reconnects says what it saw last: it goes on after it, repeating nothing.
            if let last = request.headers[Self.lastEventID].flatMap({ UInt64($0.trimmingCharacters(in: .whitespaces)) }),
               last < Self.maxPosition {
                from = last + 1
            }
            let type = request.query("type").flatMap { $0.isEmpty ? nil : $0 }
            let prefix = request.query("stream_prefix").flatMap { $0.isEmpty ? nil : $0 }
            let events = store.subscribe(from: from, filter: EventFilter(types: type.map { [$0] }, streamPrefix: prefix))
                .cancelOnGracefulShutdown()
            let body = ResponseBody { writer in
                for try await event in events {
                    guard DashboardDialect.stillSignedIn(context, sessions, keys) else { break }
                    let row: [String: JSONValue] = [
                        "position": .integer(Int64(event.position)), "time": .string(DashboardPages.time(event.recordedAt)),
                        "stream": .string(event.stream), "type": .string(event.type),
                        "actor": .string(event.metadata.actor ?? ""),
                    ]
                    try await writer.write(ByteBuffer(string: "id: \(event.position)\nevent: log\ndata: \(JSONValue.object(row).jsonText)\n\n"))
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        pages.get("log/verify") { _, context in
            try context.require(.read)
            // It reads the whole log: one verification at a time on this server.
            guard verifying.take() else {
                throw APIError(.tooManyRequests, "busy", "a verification of the log is already running on this server; "
                               + "try again when it has finished", headers: [.retryAfter: "5"])
            }
            defer { verifying.release() }
            let report = try store.verify(progress: nil)
            var data: [String: Any] = [:]
            switch report {
            case .intact(let count, let head): data["intact"] = ["count": count, "head_hash": head.hex]
            case .broken(let position, let reason): data["broken"] = ["position": position, "reason": reason]
            }
            return DashboardPages.page("Verify the log", context, template: "verify", data)
        }

        pages.get("keys") { _, context in
            try context.require(.admin)
            return DashboardPages.page("API keys and limits", context, template: "keys",
                                       await keysPage(created: nil))
        }
        pages.post("keys") { request, context in
            try context.require(.admin)
            let form = try await dashboardForm(request, context)
            let made = try await createKey(roleText: form["role"] ?? "", name: form["name"] ?? "", actor: context.actor)
            return DashboardPages.page("API keys and limits", context, template: "keys",
                                       await keysPage(created: (made.text, keys.key(id: made.id))))
        }
        pages.post("keys/{id}/revoke") { request, context in
            try context.require(.admin)
            _ = try await dashboardForm(request, context)
            _ = try await revokeKey(try context.parameters.require("id"), actor: context.actor)
            return Answer(status: .seeOther, headers: [.location: "/ui/keys"], body: "")
        }
    }

    /// The keys page: every key, the one just made, the daily run quota and the rate limit.
    func keysPage(created: (text: String, key: APIKeyRecord?)?) async -> [String: Any] {
        var data = DashboardPages.keysPage(keys.all, created: created)
        let quota = await engine.quotaStatus()
        data["quota_day"] = quota.day
        data["quota_used"] = quota.used
        data["quota_limit"] = quota.limit.map(String.init) ?? "no limit"
        data["quota_resets"] = DashboardPages.time(quota.resetsAt)
        data["rate_limit"] = limiter.map { "\($0.perMinute) requests per minute per key" } ?? "no limit"
        return data
    }

    /// The body of a dashboard form, after checking its CSRF token against the session's (403
    /// when it does not match: a form from another page, or replayed after signing out and in).
    func dashboardForm(_ request: Request, _ context: Context) async throws -> FormFields {
        let form = try await FormFields(request)
        guard let session = context.session, let token = form["csrf"], DashboardSessions.same(token, session.csrf) else {
            throw APIError(.forbidden, "csrf", "the form's CSRF token does not match this session: reload the page and try again",
                           field: "csrf")
        }
        return form
    }

    /// Whether the session cookie is `Secure`: always with `secureCookies`, else when the browser
    /// reached the server over TLS (directly, or through a proxy that says so).
    func overTLS(_ request: Request) -> Bool {
        secureCookies || request.head.scheme == "https"
            || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (the last of a repeated name wins).
struct FormFields {
    private var values: [String: String] = [:]

    init(_ request: Request) async throws {
        let tooLarge = APIError(.contentTooLarge, "body_too_large",
                                "the form is larger than the limit of \(DashboardRoutes.formLimit) bytes", field: "body")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > DashboardRoutes.formLimit { throw tooLarge }
        let bytes: [UInt8]
        do {
            bytes = Array(try await request.body.collect(upTo: DashboardRoutes.formLimit).readableBytesView)
        } catch {
            throw tooLarge
        }
        try self.init(bytes)
    }

    init(_ bytes: [UInt8]) throws {
        for pair in bytes.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]), let value = Self.decode(parts.count > 1 ? parts[1] : []) else {
                throw APIError.badRequest("the form is not valid application/x-www-form-urlencoded", field: "body")
            }
            values[name] = value
        }
    }

    subscript(_ name: String) -> String? { values[name] }

    private static func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        let text = String(decoding: bytes.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
        return text.removingPercentEncoding
    }
}
