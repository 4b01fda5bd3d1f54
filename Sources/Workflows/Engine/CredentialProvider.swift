import WorkflowModel
/// Gives `http_request` steps the credentials of an integration account (seed 001): the step's
/// `account` parameter (or a job's `accounts`) names the account, the provider answers the headers
/// that authenticate the request. Credentials exist only in the outbound request: the engine
/// never records them in an event.
public protocol CredentialProvider: Sendable {
    /// Headers to add for `account` (e.g. `Authorization`, `Cookie`). `project` is the project of
    /// the run's job (nil for runs outside a job): an account of another project is refused.
    func headers(forAccount account: String, project: String?) async throws(CredentialError) -> [String: String]
}

/// Why an account cannot be used; the reason names the account, never a secret.
public struct CredentialError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension WorkflowEngine {
    /// Adds credential headers to a step's own: a header the step sets itself (any case) wins,
    /// except `Cookie`, whose values are joined.
    static func addCredentials(_ credentials: [String: String], to headers: inout [String: String]) {
        for (name, value) in credentials.sorted(by: { $0.key < $1.key }) {
            if let existing = headers.keys.first(where: { $0.lowercased() == name.lowercased() }) {
                if name.lowercased() == "cookie" { headers[existing] = headers[existing]! + "; " + value }
                continue
            }
            headers[name] = value
        }
    }
}
