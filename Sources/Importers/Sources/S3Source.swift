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

    public func chunks(of key: String) -> AsyncThrowingStream<[UInt8], any Error> {
        let (client, failure, bucket) = (self.client, self.failure, settings.bucket)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    guard let client else { throw failure! }
                    for try await buffer in try await client.getObject(bucket: bucket, key: key) {
                        continuation.yield(Array(buffer.readableBytesView))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
