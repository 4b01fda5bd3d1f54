import RunlogJSON
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WorkflowModel
import Workflows

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--server URL --key KEY [--connect-timeout SECONDS]`: send the command to a running server
/// instead of opening the data directory (which the server holds for writing).
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Send the command to this running server (default: $RUNLOG_SERVER).",
                               valueName: "url"))
    var server: String?
    @Option(help: ArgumentHelp("The API key for --server (default: $RUNLOG_KEY).", valueName: "key"))
    var key: String?
    @Option(name: .customLong("connect-timeout"),
            help: ArgumentHelp("Seconds to wait for a connection to --server before giving up.", valueName: "seconds"))
    var connectTimeout: Double = 5

    func validate() throws {
        guard connectTimeout > 0, connectTimeout <= 600 else {
            throw ValidationError("--connect-timeout \(connectTimeout) is invalid: must be more than 0 and at most 600 seconds")
        }
    }

    var serverURL: String? {
        server ?? ProcessInfo.processInfo.environment["RUNLOG_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The client of `--server`, or nil when no server is given.
    func client() throws -> APIClient? {
        guard var url = serverURL else { return nil }
        while url.hasSuffix("/") { url.removeLast() }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme),
              parsed.host?.isEmpty == false else {
            throw CLIError("--server \(url) is not a URL: give one such as http://127.0.0.1:8080")
        }
        guard let key = key ?? ProcessInfo.processInfo.environment["RUNLOG_KEY"], !key.isEmpty else {
            throw CLIError("--server needs an API key: --key KEY or $RUNLOG_KEY")
        }
        return APIClient(base: url, key: key, connectTimeout: connectTimeout)
    }

    /// The client of `--server` for a command that reads: nil when there is no server, or when
    /// `--data-dir` is given and `--server` is not (an option on the command line wins over
    /// $RUNLOG_SERVER).
    func readingClient(_ store: StoreOptions) throws -> APIClient? {
        if store.dataDir != nil, server == nil { return nil }
        return try client()
    }

    /// The client of `--server` for a command that writes: without a server, an error saying
    /// to give one (the server is the one process that writes to the data directory).
    func writingClient(_ command: String) throws -> APIClient {
        guard let client = try client() else {
            throw CLIError("runlog \(command) writes through the server: pass --server URL --key KEY "
                           + "(or set $RUNLOG_SERVER and $RUNLOG_KEY)")
        }
        return client
    }
}

/// The options of a command that writes only through the server: `--server`, and a hidden
/// `--data-dir`, accepted so that it can be refused in plain words.
struct WritingOptions: ParsableArguments {
    @OptionGroup var server: ServerOptions
    @Option(name: .customLong("data-dir"), help: .hidden) var dataDir: String?

    func client(_ command: String) throws -> APIClient {
        if let dataDir, server.serverURL == nil {
            throw CLIError("runlog \(command) writes through the server, not to a data directory (\(dataDir)): "
                           + "pass --server URL --key KEY (or set $RUNLOG_SERVER and $RUNLOG_KEY)")
        }
        return try server.writingClient(command)
    }
}

/// A small JSON client of the HTTP API. Each request uses a client of its own, with a connect
/// timeout of `connectTimeout` seconds, shut down once the answer is read.
struct APIClient: Sendable {
    let base: String
    let key: String
    var connectTimeout: Double = 5

    /// An answer: status, headers and body.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var json: JSONValue { (try? JSONValue(parsing: body)) ?? .null }
    }

    /// Sends the request and returns the JSON answer; an error answer becomes a CLIError with
    /// the server's message and the fields it names.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil,
              headers: [(String, String)] = []) async throws -> JSONValue {
        let answer = try await call(method, path, body: body, headers: headers)
        return answer.json
    }

    /// Sends the request; an answer that is not 2xx becomes a CLIError.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil,
              headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.jsonText))
        }
        let answer = try await execute(request, timeout: .seconds(60))
        guard (200..<300).contains(answer.status) else {
            throw CLIError(Self.describe(answer: answer, method: method, url: base + path))
        }
        return answer
    }

    /// Sends `request` with the key and reads the whole answer (at most 256 MiB).
    func execute(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> Answer {
        var request = request
        request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(key)")
        let configuration = HTTPClient.Configuration(
            timeout: .init(connect: .milliseconds(Int64(connectTimeout * 1000)), read: timeout))
        do {
            try await probe()
        } catch {
            throw CLIError(Self.describe(error, url: base, connectTimeout: connectTimeout, timeout: timeout))
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let response = try await http.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 256 << 20)
            try? await http.shutdown()
            return Answer(status: Int(response.status.code), headers: response.headers,
                          body: Array(bytes.readableBytesView))
        } catch {
            try? await http.shutdown()
            throw CLIError(Self.describe(error, url: base, connectTimeout: connectTimeout, timeout: timeout))
        }
    }

    /// Opens and closes a TCP connection to the server: a refused connection or an unknown
    /// host fails here at once, where the HTTP client would keep retrying until its connect
    /// timeout.
    func probe() async throws {
        guard let url = URL(string: base), let host = url.host else { throw HTTPClientError.invalidURL }
        let port = url.port ?? (url.scheme == "https" ? 443 : 80)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
        let channel = try await bootstrap.connect(host: host, port: port).get()
        try? await channel.close()
    }

    /// An error answer in one line: the server's message, then each field it names that the
    /// message does not already say, then the status and the request.
    static func describe(answer: Answer, method: HTTPMethod, url: String) -> String {
        let json = answer.json
        guard let error = json["error"], let message = error["message"]?.stringValue else {
            let text = String(decoding: answer.body.prefix(300), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
            return "the server answered \(answer.status) to \(method.rawValue) \(url)" + (text.isEmpty ? "" : ": \(text)")
        }
        var line = message
        let issues = error["issues"]?.arrayValue ?? []
        var details: [String] = []
        for issue in issues {
            guard let field = issue["field"]?.stringValue, let rule = issue["rule"]?.stringValue else { continue }
            let text = "\(field) \(rule)"
            if !message.contains(field) {
                details.append(text + (issue["value"]?.stringValue.map { " (value \($0))" } ?? ""))
            }
        }
        if !details.isEmpty { line += "; " + details.joined(separator: "; ") }
        return line.replacingOccurrences(of: "\n", with: " ")
            + " (\(answer.status) \(error["code"]?.stringValue ?? "error") from \(method.rawValue) \(url))"
    }

    /// A failure to reach the server, in plain words naming the URL.
    static func describe(_ error: any Error, url: String, connectTimeout: Double, timeout: TimeAmount) -> String {
        if let error = error as? CLIError { return error.description }
        let cause = Self.cause(error, connectTimeout: connectTimeout, timeout: timeout)
        return "cannot connect to \(url) (\(cause))"
    }

    static func cause(_ error: any Error, connectTimeout: Double, timeout: TimeAmount) -> String {
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout:
                return "no connection within \(String(format: "%g", connectTimeout)) s; --connect-timeout sets how long to wait"
            case .deadlineExceeded, .readTimeout:
                return "connected, but no answer within \(timeout.nanoseconds / 1_000_000_000) s"
            case .remoteConnectionClosed:
                return "the server closed the connection"
            case .invalidURL, .emptyHost, .emptyScheme:
                return "not a valid URL"
            default:
                return "\(error)"
            }
        case let error as NIOConnectionError:
            if error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
                return "host name \(error.host) not found"
            }
            if let last = error.connectionErrors.last {
                return cause(last.error, connectTimeout: connectTimeout, timeout: timeout)
            }
            return "\(error)"
        case let error as SocketAddressError.UnknownHost:
            return "host name \(error.host) not found"
        case let error as IOError:
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused: nothing listens there"
            case ECONNRESET: return "connection reset by the server"
            case ENETUNREACH: return "network unreachable"
            case EHOSTUNREACH: return "host unreachable"
            case ETIMEDOUT: return "timed out"
            default: return String(cString: strerror(error.errnoCode)).lowercased()
            }
        case let error as ChannelError:
            if case .connectTimeout = error {
                return "no connection within \(String(format: "%g", connectTimeout)) s; --connect-timeout sets how long to wait"
            }
            return "\(error)"
        default:
            return "\(error)"
        }
    }
}
