import AsyncHTTPClient
import Foundation
import NIOCore
public import S3
import Testing

/// A real `moto_server` (PyPI `moto[server]`, an S3-compatible server) on 127.0.0.1, in a child process that checks
/// SigV4 signatures.
///
/// moto checks no signature unless `INITIAL_NO_AUTH_ACTION_COUNT` is set: then the first N API calls go
/// unauthenticated and every later one must carry a valid signature from an IAM access key it knows
/// (`SignatureDoesNotMatch` otherwise). The five free calls make an IAM user, give it an inline policy allowing
/// `s3:*`, and make its access key, then make a second user with a key and no policy at all; everything after that,
/// creating buckets included, is signed with one of those keys.
public final class MotoServer: @unchecked Sendable {
    // `@unchecked`: `Process` is not `Sendable`; it is only asked whether it runs, killed and waited for.
    public static let freeCalls = 5

    public let endpoint: String
    /// The IAM access key made at start-up, allowed `s3:*`.
    public let credentials: S3Credentials
    /// An access key of a user with no policy: valid signatures, no permission.
    public let unprivileged: S3Credentials
    private let child: Process
    private let output: StartupOutput

    private init(endpoint: String, keys: (S3Credentials, S3Credentials), child: Process, output: StartupOutput) {
        self.endpoint = endpoint
        (credentials, unprivileged) = keys
        self.child = child
        self.output = output
    }

    /// Starts moto on a free loopback port (it binds port 0 and prints the port it got), waits until it answers,
    /// and makes the IAM access key.
    public static func start() async throws -> MotoServer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]
        var environment = ProcessInfo.processInfo.environment
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = String(freeCalls)
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        let stderr = try Spawning.locked {
            let stderr = Pipe()
            process.standardError = stderr
            try process.run()
            return stderr
        }

        let output = StartupOutput()
        let handle = stderr.fileHandleForReading
        Thread.detachNewThread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.append(String(decoding: chunk, as: UTF8.self))
            }
            output.close()
        }

        do {
            let endpoint = try await output.waitForEndpoint(process)
            try await waitUntilAnswering(endpoint)
            let keys = try await makeAccessKeys(endpoint)
            return MotoServer(endpoint: endpoint, keys: keys, child: process, output: output)
        } catch {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw error
        }
    }

    /// What moto printed on standard error, for failure messages.
    public var log: String { output.text }

    /// Kills moto and waits for it to exit.
    public func stop() {
        guard child.isRunning else { return }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
    }

    /// A client of this server with its access key (or `credentials`).
    public func client(_ credentials: S3Credentials? = nil) throws -> S3Client {
        try S3Client(credentials: credentials ?? self.credentials, region: "us-east-1", endpoint: endpoint)
    }

    /// Sets moto's count of unauthenticated calls through its own control API (`/moto-api/reset-auth`, which is not
    /// itself checked): `.infinity` turns signature checks off.
    public func allowUnauthenticatedCalls(_ count: Double) async throws {
        var request = HTTPClientRequest(url: endpoint + "/moto-api/reset-auth")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: count.isInfinite ? "inf" : String(Int(count))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else { throw TestFailure("reset-auth answered \(response.status)") }
    }

    // MARK: - Start-up

    private static func waitUntilAnswering(_ endpoint: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            // The control API is outside moto's authentication, so polling it spends none of the free calls.
            if let response = try? await HTTPClient.shared.execute(
                HTTPClientRequest(url: endpoint + "/moto-api/data.json"), timeout: .seconds(5)) {
                _ = try? await response.body.collect(upTo: 16 << 20)
                if response.status == .ok { return }
            }
            guard ContinuousClock.now < deadline else { throw TestFailure("moto at \(endpoint) never answered") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Makes the IAM user `runlog-importer`, its policy and its access key, and the user `runlog-nobody` and its key,
    /// with the free calls. moto routes a request to IAM by the service named in its signature's scope, so these are
    /// signed too, with a key moto does not check.
    private static func makeAccessKeys(_ endpoint: String) async throws -> (S3Credentials, S3Credentials) {
        let user = "runlog-importer"
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        _ = try await iam(endpoint, ["Action": "CreateUser", "UserName": user])
        _ = try await iam(endpoint, ["Action": "PutUserPolicy", "UserName": user, "PolicyName": "s3-all",
                                     "PolicyDocument": policy])
        let allowed = try await accessKey(endpoint, user)
        _ = try await iam(endpoint, ["Action": "CreateUser", "UserName": "runlog-nobody"])
        return (allowed, try await accessKey(endpoint, "runlog-nobody"))
    }

    private static func accessKey(_ endpoint: String, _ user: String) async throws -> S3Credentials {
        let answer = try await iam(endpoint, ["Action": "CreateAccessKey", "UserName": user])
        guard let id = element("AccessKeyId", in: answer), let secret = element("SecretAccessKey", in: answer) else {
            throw TestFailure("CreateAccessKey answered without a key: \(answer)")
        }
        return S3Credentials(accessKeyId: id, secretAccessKey: secret)
    }

    /// One IAM query-API call (a form-encoded POST); returns the XML answer.
    private static func iam(_ endpoint: String, _ parameters: [String: String]) async throws -> String {
        let form = (parameters.merging(["Version": "2010-05-08"]) { a, _ in a })
            .sorted { $0.key < $1.key }
            .map { "\($0.key)=\(SigV4Signer.uriEncode($0.value, keepSlash: false))" }
            .joined(separator: "&")
        let body = Array(form.utf8)
        let host = String(endpoint.dropFirst("http://".count))
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyId: "AKIDSETUP", secretAccessKey: "unused"),
                                 region: "us-east-1", service: "iam")
        let signed = signer.sign(.init(method: "POST", path: "/",
                                       headers: [("host", host),
                                                 ("content-type", "application/x-www-form-urlencoded")],
                                       payloadHash: SigV4Signer.sha256Hex(body)),
                                 date: Date())
        var request = HTTPClientRequest(url: endpoint + "/")
        request.method = .POST
        for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            throw TestFailure("IAM \(parameters["Action"] ?? "") answered \(response.status): \(text)")
        }
        return text
    }

    private static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"),
              let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }
}

/// moto's standard error as it comes, and the endpoint it announces (` * Running on http://127.0.0.1:PORT`).
private final class StartupOutput: @unchecked Sendable {
    // `@unchecked`: every field is guarded by `lock`.
    private let lock = NSLock()
    private var buffer = ""
    private var closed = false

    var text: String { lock.withLock { buffer } }

    func append(_ text: String) { lock.withLock { buffer += text } }
    func close() { lock.withLock { closed = true } }

    func waitForEndpoint(_ process: Process) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let (text, closed) = lock.withLock { (buffer, self.closed) }
            if let range = text.range(of: "Running on http://") {
                let rest = text[range.upperBound...]
                if let end = rest.firstIndex(where: \.isWhitespace) { return "http://" + rest[..<end] }
            }
            if closed || !process.isRunning {
                throw TestFailure("moto_server exited before listening (is moto[server] installed? tools/test "
                    + "installs it): \(text)")
            }
            guard ContinuousClock.now < deadline else { throw TestFailure("moto_server did not start: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
