public import WorkflowModel
import Crypto
public import RunlogJSON
public import EventLog
import Foundation

/// Seals object data with a per-object AES-256-GCM key kept in the store's vault, outside the
/// hash chain. Redacting an object deletes its key: its data in the log becomes unreadable
/// everywhere while the chain, which covers only ciphertext, still verifies.
public struct ObjectVault: Sendable {
    let store: any EventStore

    public init(store: any EventStore) { self.store = store }

    static func entryName(_ key: ObjectKey) -> String { "object-key/\(key.type)/\(key.token)" }

    /// The object's key, created on first use.
    func key(for object: ObjectKey) async throws -> SymmetricKey {
        if let bytes = try store.vaultEntry(Self.entryName(object)) { return SymmetricKey(data: bytes) }
        let key = SymmetricKey(size: .bits256)
        try await store.putVaultEntry(Self.entryName(object), key.withUnsafeBytes { Array($0) })
        return key
    }

    /// Seals `value` (as JSON) under the object's key.
    public func seal(_ value: JSONValue, for object: ObjectKey) async throws -> SealedData {
        try seal(value, with: try await key(for: object))
    }

    /// Seals `value` (as JSON) under `key`, an object's key from `key(for:)`.
    func seal(_ value: JSONValue, with key: SymmetricKey) throws -> SealedData {
        let box = try AES.GCM.seal(Data(value.jsonBytes), using: key)
        return SealedData(sealed: box.combined!.base64EncodedString())
    }

    /// Opens sealed data; nil when the object was redacted (its key is gone).
    public func open(_ data: SealedData, for object: ObjectKey) throws -> JSONValue? {
        guard let bytes = try store.vaultEntry(Self.entryName(object)),
              let combined = Data(base64Encoded: data.sealed) else { return nil }
        let box = try AES.GCM.SealedBox(combined: combined)
        let plain = try AES.GCM.open(box, using: SymmetricKey(data: bytes))
        return try JSONValue(parsing: plain)
    }

    /// Destroys the object's key.
    public func destroyKey(for object: ObjectKey) async throws {
        try await store.deleteVaultEntry(Self.entryName(object))
    }
}
