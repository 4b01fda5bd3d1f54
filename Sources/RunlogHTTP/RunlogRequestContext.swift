import Access
import HTTPTypes
public import Hummingbird
import WorkflowModel
import Workflows

/// The request context of every route: Hummingbird's core storage, the API key that
/// authenticated the request, and the body limit.
public struct RunlogRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authentication middleware for every route but the open ones.
    var key: APIKeyRecord?
    /// The `x-project-id` of a launch-API request (`/v3/`).
    var projectId: String?
    /// The dashboard session that signed the request in (`/ui/`).
    var session: DashboardSessions.Session?

    /// Request bodies above this many bytes get 413.
    public static let bodyLimit = 10 * 1024 * 1024

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { Self.bodyLimit }

    /// The key's id: the actor recorded on every event the request causes.
    var actor: String? { key?.id }

    /// Throws 403 unless the request's key has a role that allows `permission`.
    func require(_ permission: Permission) throws {
        guard let key else {
            throw APIError(.unauthorized, "unauthorized", "an API key is required (Authorization: Bearer KEY)")
        }
        guard key.role.allows(permission) else {
            throw APIError(.forbidden, "forbidden",
                           "key \(key.id) has role \(key.role.rawValue), which may not \(permission.verb)")
        }
    }
}

extension Permission {
    var verb: String {
        switch self {
        case .read: "read"
        case .write: "send commands"
        case .admin: "do this (admin only)"
        }
    }
}
