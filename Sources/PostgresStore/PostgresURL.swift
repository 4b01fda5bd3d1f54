public import EventLog
import Foundation

/// A store URL: `postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]…]/DATABASE[?schema=NAME]`.
/// Several hosts are a primary and its standbys: the log works on whichever is the primary.
public struct PostgresURL: Sendable, Hashable {
    /// One server of the host list.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var endpoints: [Endpoint]
    public var user: String
    public var password: String?
    public var database: String?
    /// The `schema` parameter, when given.
    public var schema: String?

    static let form = "postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]…]/DATABASE"

    public init(_ url: String) throws(EventStoreError) {
        func refuse(_ why: String) -> EventStoreError {
            EventStoreError(.invalidArgument, "a PostgreSQL store is a URL \(Self.form): \(why)", field: "store",
                            value: Self.withoutPassword(url))
        }
        guard let split = Self.split(url), ["postgres", "postgresql"].contains(split.scheme.lowercased()) else {
            throw refuse("it must start with postgres://")
        }
        guard let at = split.authority.lastIndex(of: "@") else { throw refuse("it names no user") }
        let userInfo = split.authority[..<at]
        let hosts = split.authority[split.authority.index(after: at)...]
        let userPart = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        user = String(userPart[0]).removingPercentEncoding ?? String(userPart[0])
        password = userPart.count > 1 ? (String(userPart[1]).removingPercentEncoding ?? String(userPart[1])) : nil
        guard !user.isEmpty else { throw refuse("it names no user") }
        var endpoints: [Endpoint] = []
        for entry in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard let endpoint = Self.endpoint(entry) else { throw refuse("\"\(entry)\" is not HOST[:PORT]") }
            endpoints.append(endpoint)
        }
        guard !endpoints.isEmpty else { throw refuse("it names no host") }
        self.endpoints = endpoints
        let database = split.path.drop(while: { $0 == "/" })
        self.database = database.isEmpty ? nil : (String(database).removingPercentEncoding ?? String(database))
        var schema: String?
        for item in split.query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair[0] == "schema" else {
                throw EventStoreError(.invalidArgument, "a store URL takes one parameter, schema; \(pair[0]) is unknown",
                                      field: "store", value: Self.withoutPassword(url))
            }
            schema = pair.count > 1 ? String(pair[1]) : ""
        }
        self.schema = schema
    }

    /// `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`; the port defaults to 5432.
    private static func endpoint(_ text: Substring) -> Endpoint? {
        var host: Substring
        var rest: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            rest = text[text.index(after: close)...]
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            rest = text[colon...]
        } else {
            host = text
            rest = ""
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:".contains($0) }) else { return nil }
        var port = 5432
        if !rest.isEmpty {
            guard rest.first == ":", let number = Int(rest.dropFirst()), (1...65535).contains(number) else { return nil }
            port = number
        }
        return Endpoint(host: String(host), port: port)
    }

    /// The URL's scheme, authority (user info and hosts), path and query, split by hand: a host
    /// list is not a URL that `URLComponents` reads.
    private static func split(_ url: String) -> (scheme: Substring, authority: Substring, path: Substring, query: Substring)? {
        guard let marker = url.range(of: "://") else { return nil }
        let scheme = url[..<marker.lowerBound]
        let afterScheme = url[marker.upperBound...]
        // The query starts at the first "?" after the user info (a password may hold a "?").
        let hostsFrom = afterScheme.lastIndex(of: "@").map { afterScheme.index(after: $0) } ?? afterScheme.startIndex
        let queryStart = afterScheme[hostsFrom...].firstIndex(of: "?") ?? afterScheme.endIndex
        let beforeQuery = afterScheme[..<queryStart]
        let query = queryStart < afterScheme.endIndex ? afterScheme[afterScheme.index(after: queryStart)...] : ""
        // The path starts at the first "/" after the user info (a password may hold a "/").
        let hostsStart = beforeQuery.lastIndex(of: "@").map { beforeQuery.index(after: $0) } ?? beforeQuery.startIndex
        let pathStart = beforeQuery[hostsStart...].firstIndex(of: "/") ?? beforeQuery.endIndex
        return (scheme, beforeQuery[..<pathStart], beforeQuery[pathStart...], query)
    }

    /// `url` without its password, for messages (also when it does not parse).
    public static func withoutPassword(_ url: String) -> String {
        guard let split = split(url), let at = split.authority.lastIndex(of: "@"),
              let colon = split.authority[..<at].firstIndex(of: ":") else { return url }
        let start = url.startIndex
        let before = url[start..<colon]
        let after = url[at...]
        return String(before + after)
    }
}
