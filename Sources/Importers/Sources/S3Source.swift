import S3

/// An S3 data source read with the `S3` client: one key, or every key under the prefix in
/// listing order; each object streamed in chunks.
public struct S3ClientSource: S3ObjectSource {
    let client: S3Client?
    let failure: (any Error)?
    let settings: S3Settings

    /// A reader of `settings`'s objects; connecting to the endpoint may take up to `connectTimeout`.
    public init(settings: S3Settings, secret: S3Secret, connectTimeout: Duration = .seconds(5)) {
        self.settings = settings
        let credentials = S3Credentials(accessKeyId: secret.accessKeyId, secretAccessKey: secret.secretAccessKey,
                                        sessionToken: secret.sessionToken)
        do {
            client = try S3Client(credentials: credentials, region: settings.region, endpoint: settings.endpoint,
                                  connectTimeout: connectTimeout)
            failure = nil
        } catch {
            client = nil
            failure = error
        }
    }

    public func keys() async throws -> [String] {
        guard let client else { throw failure! }
        if let key = settings.key { return [key] }
        return try await client.listObjects(bucket: settings.bucket, prefix: settings.prefix ?? "")
            .map(\.key).filter { !$0.hasSuffix("/") }
    }

    /// The objects with their sizes: from the listing, or for one key from a HEAD request (its size
    /// unknown when HEAD fails: the GET then reports why).
    public func objects() async throws -> [S3SourceObject] {
        guard let client else { throw failure! }
        if let key = settings.key {
            let size: Int?
            do {
                size = try await client.headObject(bucket: settings.bucket, key: key).size
            } catch let error as S3Error where error.status != nil {
                size = nil
            }
            return [S3SourceObject(key: key, size: size)]
        }
        return try await client.listObjects(bucket: settings.bucket, prefix: settings.prefix ?? "")
            .filter { !$0.key.hasSuffix("/") }.map { S3SourceObject(key: $0.key, size: $0.size) }
    }

    public func chunks(of key: String) -> ObjectChunks {
        S3ObjectChunks(client: client, failure: failure, bucket: settings.bucket, key: key)
    }
}

/// One object's body, requested on the first `next()` and then read chunk by chunk as the
/// importer asks: the connection's flow control holds the rest back meanwhile.
struct S3ObjectChunks: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let client: S3Client?
    let failure: (any Error)?
    let bucket: String
    let key: String

    struct AsyncIterator: AsyncIteratorProtocol {
        let source: S3ObjectChunks
        var body: S3ObjectStream.AsyncIterator?

        mutating func next() async throws -> [UInt8]? {
            if body == nil {
                guard let client = source.client else { throw source.failure! }
                body = try await client.getObject(bucket: source.bucket, key: source.key).makeAsyncIterator()
            }
            guard let buffer = try await body!.next() else { return nil }
            return Array(buffer.readableBytesView)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self, body: nil) }
}
