import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Workflows

/// `--server URL --key KEY`: send a writing command to a running server instead of opening the
/// data directory (which the server holds for writing).
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Send the command to this running server (default: $RUNLOG_SERVER).",
                               valueName: "url"))
    var server: String?
    @Option(help: ArgumentHelp("The API key for --server (default: $RUNLOG_KEY).", valueName: "key"))
    var key: String?

    var serverURL: String? {
        server ?? ProcessInfo.processInfo.environment["RUNLOG_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func client() throws -> APIClient? {
        guard let url = serverURL else { return nil }
        guard let key = key ?? ProcessInfo.processInfo.environment["RUNLOG_KEY"], !key.isEmpty else {
            throw CLIError("--server needs an API key: --key KEY or $RUNLOG_KEY")
        }
        return APIClient(base: url.hasSuffix("/") ? String(url.dropLast()) : url, key: key)
    }
}

/// A small JSON client of the HTTP API.
struct APIClient {
    let base: String
    let key: String

    /// Sends the request and returns the JSON answer; an error answer becomes a CLIError with
    /// the server's message.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.jsonText))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        } catch {
            throw CLIError("cannot reach the server at \(base): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let json = (try? JSONValue(parsing: Array(bytes.readableBytesView))) ?? .null
        guard (200..<300).contains(response.status.code) else {
            let message = json["error"]?["message"]?.stringValue ?? String(buffer: bytes)
            throw CLIError("the server answered \(response.status.code): \(message)")
        }
        return json
    }
}
