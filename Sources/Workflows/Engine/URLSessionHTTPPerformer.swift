import WorkflowModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `http_request` steps over Foundation's `URLSession`.
public struct URLSessionHTTPPerformer: HTTPPerformer {
    public init() {}

    public func perform(_ request: OutboundRequest) async throws -> OutboundResponse {
        guard let url = URL(string: request.url) else { throw URLError(.badURL) }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = Double(request.timeout.components.seconds)
            + Double(request.timeout.components.attoseconds) / 1e18
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        if let body = request.body { urlRequest.httpBody = Data(body) }
        let (data, response) = try await URLSession.shared.data(for: urlRequest)
        return OutboundResponse(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: Array(data))
    }
}
