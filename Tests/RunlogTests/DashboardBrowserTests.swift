import AsyncHTTPClient
import Foundation
import NIOCore
import RunlogTestSupport
import Testing

/// The dashboard in headless Chromium against a `runlog serve` process on a loopback port.
/// Screenshots go to `RUNLOG_SCREENSHOTS` when it is set (`tools/test` sets it); the ones in
/// docs/dashboard.md come from there.
@Suite("dashboard in a browser", .enabled(if: WebDriver.isEnabled), .serialized)
struct DashboardBrowserTests {
    @Test("sign in; the workflows, a workflow, the log and its verification, keys; an auditor sees no write controls; sign out ends the session",
          .timeLimit(.minutes(2)))
    func signedInPages() async throws {
        try await Self.withServe { base, admin in
            let workflow = try await Self.post(base + "/v1/workflows", key: admin, json: #"{"name": "Refund approvals"}"#)
            let id = try #require(workflow.firstMatch(of: /"id":"([^"]+)"/)?.1)
            let browser = try await WebDriver.start()
            do {
                try await browser.open(base + "/ui/")
                #expect(try await browser.url == base + "/ui/signin")
                try await browser.saveScreenshot("signin")
                try await browser.type("#key", "rlk_wrong")
                try await browser.follow("#sign-in")
                #expect(try await browser.text("#message") == "Unknown or revoked API key.")
                try await browser.type("#key", admin)
                try await browser.follow("#sign-in")
                #expect(try await browser.title == "Workflows · Runlog")
                #expect(try await browser.text("#workflows").contains("Refund approvals"))
                #expect(try await browser.run("return document.cookie") as? String == "", "the session cookie is HttpOnly")
                try await browser.saveScreenshot("workflows")
                // At a phone's width the page wraps instead of scrolling sideways (tables scroll in their box).
                try await browser.resize(width: 400, height: 800)
                #expect(try await browser.run("return document.documentElement.scrollWidth <= window.innerWidth") as? Bool == true)
                try await browser.saveScreenshot("workflows-narrow")
                try await browser.resize(width: 1280, height: 900)

                try await browser.follow("#workflows a")
                #expect(try await browser.url == base + "/ui/workflows/\(id)")
                #expect(try await browser.text("#versions").contains("Nothing published yet."))

                try await browser.open(base + "/ui/keys")
                #expect(try await browser.count("#keys tbody tr") == 1)
                #expect(try await browser.text("#limits").contains("Runs today"))
                try await browser.saveScreenshot("keys")
                try await browser.run("document.querySelector('#create-key select').value = 'auditor'")
                try await browser.type("#create-key input[name=name]", "browser auditor")
                try await browser.follow("#create-key button")
                let auditorKey = try await browser.text("#new-key")
                #expect(auditorKey.hasPrefix("rlk_"))
                #expect(try await browser.count("#keys tbody tr") == 2)

                try await browser.open(base + "/ui/log")
                let head = try await browser.text("#head-hash")
                // Followed live: an event committed after the page loaded shows on top.
                let rows = try await browser.count("#events tbody tr")
                try await browser.click("#follow")
                try await Task.sleep(for: .milliseconds(300))
                _ = try await Self.post(base + "/v1/workflows", key: admin, json: #"{"name": "Followed live"}"#)
                for _ in 0..<100 where try await browser.count("#events tbody tr") == rows {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await browser.text("#events tbody tr").contains("workflow.created.v1"))
                #expect(try await browser.count("#events tbody tr") == rows + 1)
                try await browser.saveScreenshot("log")
                try await browser.open(base + "/ui/log")
                let newHead = try await browser.text("#head-hash")
                #expect(newHead != head)
                try await browser.follow("#verify")
                #expect(try await browser.text("#verify-result").contains("intact") == true)
                try await browser.saveScreenshot("verify")
                #expect(try await browser.text("#verify-result").contains(newHead))

                try await browser.open(base + "/ui/keys")
                let adminToken = try await browser.run("return document.querySelector('input[name=csrf]').value") as? String ?? ""
                try await browser.follow("#sign-out")
                #expect(try await browser.url == base + "/ui/signin")
                try await browser.open(base + "/ui/keys")
                #expect(try await browser.url == base + "/ui/signin", "signing out ended the session")
                // The admin's form replayed after signing out: sent to the sign-in page, nothing made.
                let replayed = try await Self.post(browser, "/ui/keys", "csrf=\(adminToken)&role=admin&name=replayed")
                #expect(replayed.hasSuffix("/ui/signin"), "\(replayed)")

                // An auditor: no Keys link, no forms but sign-out, and the Keys page refused.
                try await browser.type("#key", auditorKey)
                try await browser.follow("#sign-in")
                #expect(try await browser.text("#signed-in") == "browser auditor auditor")
                #expect(try await browser.count("a[href='/ui/']") == 2)
                #expect(try await browser.count("a[href='/ui/keys']") == 0)
                #expect(try await browser.count("main form") == 0)
                try await browser.open(base + "/ui/keys")
                #expect(try await browser.text("#error-message").contains("admin only"))
                // A write the auditor's own page did not offer, sent with its session and token: refused.
                try await browser.open(base + "/ui/")
                let auditorToken = try await browser.run("return document.querySelector('input[name=csrf]').value") as? String ?? ""
                let forged = try await Self.post(browser, "/ui/keys", "csrf=\(auditorToken)&role=admin&name=forged")
                #expect(forged.hasPrefix("403"), "\(forged)")
                let keys = try await Self.send("GET", base + "/v1/keys", key: admin, json: "")
                #expect(!keys.contains("replayed") && !keys.contains("forged"))
                await browser.quit()
            } catch {
                await browser.quit()
                throw error
            }
        }
    }

    @Test("create, save, publish and activate a workflow; stage a rollout and watch its arms count runs as they arrive; edit a description; compare versions; revert",
          .timeLimit(.minutes(3)))
    func workflowLifecycle() async throws {
        try await Self.withServe { base, admin in
            let browser = try await WebDriver.start()
            do {
                try await browser.open(base + "/ui/signin")
                try await browser.type("#key", admin)
                try await browser.follow("#sign-in")
                try await browser.type("#new-workflow input[name=name]", "Refunds")
                try await browser.follow("#new-workflow button")
                let page = try await browser.url
                let id = try #require(page.firstMatch(of: /\/ui\/workflows\/(wf_[0-9a-z]+)$/)?.1)
                // The draft starts from a trigger with an amount and one route; saved, published, activated.
                try await browser.follow("#save-draft button")
                #expect(try await browser.text("#draft h2").hasPrefix("Draft (draft 1"))
                try await browser.type("#publish input[name=description]", "approve every refund")
                try await browser.click("#publish input[name=activate]")
                try await browser.follow("#publish button")
                #expect(try await browser.text("#active h2") == "Active (v1)")
                // A second version, published without activating, staged at 50%.
                try await browser.run("""
                    const area = document.querySelector('#save-draft textarea');
                    area.value = area.value.replace('"all"', '"main"').replace('"approve"', '"decline"');
                    """)
                try await browser.follow("#save-draft button")
                try await browser.type("#publish input[name=description]", "the main route")
                try await browser.follow("#publish button")
                try await browser.run("document.querySelector('#stage-rollout select').value = '2'")
                try await browser.type("#stage-rollout input[name=percentage]", "50")
                try await browser.follow("#stage-rollout button")
                #expect(try await browser.text("#rollout").contains("Treatment v2 at 50%, control v1"))
                #expect(try await browser.text("#treatment-runs") == "0")
                #expect(try await browser.text("#control-runs") == "0")

                // Runs arrive through the API; the page, not reloaded, counts them by arm.
                for n in 0..<20 {
                    _ = try await Self.post(base + "/v1/workflows/\(id)/runs", key: admin,
                                            json: #"{"parameters": {"amount": \#(n * 10)}}"#)
                }
                var arms = (0, 0)
                for _ in 0..<200 {
                    arms = (Int(try await browser.text("#treatment-runs")) ?? 0, Int(try await browser.text("#control-runs")) ?? 0)
                    if arms.0 + arms.1 == 20 { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(arms.0 + arms.1 == 20 && arms.0 > 0 && arms.1 > 0, "arms \(arms)")
                // The arms' outcomes follow the runs as they end: v2 declines, v1 approves.
                var outcomes = ("", "")
                for _ in 0..<200 {
                    outcomes = (try await browser.text("#treatment-outcomes"), try await browser.text("#control-outcomes"))
                    if outcomes.0 == "declined 100% (\(arms.0))", outcomes.1 == "approved 100% (\(arms.1))" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(outcomes.0 == "declined 100% (\(arms.0))" && outcomes.1 == "approved 100% (\(arms.1))", "\(outcomes)")
                try await browser.saveScreenshot("rollout")

                // The runs, filtered by arm; one run with its route, steps and log positions.
                try await browser.follow("#runs-link")
                #expect(try await browser.count("#runs tbody tr") == 20)
                try await browser.run("document.querySelector('#run-filters select[name=arm]').value = 'treatment'")
                try await browser.follow("#run-filters button")
                #expect(try await browser.count("#runs tbody tr") == arms.0)
                try await browser.saveScreenshot("runs")
                try await browser.follow("#runs tbody a")
                let runPage = try await browser.url
                for _ in 0..<100 where !(try await browser.text("#run-summary")).contains("completed") {
                    try await Task.sleep(for: .milliseconds(100))
                    try await browser.open(runPage)
                }
                #expect(try await browser.text("#run-summary").contains("arm treatment"))
                #expect(try await browser.text("#run-route") == "main")
                #expect(try await browser.text("#run-decision") == "declined")
                #expect(try await browser.text("#steps").contains("approve-1"))
                #expect(try await browser.count("#run-events tbody tr") >= 2)
                #expect(try await !browser.text("main").contains("nil"), "no missing value shows as nil")
                try await browser.saveScreenshot("run")
                // The draft (v2's content) previewed against the 20 runs: the control arm's approvals would be declines.
                try await browser.open(base + "/ui/workflows/\(id)")
                try await browser.follow("#preview-draft")
                #expect(try await browser.text("#preview-summary").contains("\(arms.1) would change, \(arms.0) would not"))
                #expect(try await browser.text("#preview-matrix").contains("approved declined \(arms.1)"))
                #expect(try await browser.count(".preview-cell tbody tr") == min(5, arms.1))
                try await browser.saveScreenshot("preview")
                try await browser.open(base + "/ui/workflows/\(id)")
                try await browser.follow("#promote-rollout button")
                #expect(try await browser.text("#active h2") == "Active (v2)")

                // A launch job of the active version, on the jobs page and its own.
                _ = try await Self.send("POST", base + "/v3/workflows/\(id)/schedule", key: admin, json: """
                    {"job_name": "Refund review", "inputs": [{"amount": 120}, {"amount": 80}, {"amount": 15}]}
                    """, launchProject: "proj_1")
                try await browser.open(base + "/ui/launch")
                #expect(try await browser.text("#jobs").contains("Refund review"))
                try await browser.saveScreenshot("launch")
                try await browser.follow("#jobs a")
                for _ in 0..<50 where !(try await browser.text("#job-summary")).contains("3 completed") {
                    try await Task.sleep(for: .milliseconds(100))
                    try await browser.open(try await browser.url)
                }
                #expect(try await browser.text("#job-summary").contains("3 runs, 3 completed"))
                #expect(try await browser.count("#job-results tbody tr") == 3)
                try await browser.saveScreenshot("job")

                // A batch task (seed 003) looked up by its id.
                let welcome = try await Self.post(base + "/v1/workflows", key: admin, json: #"{"name": "Welcome"}"#)
                let welcomeId = try #require(welcome.firstMatch(of: /"id":"([^"]+)"/)?.1)
                let number = try #require(welcome.firstMatch(of: /"number":(\d+)/)?.1)
                _ = try await Self.send("PUT", base + "/v1/workflows/\(welcomeId)/draft", key: admin, json: """
                    {"trigger": {"kind": "action", "object_type": "profile"}, "routes": [{"name": "all", "steps": [
                     {"step_uid": "greet", "type": "set_field", "parameters": {"field": "greeting", "path": "apicontent.one"}}]}]}
                    """)
                _ = try await Self.post(base + "/v1/workflows/\(welcomeId)/versions", key: admin, json: #"{"activate": true}"#)
                let task = try await Self.send("POST", base + "/api/v1.1/workflows/import_and_start_batch_task", key: admin, json: """
                    {"token": "\(admin)", "workflow_id": \(number), "matching": "email", "content": {"one": "Hello"},
                     "data": [{"data": {"email": "p1@example.com"}}, {"data": {"email": "p2@example.com"}}]}
                    """)
                let taskId = try #require(task.firstMatch(of: /"task_id":"([^"]+)"/)?.1, "\(task)")
                try await browser.open(base + "/ui/launch")
                try await browser.type("#task-lookup input[name=task_id]", String(taskId))
                try await browser.follow("#task-lookup button")
                for _ in 0..<50 where !(try await browser.text("#task-status")).contains("completed") {
                    try await Task.sleep(for: .milliseconds(100))
                    try await browser.open(try await browser.url)
                }
                #expect(try await browser.text("#task-status").contains("completed, 100% done: 2 succeeded"))
                try await browser.saveScreenshot("task")
                try await browser.open(base + "/ui/workflows/\(id)")

                // A description edited in place.
                try await browser.type("#version-1 .edit-description input[name=description]", "approve every refund, any amount")
                try await browser.follow("#version-1 .edit-description button")
                #expect(try await browser.text("#version-1 .description") == "approve every refund, any amount")

                // v1 against v2, then a revert to v1 after a confirmation that names what becomes active.
                try await browser.follow("#compare button")
                #expect(try await browser.count("#diff .added") == 0, "v2 against itself")
                try await browser.open(base + "/ui/workflows/\(id)/diff?from=1&to=2")
                let lines = { (kind: String) async throws -> String in
                    try await browser.run("return [...document.querySelectorAll('#diff .' + arguments[0])].map(e => e.textContent).join('\\n')",
                                          [kind]) as? String ?? ""
                }
                let (removed, added) = (try await lines("removed"), try await lines("added"))
                #expect(removed.contains("\"all\"") && removed.contains("\"approve\""))
                #expect(added.contains("\"main\"") && added.contains("\"decline\""))
                try await browser.saveScreenshot("diff")
                try await browser.open(base + "/ui/workflows/\(id)")
                try await browser.follow("#version-1 a.button")
                #expect(try await browser.text("#confirm-revert")
                    .contains("With \"activate\", v3 becomes the active version in place of v2."))
                try await browser.saveScreenshot("revert")
                try await browser.follow("#confirm")
                #expect(try await browser.text("#active h2") == "Active (v3)")
                #expect(try await browser.text("#version-3").contains("reverted from v1"))
                try await browser.saveScreenshot("workflow")
                await browser.quit()
            } catch {
                await browser.quit()
                throw error
            }
        }
    }

    @Test("Data > Imports: upload a CSV file with bad rows, map it, dry-run it, run it, watch its Activity reach completed, download the errored rows",
          .timeLimit(.minutes(3)))
    func importFlow() async throws {
        try await Self.withServe { base, admin in
            let workflow = try await Self.post(base + "/v1/workflows", key: admin, json: #"{"name": "Signups"}"#)
            let id = try #require(workflow.firstMatch(of: /"id":"([^"]+)"/)?.1)
            _ = try await Self.send("PUT", base + "/v1/workflows/\(id)/draft", key: admin, json: """
                {"trigger": {"kind": "api", "schema": {"fields": [{"name": "email", "type": "string", "required": true},
                 {"name": "amount", "type": "integer"}]}},
                 "routes": [{"name": "all", "steps": [{"step_uid": "approve-1", "type": "approve"}]}]}
                """)
            _ = try await Self.post(base + "/v1/workflows/\(id)/versions", key: admin, json: #"{"activate": true}"#)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("signups-\(UUID()).csv")
            var rows = ["email,amount,note"]
            for n in 1...30 { rows.append("user\(n)@example.com,\(n * 10),ok") }
            rows.append("bad@example.com,lots,not a number")
            rows.append(",5,no email")
            try (rows.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }

            let browser = try await WebDriver.start()
            do {
                try await browser.open(base + "/ui/signin")
                try await browser.type("#key", admin)
                try await browser.follow("#sign-in")
                try await browser.open(base + "/ui/imports")
                try await browser.type("#upload-file", file.path)
                #expect(try await browser.run("return document.getElementById('upload-name').value") as? String
                        == file.deletingPathExtension().lastPathComponent, "the name comes from the file")
                try await browser.type("#upload-name", "signups")
                try await browser.follow("#upload-form button")
                #expect(try await browser.text("#data-sources").contains("email, amount, note"))

                try await browser.follow("#new-importer button")
                #expect(try await browser.title == "New importer · Runlog")
                // Header auto-mapping: email and amount chosen, note left out.
                #expect(try await browser.run("return document.querySelector('select[name=target_0]').value") as? String == "email")
                #expect(try await browser.run("return document.querySelector('select[name=target_1]').value") as? String == "amount")
                #expect(try await browser.run("return document.querySelector('select[name=target_2]').value") as? String == "")
                try await browser.saveScreenshot("importer-new")
                try await browser.follow("#importer-form button")
                let importerPage = try await browser.url
                try await browser.saveScreenshot("importer")

                try await browser.follow("#dry-run button")
                try await Self.waitForImport(browser)
                #expect(try await browser.text("#runs-created") == "30")
                #expect(try await browser.text("#rows-errored") == "2")
                #expect(try await browser.text("#created-runs").contains("None"), "a dry run creates no run")

                try await browser.open(importerPage)
                try await browser.follow("#start-run button")
                try await Self.waitForImport(browser)
                #expect(try await browser.text("#import-status") == "completed")
                #expect(try await browser.text("#rows-read") == "32")
                #expect(try await browser.text("#runs-created") == "30")
                #expect(try await browser.text("#by-reason").contains("amount must be an integer"))
                #expect(try await browser.count("#created-runs li") == 30)
                try await browser.saveScreenshot("import-run")
                let errored = try await browser.run("""
                    const request = new XMLHttpRequest();
                    request.open("GET", document.getElementById("download-errored").href, false);
                    request.send();
                    return request.status + "\\n" + request.responseText;
                    """) as? String ?? ""
                #expect(errored.hasPrefix("200\n") && errored.contains("bad@example.com,lots") && errored.contains(",5,no email"))
                #expect(!errored.contains("user1@example.com"))
                try await browser.open(base + "/ui/imports")
                #expect(try await browser.count(".activity tbody tr") == 2)
                try await browser.saveScreenshot("imports")
                await browser.quit()
            } catch {
                await browser.quit()
                throw error
            }
        }
    }

    /// Runs `body` with a `runlog serve` process on a loopback port and a fresh data directory: its
    /// base URL and an admin key (made with `runlog keys create` first). The server gets SIGTERM
    /// after the body, and SIGKILL if it has not exited 10 s later.
    static func withServe(_ body: (_ base: String, _ admin: String) async throws -> Void) async throws {
        let dir = TemporaryDirectory()
        let admin = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        do {
            try await body(server.base, admin)
        } catch {
            await stop(server)
            throw error
        }
        await stop(server)
        withExtendedLifetime(dir) {}
    }

    static func stop(_ server: ServerProcess) async {
        server.child.kill(SIGTERM)
        for _ in 0..<200 where server.child.process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if server.child.process.isRunning { server.child.kill(SIGKILL) }
        _ = await server.child.wait()
    }

    /// POSTs a form from the page in the browser (with its cookies); "STATUS FINAL-URL".
    static func post(_ browser: WebDriver, _ path: String, _ form: String) async throws -> String {
        try await browser.run("""
            const request = new XMLHttpRequest();
            request.open("POST", arguments[0], false);
            request.setRequestHeader("Content-Type", "application/x-www-form-urlencoded");
            request.send(arguments[1]);
            return request.status + " " + request.responseURL;
            """, [path, form]) as? String ?? ""
    }

    /// Waits until the importer run page shows a finished run (its script reloads it when it ends).
    static func waitForImport(_ browser: WebDriver) async throws {
        for _ in 0..<300 {
            if let status = try? await browser.text("#import-status"), status != "running" { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the importer run did not finish within 30 s")
    }

    /// Sends `json` with `key` (as the launch API's `x-api-key` with `x-project-id` when
    /// `launchProject` is given); the answer's body.
    static func send(_ method: String, _ url: String, key: String, json: String, launchProject: String? = nil) async throws
        -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let launchProject {
            request.headers.add(name: "Authorization", value: "x-api-key \(key)")
            request.headers.add(name: "x-project-id", value: launchProject)
        } else {
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
        }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    /// POSTs `json` with `key`; the answer's body.
    static func post(_ url: String, key: String, json: String) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }
}
