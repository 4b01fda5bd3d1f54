/// Where an importer reads from in S3 or an S3-compatible store: a bucket, a key or a prefix, and how to reach it.
///
/// With no endpoint the location is on AWS (`https://s3.REGION.amazonaws.com`) and is addressed virtual-host style
/// (`https://BUCKET.s3.REGION.amazonaws.com/KEY`); with an endpoint (MinIO, moto, Ceph…) it is path style
/// (`ENDPOINT/BUCKET/KEY`) unless told otherwise.
public struct S3Location: Sendable, Hashable {
    /// The bucket's name.
    public var bucket: String
    /// One object's key, or a prefix when the location names several objects (empty: the whole bucket).
    public var key: String
    /// The region requests are signed for, such as `us-east-1`.
    public var region: String
    /// The base URL of the service, such as `http://127.0.0.1:9000`, with no path.
    public var endpoint: String
    /// Whether the bucket goes in the path (`ENDPOINT/BUCKET/KEY`) rather than in the host name.
    public var pathStyle: Bool

    /// A location; `endpoint` defaults to AWS's regional endpoint, and `pathStyle` to whether an endpoint was given.
    public init(bucket: String, key: String = "", region: String = "us-east-1", endpoint: String? = nil,
                pathStyle: Bool? = nil) {
        self.bucket = bucket
        self.key = key
        self.region = region
        self.endpoint = endpoint ?? Self.awsEndpoint(region: region)
        self.pathStyle = pathStyle ?? (endpoint != nil)
    }

    /// AWS's endpoint for `region`.
    public static func awsEndpoint(region: String) -> String {
        "https://s3.\(region).amazonaws.com"
    }
}

extension S3Location: CustomStringConvertible {
    /// `s3://BUCKET/KEY`, followed by the endpoint when it is not AWS's.
    public var description: String {
        let url = "s3://\(bucket)/\(key)"
        return endpoint == Self.awsEndpoint(region: region) ? url : "\(url) at \(endpoint)"
    }
}

/// An access key that signs requests: an id, its secret and, for temporary credentials, a session token.
///
/// Its description names the key id only: the secret and the token never appear in logs or error messages.
public struct S3Credentials: Sendable, Hashable {
    /// The access key id, such as `AKIAIOSFODNN7EXAMPLE`.
    public var accessKeyId: String
    /// The secret access key; it signs, and is never sent.
    public var secretAccessKey: String
    /// The session token of temporary credentials (STS), sent as `x-amz-security-token`.
    public var sessionToken: String?

    /// Credentials from their parts.
    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

extension S3Credentials: CustomStringConvertible, CustomDebugStringConvertible {
    /// The key id with the secret redacted.
    public var description: String {
        "S3Credentials(accessKeyId: \(accessKeyId), secretAccessKey: <redacted>"
            + (sessionToken == nil ? ")" : ", sessionToken: <redacted>)")
    }

    /// The same as `description`, so that `debugPrint` and string interpolation in tests redact too.
    public var debugDescription: String { description }
}

extension S3Credentials: CustomReflectable {
    /// A mirror without the secret, so that `dump` and the test runner's value printing cannot show it.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": accessKeyId, "secretAccessKey": "<redacted>"],
               displayStyle: .struct)
    }
}
