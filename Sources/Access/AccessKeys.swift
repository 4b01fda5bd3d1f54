// API keys and roles: who may do what. A module of its own so that the `runlog` tool manages keys
// on a data directory without the HTTP server, and the server authenticates with the same types.
import RunlogJSON
public import EventLog
import Crypto
import Foundation
import Synchronization
import WorkflowModel
import Workflows

/// What a key may do. `auditor` reads (the log included); `service` also sends commands;
/// `admin` may do everything, key management and reverts included.
public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
    case service, auditor, admin

    public func allows(_ permission: Permission) -> Bool {
        switch (self, permission) {
        case (.admin, _): true
        case (.service, .read), (.service, .write): true
        case (.auditor, .read): true
        default: false
        }
    }
}

/// What a route needs.
public enum Permission: String, Sendable {
    case read, write, admin
}

/// An API key as stored: its id, role and the SHA-256 of its secret (never the secret).
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var role: Role
    public var name: String
    /// Hex SHA-256 of the whole key text.
    public var hash: String
    public var createdAt: Int64
    public var createdBy: String?
    public var revokedAt: Int64?
}

/// The events of key management, in the stream `apikeys`.
public enum KeyEvent {
    public static let stream = "apikeys"
    public static let createdType = "apikey.created.v1"
    public static let revokedType = "apikey.revoked.v1"
    public static let types: Set<String> = [createdType, revokedType]

    /// A new key: the text to hand out once, and the event that records its hash.
    public static func make(role: Role, name: String) -> (key: String, id: String, event: NewEvent) {
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in secret.indices { secret[i] = generator.next() }
        let id = "key_" + UUID.timeOrdered().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let text = textPrefix + Data(secret).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let payload: JSONValue = ["keyId": .string(id), "role": .string(role.rawValue), "name": .string(name),
                                  "hash": .string(hash(text))]
        return (text, id, NewEvent(type: createdType, payload: payload.jsonBytes))
    }

    public static func revoked(_ id: String) -> NewEvent {
        NewEvent(type: revokedType, payload: JSONValue.object(["keyId": .string(id)]).jsonBytes)
    }

    /// How every key's text begins.
    public static let textPrefix = "rlk_"

    /// Hex SHA-256 of a key's text.
    public static func hash(_ key: String) -> String {
        hexString(SHA256.hash(data: Array(key.utf8)))
    }
}

/// The keys the server knows, kept current from the log. Lookups take a lock, not an actor hop:
/// every request does one.
public final class KeyRing: Sendable {
    private struct Keys {
        var byHash: [String: APIKeyRecord] = [:]
        var byId: [String: String] = [:]
        var position: UInt64 = 0
        /// The version of `KeyEvent.stream` folded in: a revoke expects it, so two revokes that
        /// each leave "another admin" cannot both commit.
        var streamVersion: UInt64 = 0
    }
    private let keys = Mutex(Keys())

    public init() {}

    /// Folds the key events of a start-up replay: empty until `replay` runs.
    public convenience init(registeringWith replay: LogReplay) {
        self.init()
        replay.register(types: KeyEvent.types) { [unowned self] view in apply(view.decode()) }
    }

    /// Reads every key event of `store`.
    public convenience init(store: any EventStore) throws {
        self.init()
        for event in try store.readAll(filter: EventFilter(types: KeyEvent.types), limit: .max) {
            apply(event)
        }
    }

    /// Folds one event in; events of other types are ignored.
    public func apply(_ event: RecordedEvent) {
        guard KeyEvent.types.contains(event.type), let payload = try? JSONValue(parsing: event.payload),
              let id = payload["keyId"]?.stringValue else { return }
        keys.withLock { keys in
            guard event.position > keys.position else { return }
            keys.position = event.position
            if event.stream == KeyEvent.stream { keys.streamVersion = max(keys.streamVersion, event.streamVersion) }
            switch event.type {
            case KeyEvent.createdType:
                guard let role = payload["role"]?.stringValue.flatMap(Role.init(rawValue:)),
                      let hash = payload["hash"]?.stringValue else { return }
                keys.byHash[hash] = APIKeyRecord(id: id, role: role, name: payload["name"]?.stringValue ?? "",
                                                 hash: hash, createdAt: event.recordedAt,
                                                 createdBy: event.metadata.actor)
                keys.byId[id] = hash
            default:
                if let hash = keys.byId[id] { keys.byHash[hash]?.revokedAt = event.recordedAt }
            }
        }
    }

    /// The live key whose text is `key`, or nil.
    public func authenticate(_ key: String) -> APIKeyRecord? {
        let hash = KeyEvent.hash(key)
        return keys.withLock { keys in
            guard let record = keys.byHash[hash], record.revokedAt == nil else { return nil }
            return record
        }
    }

    public func key(id: String) -> APIKeyRecord? {
        keys.withLock { keys in keys.byId[id].flatMap { keys.byHash[$0] } }
    }

    /// The version of the keys' stream folded in so far.
    public var streamVersion: UInt64 { keys.withLock { $0.streamVersion } }

    /// Live admin keys other than `id`.
    public func otherLiveAdmins(than id: String) -> Int {
        keys.withLock { keys in keys.byHash.values.count { $0.role == .admin && $0.revokedAt == nil && $0.id != id } }
    }

    /// Every key, oldest first.
    public var all: [APIKeyRecord] {
        keys.withLock { Array($0.byHash.values) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }
}

/// Lower-case hex of `bytes` (`String(format:)` per byte showed up in request profiles).
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
