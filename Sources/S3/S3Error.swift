/// A request S3 refused or answered in a way the client could not use, with the bucket and key it was about.
///
/// S3 answers a failed request with an HTTP status and an XML body naming an error code
/// (`<Error><Code>NoSuchKey</Code><Message>…</Message></Error>`); both are kept.
public struct S3Error: Error, Sendable {
    /// An S3 error code, such as `NoSuchKey`. Codes are open-ended strings, so this is not an enum.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The code as S3 spells it.
        public var rawValue: String
        /// A code from its spelling.
        public init(rawValue: String) { self.rawValue = rawValue }
        init(_ rawValue: String) { self.rawValue = rawValue }
        /// The spelling.
        public var description: String { rawValue }

        /// The key does not exist in the bucket.
        public static let noSuchKey = Code("NoSuchKey")
        /// The bucket does not exist.
        public static let noSuchBucket = Code("NoSuchBucket")
        /// The signature the server computed differs from the one sent: a wrong secret, or a signing bug.
        public static let signatureDoesNotMatch = Code("SignatureDoesNotMatch")
        /// The key id is unknown to the server.
        public static let invalidAccessKeyId = Code("InvalidAccessKeyId")
        /// The credentials are valid but not allowed to do this.
        public static let accessDenied = Code("AccessDenied")
        /// The bucket exists and belongs to this account already.
        public static let bucketAlreadyOwnedByYou = Code("BucketAlreadyOwnedByYou")
        /// The client's own code for an answer it could not read (a status without an XML error, a malformed body).
        public static let invalidResponse = Code("InvalidResponse")
        /// The client's own code for an endpoint URL it cannot use.
        public static let invalidEndpoint = Code("InvalidEndpoint")
        /// The client's own code for a request that got no answer (connection refused, timeout, TLS failure);
        /// the transport's error is the ``S3Error/cause``.
        public static let requestFailed = Code("RequestFailed")
    }

    /// The HTTP status of the answer; `nil` when the error was found before any request was sent.
    public var status: Int?
    /// The S3 error code.
    public var code: Code
    /// S3's message, or the client's own when S3 sent none.
    public var message: String
    /// The operation, such as `GetObject`.
    public var operation: String
    /// The bucket the request was about, if any.
    public var bucket: String?
    /// The key the request was about, if any.
    public var key: String?
    /// S3's request id, for support cases.
    public var requestId: String?
    /// The underlying error, for ``Code/requestFailed``.
    public var cause: (any Error)?

    /// An error from its parts.
    public init(status: Int?, code: Code, message: String, operation: String, bucket: String? = nil,
                key: String? = nil, requestId: String? = nil, cause: (any Error)? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.requestId = requestId
        self.cause = cause
    }
}

extension S3Error: CustomStringConvertible {
    /// `S3 GetObject s3://bucket/key failed: 404 NoSuchKey: The specified key does not exist.`; a request that got
    /// no answer leads with the client's plain message:
    /// `cannot connect to S3 endpoint http://127.0.0.1:9 (connection refused), for S3 GetObject s3://bucket/key`.
    public var description: String {
        var target = ""
        if let bucket { target = " s3://\(bucket)/\(key ?? "")" }
        if code == .requestFailed && status == nil { return "\(message), for S3 \(operation)\(target)" }
        let status = status.map { "\($0) " } ?? ""
        return "S3 \(operation)\(target) failed: \(status)\(code.rawValue): \(message)"
    }
}
