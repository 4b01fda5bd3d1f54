import AsyncHTTPClient
public import Foundation
import NIOCore

/// Headless Chromium driven through chromedriver's W3C WebDriver API (Debian's `chromium` and
/// `chromium-driver`; `tools/test` installs them). Enough for the dashboard's browser tests:
/// navigate, find, type, click, read text, take screenshots.
public final class WebDriver: @unchecked Sendable {
    // `@unchecked`: the session id is set once in `start`, then only read.
    public static let driverPath = "/usr/bin/chromedriver"
    public static let browserPath = "/usr/bin/chromium"

    /// Whether the browser tests run: with chromedriver installed, and always in CI (where a missing
    /// browser then fails them instead of skipping them).
    public static var isEnabled: Bool {
        FileManager.default.isExecutableFile(atPath: driverPath) || ProcessInfo.processInfo.environment["CI"] != nil
    }

    private let process: Process
    private let base: String
    private var session = ""
    private let http = HTTPClient(eventLoopGroupProvider: .singleton)

    private init(process: Process, port: Int) {
        self.process = process
        base = "http://127.0.0.1:\(port)"
    }

    /// Starts chromedriver on a free port and a headless browser window of `width` × `height`.
    public static func start(width: Int = 1280, height: Int = 900) async throws -> WebDriver {
        let port = try closedPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driverPath)
        process.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try Spawning.locked { try process.run() }
        let driver = WebDriver(process: process, port: port)
        do {
            var ready = false
            for _ in 0..<100 where !ready {
                ready = ((try? await driver.call("GET", "/status"))?["value"] as? [String: Any])?["ready"] as? Bool ?? false
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard ready else { throw TestFailure("chromedriver did not get ready on port \(port)") }
            let answer = try await driver.call("POST", "/session", [
                "capabilities": ["alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": browserPath,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--window-size=\(width),\(height)"],
                    ] as [String: Any],
                ] as [String: Any]],
            ])
            guard let value = answer["value"] as? [String: Any], let id = value["sessionId"] as? String else {
                throw TestFailure("chromedriver started no session: \(answer)")
            }
            driver.session = id
            // A find waits up to 5 s for its element: a click that submits a form returns before the
            // next page is there.
            _ = try await driver.command("POST", "timeouts", ["implicit": 5_000])
            return driver
        } catch {
            await driver.quit()
            throw error
        }
    }

    /// Ends the browser and chromedriver.
    public func quit() async {
        if !session.isEmpty { _ = try? await call("DELETE", "/session/\(session)") }
        // Waited for a few seconds at most, then killed: nothing here waits for ever. (Foundation
        // reaps the child; a waitpid of our own could reap another test's child that took its pid.)
        process.terminate()
        for attempt in 0..<140 where process.isRunning {
            if attempt == 100 { kill(process.processIdentifier, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        try? await http.shutdown()
    }

    public func open(_ url: String) async throws {
        _ = try await command("POST", "url", ["url": url])
    }

    public var url: String {
        get async throws { try await command("GET", "url")["value"] as? String ?? "" }
    }

    public var title: String {
        get async throws { try await command("GET", "title")["value"] as? String ?? "" }
    }

    /// The element `css` names (the first), or a failure naming it.
    public func element(_ css: String) async throws -> String {
        let answer = try await command("POST", "element", ["using": "css selector", "value": css])
        guard let value = answer["value"] as? [String: Any],
              let id = value["element-6066-11e4-a52e-4f735466cecf"] as? String else {
            throw TestFailure("no element \(css) on \(try await url): \(answer["value"] ?? "")")
        }
        return id
    }

    /// How many elements `css` names on the page as it is now (no wait: find an element of the
    /// page first).
    public func count(_ css: String) async throws -> Int {
        (try await run("return document.querySelectorAll(arguments[0]).length", [css]) as? Int) ?? -1
    }

    public func type(_ css: String, _ text: String) async throws {
        let id = try await element(css)
        _ = try await command("POST", "element/\(id)/clear")
        _ = try await command("POST", "element/\(id)/value", ["text": text])
    }

    public func click(_ css: String) async throws {
        _ = try await command("POST", "element/\(try await element(css))/click")
    }

    /// Clicks `css`, which loads another page (a link, a form's button), and waits until that page
    /// has loaded: the click itself returns before.
    public func follow(_ css: String) async throws {
        try await run("window.runlogOldPage = true")
        try await click(css)
        for _ in 0..<200 {
            let loaded = try? await run("return window.runlogOldPage === undefined && document.readyState === 'complete'")
            if loaded as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("clicking \(css) loaded no new page within 10 s (at \(try await url))")
    }

    public func text(_ css: String) async throws -> String {
        try await command("GET", "element/\(try await element(css))/text")["value"] as? String ?? ""
    }

    /// Runs `script` in the page and answers its result.
    @discardableResult
    public func run(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "execute/sync", ["script": script, "args": arguments])["value"]
    }

    /// Makes the window `width` × `height` pixels.
    public func resize(width: Int, height: Int) async throws {
        _ = try await command("POST", "window/rect", ["width": width, "height": height])
    }

    /// A PNG of the window.
    public func screenshot() async throws -> Data {
        guard let text = try await command("GET", "screenshot")["value"] as? String, let data = Data(base64Encoded: text) else {
            throw TestFailure("chromedriver answered no screenshot")
        }
        return data
    }

    /// Saves a screenshot as `name`.png in `RUNLOG_SCREENSHOTS` (when set; `tools/test` sets it).
    public func saveScreenshot(_ name: String) async throws {
        guard let directory = ProcessInfo.processInfo.environment["RUNLOG_SCREENSHOTS"] else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await screenshot().write(to: URL(fileURLWithPath: directory).appendingPathComponent("\(name).png"))
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        try await call(method, "/session/\(session)/\(path)", body ?? (method == "POST" ? [:] : nil))
    }

    private func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        if response.status.code >= 400 {
            let message = (json["value"] as? [String: Any])?["message"] as? String
            throw TestFailure("WebDriver \(method) \(path) \(body.map { "\($0)" } ?? ""): \(response.status.code) "
                              + (message?.split(separator: "\n").first.map(String.init) ?? "\(json)"))
        }
        return json
    }
}
