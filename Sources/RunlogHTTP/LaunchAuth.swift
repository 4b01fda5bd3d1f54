import Access
import HTTPTypes
import Hummingbird
import Logging
import WorkflowModel
import Workflows

/// Authentication of the launch API (`/v3/`, seed 001): `Authorization: x-api-key KEY` (or an
/// `x-api-key: KEY` header, or `Bearer KEY`) with a Runlog API key, and the project the request
/// acts in, `x-project-id`; errors in `/v1`'s shape.
struct LaunchDialect: Dialect {
    let check: KeyCheck

    func admit(_ request: Request, _ context: inout RunlogRequestContext) throws -> HTTPFields {
        let key = try authenticate(request)
        context.key = key
        context.projectId = try Self.project(request)
        return try check.rateLimit(key)
    }

    func answer(_ error: any Error, to request: Request, logger: Logger) -> Answer {
        Answer(RequestRecorder.apiError(error, request: request, logger: logger))
    }

    static let apiKeyHeader = HTTPField.Name("x-api-key")!
    static let projectHeader = HTTPField.Name("x-project-id")!

    func authenticate(_ request: Request) throws -> APIKeyRecord {
        var text: Substring
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, ["x-api-key", "bearer"].contains(parts[0].lowercased()) else {
                throw Self.unauthorized("the Authorization header must be x-api-key KEY")
            }
            text = parts[1]
        } else if let header = request.headers[Self.apiKeyHeader] {
            text = Substring(header)
        } else {
            throw Self.unauthorized("no API key: send Authorization: x-api-key KEY")
        }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        guard let key = check.keys.authenticate(String(text)) else { throw Self.unauthorized("unknown or revoked API key") }
        return key
    }

    /// The `x-project-id` header: 1–128 letters, digits or `. _ : -`.
    static func project(_ request: Request) throws -> String {
        guard let project = request.headers[Self.projectHeader] else {
            throw APIError.badRequest("the x-project-id header is required: the project the request acts in",
                                      field: "x-project-id")
        }
        guard !project.isEmpty, project.utf8.count <= 128,
              project.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0)
                  || "._:-".unicodeScalars.contains($0) }) else {
            throw APIError.badRequest("the x-project-id header must be 1 to 128 letters, digits or . _ : -",
                                      field: "x-project-id", value: project)
        }
        return project
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, "unauthorized", message, headers: [.wwwAuthenticate: "x-api-key"])
    }
}
