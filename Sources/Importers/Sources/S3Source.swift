import S3

/// An S3 data source read with the `S3` client: one key, or every key under the prefix in
/// listing order; each object streamed in chunks.
public struct S3ClientSource: S3ObjectSource {
    let client: S3Client?
    let failure: (any Error)?
    let settings: S3Settings

    public init(settings: S3Settings, secret: S3Secret) {
        self.settings = settings
        let credentials = S3Credentials(accessKeyId: secret.accessKeyId, secretAccessKey: secret.secretAccessKey,
                                        sessionToken: secret.sessionToken)
        do {
            client = try S3Client(credentials: credentials, region: settings.region, endpoint: settings.endpoint)
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
