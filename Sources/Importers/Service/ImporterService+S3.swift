import Crypto
import S3
import RunlogJSON
import EventLog
import Foundation
import WorkflowModel
import Workflows

/// Reads the objects of an S3 data source. The importer service is given one per data source.
public protocol S3ObjectSource: Sendable {
    /// The keys to read, in order: the one key, or every key under the prefix.
    func keys() async throws -> [String]
    /// The keys to read with their sizes in bytes when known (for the progress's `bytes_total`).
    func objects() async throws -> [S3SourceObject]
    /// One object's bytes, streamed: each chunk is read when the importer asks for it, so a
    /// reader never runs ahead of the rows being recorded (no object is held whole in memory).
    func chunks(of key: String) -> ObjectChunks
}

/// One object of an S3 data source and its size in bytes (nil when unknown).
public struct S3SourceObject: Sendable, Hashable {
    public var key: String
    public var size: Int?

    public init(key: String, size: Int?) {
        self.key = key
        self.size = size
    }
}

extension S3ObjectSource {
    /// The keys to read with their sizes; by default the keys with unknown sizes.
    public func objects() async throws -> [S3SourceObject] {
        try await keys().map { S3SourceObject(key: $0, size: nil) }
    }
}

/// The bytes of one object of a data source, in chunks, read as they are asked for.
public typealias ObjectChunks = any AsyncSequence<[UInt8], any Error> & Sendable

extension ImporterService {
    static func vaultEntry(_ dataSourceId: String) -> String { "datasource/\(dataSourceId)" }

    /// The credentials of an S3 data source, from the vault: sealed, or in clear as versions
    /// before sealing kept them.
    func credentials(of dataSourceId: String) throws -> S3Secret {
        guard let bytes = try store.vaultEntry(Self.vaultEntry(dataSourceId)),
              let json = try? JSONValue(parsing: bytes) else {
            throw WorkflowError(.storage, "the credentials of data source \(dataSourceId) are missing from the vault")
        }
        if let clear = S3Secret(json: json) { return clear }
        guard let sealed = json["sealed"]?.stringValue else {
            throw WorkflowError(.storage,
                                "the credentials of data source \(dataSourceId) in the vault are not readable")
        }
        guard let secrets else {
            throw WorkflowError(.storage, "this importer service has no secret key to open S3 credentials with")
        }
        guard let text = try? secrets.open(sealed, context: S3Secret.sealContext(dataSourceId)),
              let opened = try? JSONValue(parsing: Array(text.utf8)), let secret = S3Secret(json: opened) else {
            throw WorkflowError(.storage, "the credentials of data source \(dataSourceId) cannot be decrypted with "
                                + "this server's secret key (was \(SecretBox.environmentVariable) or "
                                + "\(SecretBox.keyFileName) changed?)")
        }
        return secret
    }

    /// Seals the S3 credentials that versions before sealing kept in clear in the vault. One that
    /// fails stays readable and is sealed on a later start.
    func sealClearCredentials() async {
        guard let secrets else { return }
        for source in state.dataSources.values where source.kind == .s3 {
            guard let bytes = try? store.vaultEntry(Self.vaultEntry(source.id)),
                  let json = try? JSONValue(parsing: bytes), let clear = S3Secret(json: json) else { continue }
            let sealed = clear.sealed(with: secrets, dataSource: source.id)
            try? await store.putVaultEntry(Self.vaultEntry(source.id), sealed)
        }
    }
}

/// S3 credentials as kept in the vault: sealed, `{"sealed": base64 of AES-GCM}` (see `SecretBox`).
public struct S3Secret: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    init?(json: JSONValue) {
        guard let id = json["accessKeyId"]?.stringValue, let secret = json["secretAccessKey"]?.stringValue else { return nil }
        self.init(accessKeyId: id, secretAccessKey: secret, sessionToken: json["sessionToken"]?.stringValue)
    }

    var json: JSONValue {
        var o: [String: JSONValue] = ["accessKeyId": .string(accessKeyId), "secretAccessKey": .string(secretAccessKey)]
        if let sessionToken { o["sessionToken"] = .string(sessionToken) }
        return .object(o)
    }

    public var description: String { "S3Secret(accessKeyId: \(accessKeyId), secretAccessKey: ***)" }

    /// The fields whose values an error never shows.
    public static let maskedFields: Set<String> = ["credentials.secret_access_key", "credentials.session_token"]

    /// What the sealed credentials of a data source are bound to: they open only as its own.
    static func sealContext(_ dataSourceId: String) -> String { "runlog-datasource/\(dataSourceId)/credentials" }

    /// The vault entry: `{"sealed": …}`, the credentials' JSON sealed under `box`.
    func sealed(with box: SecretBox, dataSource id: String) -> [UInt8] {
        JSONValue.object(["sealed": .string(box.seal(json.jsonText, context: Self.sealContext(id)))]).jsonBytes
    }
}

/// The S3 reader of a build without an S3 client.
public struct UnavailableS3: S3ObjectSource {
    public init() {}
    public func keys() async throws -> [String] {
        throw WorkflowError(.storage, "this build has no S3 client")
    }
    public func chunks(of key: String) -> ObjectChunks {
        AsyncThrowingStream<[UInt8], any Error> { $0.finish(throwing: WorkflowError(.storage, "this build has no S3 client")) }
    }
}
