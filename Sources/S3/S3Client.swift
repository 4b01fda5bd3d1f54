public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One object of a listing.
public struct S3Object: Sendable, Hashable {
    /// The object's key.
    public var key: String
    /// Its size in bytes.
    public var size: Int
    /// When it was last written, as S3 gives it (ISO 8601, such as `2026-11-23T01:53:08.000Z`).
    public var lastModified: String
    /// Its entity tag, quotes included as S3 sends them (`"5d41402abc4b2a76b9719d911017c592"`).
    public var eTag: String

    /// An object from its parts.
    public init(key: String, size: Int, lastModified: String, eTag: String) {
        self.key = key
        self.size = size
        self.lastModified = lastModified
        self.eTag = eTag
    }
}

/// One page of a listing, and where the next one starts.
public struct S3ObjectPage: Sendable, Hashable {
    /// The objects of this page, in key order.
    public var objects: [S3Object]
    /// The token that asks for the next page; `nil` on the last one.
    public var nextContinuationToken: String?

    /// A page from its parts.
    public init(objects: [S3Object], nextContinuationToken: String?) {
        self.objects = objects
        self.nextContinuationToken = nextContinuationToken
    }
}

/// A client for S3 and S3-compatible stores: lists a prefix, streams an object, and writes objects and buckets.
///
/// Every request is signed with AWS Signature Version 4 (``SigV4Signer``) and sent with async-http-client.
/// Failed requests throw ``S3Error`` with S3's error code, the bucket and the key.
public final class S3Client: Sendable {
    /// The region requests are signed for.
    public let region: String
    /// The base URL requests go to, such as `https://s3.us-east-1.amazonaws.com`.
    public let endpoint: String
    /// Whether the bucket goes in the path rather than in the host name.
    public let pathStyle: Bool
    let signer: SigV4Signer
    let httpClient: HTTPClient
    let timeout: TimeAmount
    /// How long connecting may take (with `httpClient` the client's own setting applies).
    public let connectTimeout: Duration
    let base: Endpoint

    /// How long connecting to an endpoint may take by default: an endpoint that cannot be reached
    /// fails within this, not after the request's whole `timeout`.
    public static let defaultConnectTimeout: Duration = .seconds(5)

    /// A client for `endpoint` (AWS's regional endpoint when `nil`).
    ///
    /// - Parameters:
    ///   - pathStyle: whether buckets go in the path; defaults to `true` when an endpoint is given.
    ///   - httpClient: the HTTP client; by default one of this module's, which connects within `connectTimeout`
    ///     and does not retry a connection that failed (so an unreachable endpoint fails at once).
    ///   - timeout: how long a request may take until its answer's head arrives (a streamed body is not bounded).
    ///   - connectTimeout: how long connecting may take (ignored when `httpClient` is given).
    /// - Throws: ``S3Error`` with code `InvalidEndpoint` when the endpoint is not an `http` or `https` URL
    ///   with a host and no path.
    public init(credentials: S3Credentials, region: String = "us-east-1", endpoint: String? = nil,
                pathStyle: Bool? = nil, httpClient: HTTPClient? = nil, timeout: TimeAmount = .seconds(60),
                connectTimeout: Duration = S3Client.defaultConnectTimeout) throws {
        let url = endpoint ?? S3Location.awsEndpoint(region: region)
        guard let base = Endpoint(url) else {
            throw S3Error(status: nil, code: .invalidEndpoint,
                          message: "the endpoint \(url) is not an http(s) URL with a host and no path",
                          operation: "Connect")
        }
        self.region = region
        self.endpoint = url
        self.base = base
        self.pathStyle = pathStyle ?? (endpoint != nil)
        self.signer = SigV4Signer(credentials: credentials, region: region)
        self.httpClient = httpClient ?? S3HTTPClients.client(connectTimeout: TimeAmount(connectTimeout))
        self.timeout = timeout
        self.connectTimeout = connectTimeout
    }

    /// A client for `location`'s region, endpoint and addressing style.
    public convenience init(location: S3Location, credentials: S3Credentials, httpClient: HTTPClient? = nil,
                            timeout: TimeAmount = .seconds(60),
                            connectTimeout: Duration = S3Client.defaultConnectTimeout) throws {
        try self.init(credentials: credentials, region: location.region, endpoint: location.endpoint,
                      pathStyle: location.pathStyle, httpClient: httpClient, timeout: timeout,
                      connectTimeout: connectTimeout)
    }

    // MARK: - Reading

    /// Every object whose key starts with `prefix`, in key order, following continuation tokens page after page.
    ///
    /// - Parameter pageSize: the most keys per request (S3's `max-keys`; S3 sends at most 1,000 whatever is asked).
    public func listObjects(bucket: String, prefix: String = "", pageSize: Int? = nil) async throws -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            let page = try await listObjectsPage(bucket: bucket, prefix: prefix, continuationToken: token,
                                                 maxKeys: pageSize)
            objects += page.objects
            if let next = page.nextContinuationToken, next == token {
                // A server that hands back the token it was given would be followed forever.
                throw S3Error(status: nil, code: .invalidResponse,
                              message: "the listing repeated its continuation token \(next)",
                              operation: "ListObjectsV2", bucket: bucket, key: prefix)
            }
            token = page.nextContinuationToken
        } while token != nil
        return objects
    }

    /// One page of the objects whose key starts with `prefix` (ListObjectsV2), starting at `continuationToken`.
    public func listObjectsPage(bucket: String, prefix: String = "", continuationToken: String? = nil,
                                maxKeys: Int? = nil) async throws -> S3ObjectPage {
        var query: [(name: String, value: String)] = [("list-type", "2")]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let maxKeys { query.append(("max-keys", String(maxKeys))) }
        let operation = Operation(name: "ListObjectsV2", bucket: bucket, key: prefix, keyInPath: false)
        let response = try await send(operation, method: .GET, query: query)
        let body = try await collect(response.body, operation, status: response.status)
        guard let page = ListPage(xml: body) else {
            throw S3Error(status: Int(response.status.code), code: .invalidResponse,
                          message: "the answer is not a ListBucketResult: \(Self.excerpt(body))",
                          operation: operation.name, bucket: bucket, key: prefix)
        }
        if page.isTruncated && page.nextContinuationToken == nil {
            throw S3Error(status: Int(response.status.code), code: .invalidResponse,
                          message: "the listing is truncated but names no continuation token",
                          operation: operation.name, bucket: bucket, key: prefix)
        }
        return S3ObjectPage(objects: page.objects,
                            nextContinuationToken: page.isTruncated ? page.nextContinuationToken : nil)
    }

    /// Starts reading one object: returns once S3 has answered, with a body that is read chunk by chunk as it
    /// arrives and never held whole.
    ///
    /// - Throws: ``S3Error`` (`NoSuchKey`, `NoSuchBucket`, `AccessDenied`…) when S3 refuses.
    public func getObject(bucket: String, key: String) async throws -> S3ObjectStream {
        let operation = Operation(name: "GetObject", bucket: bucket, key: key)
        let response = try await send(operation, method: .GET)
        return S3ObjectStream(response: response)
    }

    /// One object's size, entity tag and last-modified time, without its body (HeadObject).
    ///
    /// - Throws: ``S3Error`` (`NotFound` for a missing key: a HEAD answer has no XML body to name the code).
    public func headObject(bucket: String, key: String) async throws -> S3Object {
        let operation = Operation(name: "HeadObject", bucket: bucket, key: key)
        let response = try await send(operation, method: .HEAD)
        let size = response.headers.first(name: "Content-Length").flatMap { Int($0) } ?? 0
        _ = try? await response.body.collect(upTo: 1 << 16)
        return S3Object(key: key, size: size, lastModified: response.headers.first(name: "Last-Modified") ?? "",
                        eTag: response.headers.first(name: "ETag") ?? "")
    }

    // MARK: - Writing

    /// Writes `body` as the object `key`, replacing any; returns its entity tag.
    @discardableResult
    public func putObject(bucket: String, key: String, body: [UInt8],
                          contentType: String = "application/octet-stream") async throws -> String? {
        let operation = Operation(name: "PutObject", bucket: bucket, key: key)
        let response = try await send(operation, method: .PUT, headers: [("content-type", contentType)], body: body)
        _ = try await collect(response.body, operation, status: response.status)
        return response.headers.first(name: "ETag")
    }

    /// Creates `bucket` in the client's region.
    public func createBucket(_ bucket: String) async throws {
        var body: [UInt8] = []
        // us-east-1 is the default location and takes no configuration; any other region must be named.
        if region != "us-east-1" {
            body = Array(("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>").utf8)
        }
        let operation = Operation(name: "CreateBucket", bucket: bucket, key: nil)
        let response = try await send(operation, method: .PUT, body: body.isEmpty ? nil : body)
        _ = try await collect(response.body, operation, status: response.status)
    }

    // MARK: - Requests

    /// What a request is about, for its path and its errors.
    struct Operation {
        var name: String
        var bucket: String
        /// The object's key, or a listing's prefix (which goes in the query, not the path).
        var key: String?
        var keyInPath = true
    }

    /// Signs and sends one request; returns the answer when its status is 2xx, and throws ``S3Error`` otherwise.
    func send(_ operation: Operation, method: HTTPMethod, query: [(name: String, value: String)] = [],
              headers extra: [(name: String, value: String)] = [], body: [UInt8]? = nil) async throws
        -> HTTPClientResponse {
        let target = target(operation, query: query)
        let payloadHash = body.map { SigV4Signer.sha256Hex($0) } ?? SigV4Signer.emptyPayloadSHA256
        let signed = signer.sign(SigV4Signer.Request(method: method.rawValue, path: target.path, query: query,
                                                     headers: [("host", target.host)] + extra,
                                                     payloadHash: payloadHash),
                                 date: Date())
        var request = HTTPClientRequest(url: target.url)
        request.method = method
        for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: timeout)
        } catch {
            throw S3Error(status: nil, code: .requestFailed, message: Self.transportMessage(error, endpoint: endpoint,
                                                                                           timeout: timeout,
                                                                                           connectTimeout: connectTimeout),
                          operation: operation.name, bucket: operation.bucket, key: operation.key, cause: error)
        }
        guard (200..<300).contains(response.status.code) else {
            let answer = try await response.body.collect(upTo: 1 << 20)
            throw Self.error(status: response.status, body: Array(answer.readableBytesView), operation)
        }
        return response
    }

    /// Where a request goes: the `Host` header, the unencoded path that is signed, and the URL, whose path and query
    /// are the canonical (signed) forms, so that what is signed is what is sent.
    func target(_ operation: Operation, query: [(name: String, value: String)])
        -> (host: String, path: String, url: String) {
        var host = base.hostHeader
        var path = base.path
        if pathStyle {
            path += "/" + operation.bucket
        } else {
            host = operation.bucket + "." + host
        }
        if operation.keyInPath, let key = operation.key { path += "/" + key }
        if path.isEmpty { path = "/" }
        let canonicalQuery = SigV4Signer.canonicalQuery(query)
        var url = "\(base.scheme)://\(host)\(SigV4Signer.canonicalURI(path))"
        if !canonicalQuery.isEmpty { url += "?" + canonicalQuery }
        return (host, path, url)
    }

    /// The body of a successful answer, whole (listing pages and the empty answers of writes).
    func collect(_ body: HTTPClientResponse.Body, _ operation: Operation, status: HTTPResponseStatus) async throws
        -> [UInt8] {
        do {
            return Array(try await body.collect(upTo: Self.maxCollectedBody).readableBytesView)
        } catch let error as NIOTooManyBytesError {
            throw S3Error(status: Int(status.code), code: .invalidResponse,
                          message: "the answer is larger than \(Self.maxCollectedBody) bytes (\(error))",
                          operation: operation.name, bucket: operation.bucket, key: operation.key)
        }
    }

    static let maxCollectedBody = 64 << 20

    /// The error of a non-2xx answer: S3's code and message from its XML body, or the status alone.
    static func error(status: HTTPResponseStatus, body: [UInt8], _ operation: Operation) -> S3Error {
        let parsed = ErrorBody(xml: body)
        let code = parsed.map { S3Error.Code(rawValue: $0.code) } ?? Self.codeForStatus(status)
        let message = parsed.map(\.message).flatMap { $0.isEmpty ? nil : $0 }
            ?? "HTTP \(status.code) \(status.reasonPhrase)" + (body.isEmpty ? "" : ": \(excerpt(body))")
        return S3Error(status: Int(status.code), code: code, message: message, operation: operation.name,
                       bucket: operation.bucket, key: operation.key, requestId: parsed?.requestId)
    }

    /// The usual code of a status, for answers without an XML body (such as those of HEAD requests).
    static func codeForStatus(_ status: HTTPResponseStatus) -> S3Error.Code {
        switch status.code {
        case 403: .accessDenied
        case 404: S3Error.Code(rawValue: "NotFound")
        default: .invalidResponse
        }
    }

    /// A failed request's transport error in plain words, naming the endpoint: `cannot connect to S3
    /// endpoint http://127.0.0.1:9 (connection refused)`, `no answer from S3 endpoint … within 60 s`.
    static func transportMessage(_ error: any Error, endpoint: String, timeout: TimeAmount,
                                 connectTimeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout:
                return "cannot connect to S3 endpoint \(endpoint) (no connection within \(seconds(TimeAmount(connectTimeout))))"
            case .deadlineExceeded, .readTimeout:
                return "no answer from S3 endpoint \(endpoint) within \(seconds(timeout))"
            case .remoteConnectionClosed:
                return "S3 endpoint \(endpoint) closed the connection before answering"
            default:
                return "the request to S3 endpoint \(endpoint) failed (\(error))"
            }
        }
        if let cause = connectFailure(error) {
            return "cannot connect to S3 endpoint \(endpoint) (\(cause))"
        }
        return "the request to S3 endpoint \(endpoint) failed (\(error))"
    }

    /// Why connecting failed, in plain words; nil when `error` is not a failure to connect.
    static func connectFailure(_ error: any Error) -> String? {
        switch error {
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return connectFailure(first.error) ?? "\(first.error)" }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return "the host name \(error.host) does not resolve"
            }
            return "no address to connect to"
        case let error as IOError:
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case EADDRNOTAVAIL: return "address not available"
            default: return String(cString: strerror(error.errnoCode)).lowercased()
            }
        case let error as ChannelError:
            if case .connectTimeout(let limit) = error {
                return "no connection within \(seconds(limit))"
            }
            return nil
        case is SocketAddressError:
            return "the host name does not resolve"
        default:
            return nil
        }
    }

    static func seconds(_ amount: TimeAmount) -> String {
        let ms = amount.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(Double(ms) / 1000) s"
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return body.count > 200 ? text + "…" : text
    }
}

/// The HTTP clients of S3 clients made without one: one per connect timeout, kept for the process's
/// life (as `HTTPClient.shared` is). A connection that cannot be made is not retried: the request
/// fails with the reason at once instead of retrying until its deadline.
enum S3HTTPClients {
    static let clients = Mutex<[Int64: HTTPClient]>([:])

    static func client(connectTimeout: TimeAmount) -> HTTPClient {
        clients.withLock { clients in
            if let client = clients[connectTimeout.nanoseconds] { return client }
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = connectTimeout
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[connectTimeout.nanoseconds] = client
            return client
        }
    }
}

/// The scheme, host and port of an endpoint URL.
struct Endpoint: Sendable {
    var scheme: String
    /// `host` or `host:port` (the port only when it is not the scheme's default), as sent in `Host`.
    var hostHeader: String
    /// Always empty: endpoints with a path are refused, because S3 signs the path as sent.
    var path: String

    init?(_ string: String) {
        guard let url = URL(string: string), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil,
              url.path.isEmpty || url.path == "/" else { return nil }
        self.scheme = scheme
        let defaultPort = scheme == "https" ? 443 : 80
        let bracketed = host.contains(":") ? "[\(host)]" : host
        hostHeader = url.port.map { $0 == defaultPort ? bracketed : "\(bracketed):\($0)" } ?? bracketed
        path = ""
    }
}

/// An object's content as it arrives: an asynchronous sequence of byte chunks, never held whole.
///
/// Iterate it once with `for try await chunk in stream`. A body that is not read to the end keeps its
/// connection busy until the stream is released.
public struct S3ObjectStream: AsyncSequence, Sendable {
    /// A chunk of the object's bytes, as it came off the connection.
    public typealias Element = ByteBuffer
    let body: HTTPClientResponse.Body
    /// The object's size from `Content-Length`, when S3 sent it.
    public let contentLength: Int?
    /// The object's entity tag.
    public let eTag: String?
    /// The object's `Content-Type`.
    public let contentType: String?
    /// When the object was last written, as the `Last-Modified` header gives it.
    public let lastModified: String?

    init(response: HTTPClientResponse) {
        body = response.body
        contentLength = response.headers.first(name: "Content-Length").flatMap { Int($0) }
        eTag = response.headers.first(name: "ETag")
        contentType = response.headers.first(name: "Content-Type")
        lastModified = response.headers.first(name: "Last-Modified")
    }

    /// Reads the chunks one after the other.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: HTTPClientResponse.Body.AsyncIterator

        /// The next chunk, or `nil` at the end of the object.
        public mutating func next() async throws -> ByteBuffer? {
            try await inner.next()
        }
    }

    /// An iterator over the chunks.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator())
    }

    /// The whole object as bytes, for small objects only; throws when it is larger than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> [UInt8] {
        Array(try await body.collect(upTo: maxBytes).readableBytesView)
    }
}
