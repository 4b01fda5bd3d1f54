import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import EventLog
import RunlogJSON
import Testing
@testable import RunlogHTTP

/// The dashboard over HTTP (the browser tests drive it in Chromium): sign-in, the session
/// cookie, CSRF, roles, sign-out.
@Suite("dashboard sessions and pages")
struct DashboardTests {
    /// A response's status, headers and body text.
    typealias Page = (status: HTTPResponse.Status, headers: HTTPFields, body: String)

    static func request(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, cookie: String? = nil,
                        form: [(String, String)]? = nil) async throws -> Page {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = "\(DashboardDialect.cookieName)=\(cookie)" }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            body = ByteBuffer(string: form.map { name, value in
                "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
            }.joined(separator: "&"))
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            (response.status, response.headers, String(buffer: response.body))
        }
    }

    /// Signs in with `key`; the session cookie and the CSRF token of the first page.
    static func signIn(_ client: any TestClientProtocol, _ key: String) async throws -> (cookie: String, csrf: String) {
        let answer = try await request(client, .post, "/ui/signin", form: [("key", key)])
        #expect(answer.status == .seeOther && answer.headers[.location] == "/ui/")
        let setCookie = try #require(answer.headers[.setCookie])
        let cookie = try #require(setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init))
        let page = try await request(client, .get, "/ui/", cookie: cookie)
        #expect(page.status == .ok)
        let csrf = try #require(page.body.firstMatch(of: /name="csrf" value="([0-9a-f]{64})"/)?.1)
        return (cookie, String(csrf))
    }

    @Test("signing in sets an HttpOnly, SameSite=Strict session cookie; pages without it go to the sign-in page; a wrong key is refused")
    func signIn() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let root = try await Self.request(client, .get, "/")
                #expect(root.status == .seeOther && root.headers[.location] == "/ui/")
                for path in ["/ui/", "/ui/log", "/ui/keys", "/ui/workflows/none", "/ui/nothing-here"] {
                    let page = try await Self.request(client, .get, path)
                    #expect(page.status == .seeOther && page.headers[.location] == "/ui/signin", "\(path)")
                }
                let form = try await Self.request(client, .get, "/ui/signin")
                #expect(form.status == .ok && form.body.contains("name=\"key\"") && !form.body.contains("id=\"message\""))
                #expect(form.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
                let wrong = try await Self.request(client, .post, "/ui/signin", form: [("key", "rlk_not_a_key")])
                #expect(wrong.status == .unauthorized && wrong.body.contains("Unknown or revoked API key"))
                #expect(wrong.headers[.setCookie] == nil)

                let answer = try await Self.request(client, .post, "/ui/signin", form: [("key", server.auditor)])
                let cookie = try #require(answer.headers[.setCookie])
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui")
                        && cookie.contains("Max-Age=28800") && !cookie.contains("Secure"))
                let proxied = try await client.execute(uri: "/ui/signin", method: .post, headers: [
                    .contentType: "application/x-www-form-urlencoded", HTTPField.Name("X-Forwarded-Proto")!: "https",
                ], body: ByteBuffer(string: "key=\(server.auditor)")) { $0.headers[.setCookie] }
                #expect(proxied?.contains("; Secure") == true)
                let forged = try await Self.request(client, .get, "/ui/", cookie: String(repeating: "0", count: 64))
                #expect(forged.status == .seeOther)
            }
        }
    }

    @Test("an auditor sees no write controls and a forged write gets 403; an admin's form without the session's CSRF token gets 403; signing out ends the session")
    func rolesCSRFAndSignOut() async throws {
        try await TestServer.with { server in
            _ = try await server.engine.createWorkflow(name: "Refunds <b>", actor: nil)
            try await server.test { client in
                let auditor = try await Self.signIn(client, server.auditor)
                let list = try await Self.request(client, .get, "/ui/", cookie: auditor.cookie)
                #expect(list.body.contains("Refunds &lt;b&gt;") && !list.body.contains("Refunds <b>"))
                #expect(!list.body.contains("/ui/keys"), "an auditor has no Keys page")
                let missing = try await Self.request(client, .get, "/ui/nothing-here", cookie: auditor.cookie)
                #expect(missing.status == .notFound && missing.headers[.contentType]?.hasPrefix("text/html") == true
                        && missing.body.contains("no route GET /ui/nothing-here"))
                let keysPage = try await Self.request(client, .get, "/ui/keys", cookie: auditor.cookie)
                #expect(keysPage.status == .forbidden && keysPage.body.contains("admin only"))
                let forged = try await Self.request(client, .post, "/ui/keys", cookie: auditor.cookie,
                                                    form: [("csrf", auditor.csrf), ("role", "admin"), ("name", "forged")])
                #expect(forged.status == .forbidden)
                #expect(!server.api.keys.all.contains { $0.name == "forged" })

                let admin = try await Self.signIn(client, server.admin)
                let keys = try await Self.request(client, .get, "/ui/keys", cookie: admin.cookie)
                #expect(keys.status == .ok && keys.body.contains("Revoke") && keys.body.contains("id=\"create-key\""))
                #expect(keys.body.contains("Runs today") && keys.body.contains("no limit"))
                let noToken = try await Self.request(client, .post, "/ui/keys", cookie: admin.cookie,
                                                     form: [("role", "service"), ("name", "no token")])
                #expect(noToken.status == .forbidden && noToken.body.contains("CSRF"))
                let otherToken = try await Self.request(client, .post, "/ui/keys", cookie: admin.cookie,
                                                        form: [("csrf", auditor.csrf), ("role", "service"), ("name", "other")])
                #expect(otherToken.status == .forbidden)
                let badRole = try await Self.request(client, .post, "/ui/keys", cookie: admin.cookie,
                                                     form: [("csrf", admin.csrf), ("role", "root"), ("name", "x")])
                #expect(badRole.status == .unprocessableContent && badRole.body.contains("must be one of service, auditor, admin"))
                let made = try await Self.request(client, .post, "/ui/keys", cookie: admin.cookie,
                                                  form: [("csrf", admin.csrf), ("role", "service"), ("name", "from the dashboard")])
                #expect(made.status == .ok)
                let text = try #require(made.body.firstMatch(of: /id="new-key">(rlk_[^<]+)</)?.1)
                let created = try #require(server.api.keys.authenticate(String(text)))
                #expect(created.role == .service && created.name == "from the dashboard" && created.createdBy == server.api.keys.all
                    .first { $0.name == "test admin" }?.id)
                #expect(server.api.keys.all.filter { $0.name == "no token" || $0.name == "other" || $0.name == "x" }.isEmpty)

                let out = try await Self.request(client, .post, "/ui/signout", cookie: admin.cookie, form: [("csrf", admin.csrf)])
                #expect(out.status == .seeOther && out.headers[.setCookie]?.contains("Max-Age=0") == true)
                let after = try await Self.request(client, .get, "/ui/keys", cookie: admin.cookie)
                #expect(after.status == .seeOther && after.headers[.location] == "/ui/signin")
                let replayed = try await Self.request(client, .post, "/ui/keys", cookie: admin.cookie,
                                                      form: [("csrf", admin.csrf), ("role", "service"), ("name", "replayed")])
                #expect(replayed.status == .seeOther && !server.api.keys.all.contains { $0.name == "replayed" })
            }
        }
    }

    @Test("workflow forms: each needs the session's CSRF token and the role; bad input gets 4xx naming the field and changes nothing; a form made before another change gets 412")
    func workflowForms() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let service = try await Self.signIn(client, server.service)
                let made = try await Self.request(client, .post, "/ui/workflows", cookie: service.cookie,
                                                  form: [("csrf", service.csrf), ("name", "Refunds")])
                let location = try #require(made.headers[.location])
                #expect(made.status == .seeOther && location.hasPrefix("/ui/workflows/wf_"))
                let id = String(location.dropFirst("/ui/workflows/".count))
                let empty = try await Self.request(client, .post, "/ui/workflows", cookie: service.cookie,
                                                   form: [("csrf", service.csrf), ("name", " ")])
                #expect(empty.status == .unprocessableContent && empty.body.contains("name is required"))

                let definition = DashboardPages.pretty(DashboardPages.starterDefinition)
                let notJSON = try await Self.request(client, .post, "/ui/workflows/\(id)/draft", cookie: service.cookie,
                                                     form: [("csrf", service.csrf), ("definition", "{\"trigger\": ")])
                #expect(notJSON.status == .unprocessableContent && notJSON.body.contains("definition must be JSON"))
                let badRule = try await Self.request(client, .post, "/ui/workflows/\(id)/draft", cookie: service.cookie,
                                                     form: [("csrf", service.csrf), ("definition", #"{"trigger": {"kind": "telepathy"}}"#)])
                #expect(badRule.status == .unprocessableContent && badRule.body.contains("trigger"))
                let noToken = try await Self.request(client, .post, "/ui/workflows/\(id)/draft", cookie: service.cookie,
                                                     form: [("definition", definition)])
                #expect(noToken.status == .forbidden)
                #expect(await server.engine.read { $0.workflows[id]?.draft } == nil, "nothing was saved")
                let saved = try await Self.request(client, .post, "/ui/workflows/\(id)/draft", cookie: service.cookie,
                                                   form: [("csrf", service.csrf), ("definition", definition), ("draft_version", "0")])
                #expect(saved.status == .seeOther)
                let stale = try await Self.request(client, .post, "/ui/workflows/\(id)/draft", cookie: service.cookie,
                                                   form: [("csrf", service.csrf), ("definition", definition), ("draft_version", "0")])
                #expect(stale.status == .preconditionFailed)

                let version = await server.engine.read { $0.workflows[id]!.streamVersion }
                let published = try await Self.request(client, .post, "/ui/workflows/\(id)/publish", cookie: service.cookie,
                                                       form: [("csrf", service.csrf), ("version", "\(version)"),
                                                              ("description", "first"), ("activate", "on")])
                #expect(published.status == .seeOther)
                let page = try await Self.request(client, .get, "/ui/workflows/\(id)", cookie: service.cookie)
                #expect(page.body.contains("Active (v1)") && page.body.contains("<p class=\"description\">first</p>"))
                #expect(!page.body.contains("Revert to v1"), "revert is for admins")
                let oldForm = try await Self.request(client, .post, "/ui/workflows/\(id)/versions/1/description",
                                                     cookie: service.cookie,
                                                     form: [("csrf", service.csrf), ("version", "\(version)"), ("description", "x")])
                #expect(oldForm.status == .preconditionFailed)
                let revert = try await Self.request(client, .post, "/ui/workflows/\(id)/revert", cookie: service.cookie,
                                                    form: [("csrf", service.csrf), ("to", "1")])
                #expect(revert.status == .forbidden)
                let badPercentage = try await Self.request(client, .post, "/ui/workflows/\(id)/rollout", cookie: service.cookie,
                                                           form: [("csrf", service.csrf), ("rollout_version", "1"),
                                                                  ("percentage", "lots")])
                #expect(badPercentage.status == .unprocessableContent && badPercentage.body.contains("percentage must be a number"))
                let badDiff = try await Self.request(client, .get, "/ui/workflows/\(id)/diff?from=1&to=9", cookie: service.cookie)
                #expect(badDiff.status == .badRequest)
                #expect(await server.engine.read { $0.workflows[id]!.latestVersion } == 1)

                let auditor = try await Self.signIn(client, server.auditor)
                let readOnly = try await Self.request(client, .get, "/ui/workflows/\(id)", cookie: auditor.cookie)
                #expect(readOnly.status == .ok && !readOnly.body.contains("<form method=\"post\" action=\"/ui/workflows"))
                let forged = try await Self.request(client, .post, "/ui/workflows/\(id)/versions/1/activate", cookie: auditor.cookie,
                                                    form: [("csrf", auditor.csrf)])
                #expect(forged.status == .forbidden)
            }
        }
    }

    @Test("an upload needs the session's CSRF token (header or query); without, nothing is stored; unnamed, it is named by its time")
    func uploadCSRF() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let service = try await Self.signIn(client, server.service)
                let csv = ByteBuffer(string: "email,amount\na@example.com,1\n")
                func upload(_ query: String, token: String?) async throws -> HTTPResponse.Status {
                    var headers: HTTPFields = [.cookie: "\(DashboardDialect.cookieName)=\(service.cookie)", .contentType: "text/csv"]
                    if let token { headers[HTTPField.Name("X-CSRF-Token")!] = token }
                    return try await client.execute(uri: "/ui/data-sources/csv?" + query, method: .post, headers: headers,
                                                    body: csv) { $0.status }
                }
                #expect(try await upload("name=a", token: nil) == .forbidden)
                #expect(try await upload("name=a", token: String(repeating: "0", count: 64)) == .forbidden)
                #expect(await server.importers.snapshot.dataSources.isEmpty)
                #expect(try await upload("name=header", token: service.csrf) == .seeOther)
                #expect(try await upload("name=query&csrf=\(service.csrf)", token: nil) == .seeOther)
                #expect(try await upload("name=", token: service.csrf) == .seeOther)
                let names = await server.importers.snapshot.dataSources.values.map(\.name).sorted()
                #expect(names.count == 3 && names[0] == "header" && names[1] == "query" && names[2].hasPrefix("upload 20"))
                let page = try await Self.request(client, .get, "/ui/imports", cookie: service.cookie)
                #expect(page.body.contains("email, amount"))
            }
        }
    }

    @Test("jobs and tasks: a job with its status, counts and results; accounts with their secrets masked; a task looked up by id")
    func launchPage() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let made = try await client.launch(.post, "/v3/integrations/crm/accounts", key: server.service,
                                                   json: ["account": ["name": "crm main", "username": "ops",
                                                                      "api_key": "key-SECRET-1", "cookies": ["sid": "cookie-SECRET"]]])
                #expect(made.status == .created || made.status == .ok, "\(made.json)")
                let workflow = try await APITests.activeWorkflow(client, server.service)
                let scheduled = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "job_name": "Spring outreach",
                    "inputs": [["email": "a@example.com"], ["email": "b@example.com"]],
                ])
                let job = try #require(scheduled.json["job_uid"]?.stringValue, "\(scheduled.json)")
                let auditor = try await Self.signIn(client, server.auditor)
                let page = try await Self.request(client, .get, "/ui/launch", cookie: auditor.cookie)
                #expect(page.status == .ok && page.body.contains("Spring outreach") && page.body.contains("crm main"))
                #expect(page.body.contains("API key ••••") && page.body.contains("cookies sid ••••"))
                #expect(!page.body.contains("SECRET"), "no secret reaches the page")
                var jobPage = try await Self.request(client, .get, "/ui/jobs/\(job)", cookie: auditor.cookie)
                for _ in 0..<100 where !jobPage.body.contains("2 completed") {
                    try await Task.sleep(for: .milliseconds(50))
                    jobPage = try await Self.request(client, .get, "/ui/jobs/\(job)", cookie: auditor.cookie)
                }
                #expect(jobPage.status == .ok && jobPage.body.contains("2 runs, 2 completed"))
                #expect(jobPage.body.contains("a@example.com") && jobPage.body.contains("b@example.com"))
                let missing = try await Self.request(client, .get, "/ui/jobs/job_nope", cookie: auditor.cookie)
                #expect(missing.status == .notFound)
                let task = try await Self.request(client, .get, "/ui/tasks?task_id=nope", cookie: auditor.cookie)
                #expect(task.status == .notFound && task.body.contains("no task has the id nope"))
                let empty = try await Self.request(client, .get, "/ui/tasks?task_id=", cookie: auditor.cookie)
                #expect(empty.status == .unprocessableContent)
            }
        }
    }

    @Test("sign-in from another site's page is refused; one key signing in again and again ends only its own oldest sessions")
    func signInLimits() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let forged = try await client.execute(uri: "/ui/signin", method: .post, headers: [
                    .contentType: "application/x-www-form-urlencoded", .origin: "https://elsewhere.example",
                ], body: ByteBuffer(string: "key=\(server.auditor)")) { ($0.status, $0.headers[.setCookie]) }
                #expect(forged.0 == .forbidden && forged.1 == nil)
                let admin = try await Self.signIn(client, server.admin)
                let first = try await Self.signIn(client, server.auditor)
                for _ in 0..<server.api.sessions.perKey {
                    _ = try await Self.request(client, .post, "/ui/signin", form: [("key", server.auditor)])
                }
                #expect(try await Self.request(client, .get, "/ui/", cookie: first.cookie).status == .seeOther)
                #expect(try await Self.request(client, .get, "/ui/", cookie: admin.cookie).status == .ok)
                #expect(server.api.sessions.count == server.api.sessions.perKey + 1)
            }
        }
    }

    @Test("a filtered page of the log examines a bounded window and says where to search on")
    func boundedLogFilter() async throws {
        try await TestServer.with { server in
            for start in stride(from: 0, to: 10_100, by: 1_000) {
                _ = try await server.store.append(to: "filler", (start..<min(start + 1_000, 10_100)).map { n in
                    NewEvent(type: "filler.added", json: "{\"n\":\(n)}")
                })
            }
            try await server.test { client in
                let auditor = try await Self.signIn(client, server.auditor)
                let page = try await Self.request(client, .get, "/ui/log?type=nothing.matches", cookie: auditor.cookie)
                #expect(page.status == .ok && page.body.contains("id=\"searched\""))
                let head = try server.store.head().position
                #expect(page.body.contains("Searched positions \(head - 9_999) to \(head)"))
                let keys = try await Self.request(client, .get, "/ui/log?type=apikey.created.v1", cookie: auditor.cookie)
                #expect(!keys.body.contains("apikey.created.v1</td>"), "the key events are older than the window")
                let older = try #require(keys.body.firstMatch(of: /href="(\/ui\/log\?before=\d+[^"]*)" id="older"/)?.1)
                let next = try await Self.request(client, .get, older.replacingOccurrences(of: "&amp;", with: "&"),
                                                  cookie: auditor.cookie)
                #expect(next.body.contains("apikey.created.v1</td>"))
            }
        }
    }

    @Test("runs filtered by source and time; each workflow's runs today on the list")
    func runFiltersAndRunsToday() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service)
                let other = try await APITests.activeWorkflow(client, server.service)
                for n in 0..<3 {
                    let started = try await client.call(.post, "/v1/workflows/\(workflow)/runs", key: server.service,
                                                        json: ["parameters": ["email": .string("r\(n)@example.com")]])
                    #expect(started.status == .created, "\(started.json)")
                }
                _ = try await client.call(.post, "/v1/workflows/\(other)/runs", key: server.service,
                                          json: ["parameters": ["email": "o@example.com"]])
                let auditor = try await Self.signIn(client, server.auditor)
                let list = try await Self.request(client, .get, "/ui/", cookie: auditor.cookie)
                let today = list.body.matches(of: /<td class="runs-today">(\d+)<\/td>/).map { Int($0.1) ?? -1 }
                #expect(today == [3, 1])
                func rows(_ query: String) async throws -> Int {
                    let page = try await Self.request(client, .get, "/ui/workflows/\(workflow)/runs?" + query, cookie: auditor.cookie)
                    #expect(page.status == .ok, "\(query): \(page.status)")
                    return page.body.matches(of: /<a href="\/ui\/runs\//).count
                }
                #expect(try await rows("source=api") == 3)
                #expect(try await rows("source=importer") == 0)
                #expect(try await rows("since=2000-01-01") == 3)
                #expect(try await rows("since=2999-01-01T00:00") == 0)
                let bad = try await Self.request(client, .get, "/ui/workflows/\(workflow)/runs?since=yesterday", cookie: auditor.cookie)
                #expect(bad.status == .badRequest && bad.body.contains("since must be a UTC time"))
                let badSource = try await Self.request(client, .get, "/ui/workflows/\(workflow)/runs?source=fax", cookie: auditor.cookie)
                #expect(badSource.status == .badRequest)
            }
        }
    }

    @Test("a rollout's arms count their ended runs by outcome in the run tables, and the workflow page shows the shares")
    func rolloutOutcomes() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let workflow = try await APITests.activeWorkflow(client, server.service)
                var declining = apiDefinition
                declining = try JSONValue(parsing: declining.jsonText.replacingOccurrences(of: "\"approve\"", with: "\"decline\""))
                _ = try await client.call(.put, "/v1/workflows/\(workflow)/draft", key: server.service, json: declining)
                let staged = try await client.call(.post, "/v1/workflows/\(workflow)/versions", key: server.service,
                                                   json: ["rollout_percentage": 50])
                #expect(staged.status == .created, "\(staged.json)")
                for n in 0..<20 {
                    _ = try await client.call(.post, "/v1/workflows/\(workflow)/runs", key: server.service,
                                              json: ["parameters": ["email": .string("r\(n)@example.com")]])
                }
                let rollout = try #require(await server.engine.read { $0.workflows[workflow]?.rollout })
                var outcomes: [String: [String: Int]] = [:]
                for _ in 0..<200 {
                    outcomes = try server.engine.runs.rolloutOutcomes(rollout.id)
                    if outcomes.values.flatMap(\.values).reduce(0, +) == 20 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let arms = try #require(await server.engine.read { $0.workflows[workflow]?.rollout })
                #expect(outcomes == ["treatment": ["declined": arms.treatmentRuns], "control": ["approved": arms.controlRuns]],
                        "\(outcomes)")
                let auditor = try await Self.signIn(client, server.auditor)
                let page = try await Self.request(client, .get, "/ui/workflows/\(workflow)", cookie: auditor.cookie)
                #expect(page.body.contains("declined 100% (\(arms.treatmentRuns))") && page.body.contains("approved 100% (\(arms.controlRuns))"))
            }
        }
    }

    @Test("the log page shows the head hash and pages backward; verify reports the chain; a revoked key's session ends")
    func logAndRevokedKey() async throws {
        try await TestServer.with { server in
            for n in 0..<60 { _ = try await server.engine.createWorkflow(name: "w\(n)", actor: nil) }
            try await server.test { client in
                let auditor = try await Self.signIn(client, server.auditor)
                let head = try server.store.head()
                let log = try await Self.request(client, .get, "/ui/log", cookie: auditor.cookie)
                #expect(log.status == .ok && log.body.contains(head.hash.hex))
                #expect(log.body.contains("<td>\(head.position)</td>"))
                let older = try #require(log.body.firstMatch(of: /href="(\/ui\/log\?before=\d+[^"]*)" id="older"/)?.1)
                let second = try await Self.request(client, .get, older.replacingOccurrences(of: "&amp;", with: "&"),
                                                   cookie: auditor.cookie)
                #expect(second.status == .ok && second.body.contains("<td>1</td>"))
                let bad = try await Self.request(client, .get, "/ui/log?before=zero", cookie: auditor.cookie)
                #expect(bad.status == .badRequest && bad.body.contains("before"))
                let filtered = try await Self.request(client, .get, "/ui/log?type=apikey.created.v1", cookie: auditor.cookie)
                #expect(filtered.status == .ok && filtered.body.contains("apikey.created.v1")
                        && !filtered.body.contains("<td>workflow.created.v1</td>"))
                let verify = try await Self.request(client, .get, "/ui/log/verify", cookie: auditor.cookie)
                #expect(verify.body.contains("The chain is intact: \(head.position) events"))

                let auditorId = try #require(server.api.keys.authenticate(server.auditor)?.id)
                _ = try await server.api.revokeKey(auditorId, actor: nil)
                let after = try await Self.request(client, .get, "/ui/log", cookie: auditor.cookie)
                #expect(after.status == .seeOther)
            }
        }
    }

    @Test("an importer run's page links its first 100 runs and says how many it created in all")
    func importRunPageIsBounded() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.admin
                let wf = try await APITests.activeWorkflow(client, key)
                var csv = "email,amount\r\n"
                for i in 1...150 { csv += "user\(i)@example.com,\(i)\r\n" }
                let source = try #require(try await client.call(.post, "/v1/data-sources/csv?name=many", key: key, body: csv)
                    .json["id"]?.stringValue)
                let importer = try #require(try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "many", "data_source_id": .string(source), "workflow_id": .string(wf),
                    "mapping": ["columns": ["email": "email", "amount": "amount"]],
                ]).json["id"]?.stringValue)
                let run = try #require(try await client.call(.post, "/v1/importers/\(importer)/runs", key: key).json["id"]?.stringValue)
                _ = try await ImporterAPITests.finished(client, key, run)
                let session = try await Self.signIn(client, key)
                let page = try await Self.request(client, .get, "/ui/import-runs/\(run)", cookie: session.cookie)
                #expect(page.status == .ok)
                #expect(page.body.matches(of: /<li>row \d+: <a href="\/ui\/runs\//).count == 100)
                #expect(page.body.contains("150 runs in all"), "\(page.body)")
                #expect(page.body.contains("<li>row 1: "))
            }
        }
    }

    @Test("with secureCookies (runlog serve --secure-cookies) the session cookie is Secure without X-Forwarded-Proto")
    func secureCookies() async throws {
        try await TestServer.with { server in
            let plain = try await server.test { client in
                try await Self.request(client, .post, "/ui/signin", form: [("key", server.admin)]).headers[.setCookie] ?? ""
            }
            #expect(plain.contains("HttpOnly") && !plain.contains("Secure"), "\(plain)")
            server.api.secureCookies = true
            let secure = try await server.test { client in
                try await Self.request(client, .post, "/ui/signin", form: [("key", server.admin)]).headers[.setCookie] ?? ""
            }
            #expect(secure.hasSuffix("; Secure"), "\(secure)")
        }
    }
}
