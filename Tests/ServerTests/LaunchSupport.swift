// What the launch API tests share: seed 001's request examples, the `launch` request, an
// HTTP performer held until opened (`Gate`) and a log capture (also used by the dialect tests).
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RunlogTestSupport
import Synchronization
import Testing
@testable import RunlogHTTP
@testable import WorkflowModel
@testable import Workflows


/// The request examples of seed 001, exactly as written there.
enum SeedExamples {
    static let standardPayload = """
        {
            "inputs": []
            "job_name": "New job to launch",
            "steps": [{
                "accounts": [],
                "parameters": {},
                "step_uid": "",
            }]
        """
    static let mappingInputs = """
        {
            "inputs": [{ "mapping_key": "value" }]
        }
        """
    static let emailInputs = """
        {
            "inputs": [
                { "first_name": "value" },
                { "last_name": "value" },
                { "company_name": "value" }
            ]
        }
        """
    static let accountsFragment = """
        "accounts": ["UID_YOU_JUST_GOT"]
        """
    static let accountApiKey = """
        "account": {
            "uid": "UID_YOU_JUST_GOT",
            "api_key": "" // or cookies, password etc. depending on the integration you're updating
            ...
        }
        """
    static let cookieUpdate = """
        "account": {
            "uid": "YOUR_UID",
            "cookies": {
                "li_at": "YOUR_NEW_VALUE",
                "li_a": "YOUR_NEW_VALUE",
            }
        }
        """
}

extension TestClientProtocol {
    /// A launch-API request: `Authorization: x-api-key KEY` and `x-project-id`.
    @discardableResult
    func launch(
        _ method: HTTPRequest.Method,
        _ uri: String,
        key: String?,
        project: String? = LaunchAPITests.project,
        json: JSONValue? = nil,
        body: String? = nil,
        idempotencyKey: String? = nil
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSONValue) {
        var headers: HTTPFields = [:]
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        if let key { headers[.authorization] = "x-api-key \(key)" }
        if let project { headers[HTTPField.Name("x-project-id")!] = project }
        return try await call(method, uri, key: nil, json: json, body: body, headers: headers)
    }
}

/// An HTTP performer that holds every call until opened.
final class Gate: HTTPPerformer, @unchecked Sendable {
    private let state = Mutex((open: false, calls: 0))

    var calls: Int { state.withLock { $0.calls } }
    func open() { state.withLock { $0.open = true } }
    func close() { state.withLock { $0.open = false } }

    func waitForCalls(_ n: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while calls < n {
            guard ContinuousClock.now < deadline else { throw GateTimeout() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func perform(_ request: OutboundRequest) async throws -> OutboundResponse {
        state.withLock { $0.calls += 1 }
        while !state.withLock({ $0.open }) { try await Task.sleep(for: .milliseconds(2)) }
        return OutboundResponse(status: 200, body: Array(#"{"ok": true}"#.utf8))
    }
}

struct GateTimeout: Error {}

/// Every line a logger writes, with its metadata.
final class LogCapture: Sendable {
    private let stored = Mutex([String]())
    var lines: [String] { stored.withLock { $0 } }
    var text: String { lines.joined(separator: "\n") }

    func handler() -> some LogHandler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.stored.withLock { $0.append("\(event.level) \(event.message) \(all)") }
        }
    }
}
