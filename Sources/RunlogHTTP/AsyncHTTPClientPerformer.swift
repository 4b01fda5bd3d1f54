import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import WorkflowModel
public import Workflows

/// `http_request` steps over async-http-client (SwiftNIO): the server's outbound client, sharing
/// the process's event loops with the HTTP server instead of Foundation's URLSession threads.
public struct AsyncHTTPClientPerformer: HTTPPerformer {
    let client: HTTPClient
    /// Bodies above this are cut off at it (the step records what it read).
    static let maxResponseBytes = 4 << 20

    public init() {
        client = HTTPClient.shared
    }

    public func perform(_ request: OutboundRequest) async throws -> OutboundResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outbound.headers.add(name: name, value: value) }
        if let body = request.body { outbound.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(outbound, timeout: .nanoseconds(
            request.timeout.components.seconds * 1_000_000_000 + request.timeout.components.attoseconds / 1_000_000_000))
        let body = try await response.body.collect(upTo: Self.maxResponseBytes)
        return OutboundResponse(status: Int(response.status.code), body: Array(body.readableBytesView))
    }
}
