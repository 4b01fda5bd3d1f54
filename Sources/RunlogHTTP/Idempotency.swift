import HTTPTypes
import Crypto
import EventStore
import Foundation
import Hummingbird
import Synchronization
import Workflows

/// `Idempotency-Key` on a POST: the first answer is kept (durably, in the store's request table)
/// and a retry with the same key gets it again without running the command, also after a
/// restart. Keys are scoped to the API key that sent them. A retry with a different method,
/// path or body is refused (422); one that arrives while the first is still running gets 409.
final class IdempotencyCache: Sendable {
    private let store: EventStore
    private let inFlight = Mutex(Set<String>())

    init(store: EventStore) {
        self.store = store
    }

    struct Stored {
        var fingerprint: String
        var status: Int
        var headers: [String: String]
        var body: String
    }

    static func fingerprint(method: String, path: String, body: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("\(method) \(path)\n".utf8))
        hasher.update(data: body)
        return hexString(hasher.finalize())
    }

    /// Runs `command` once per (API key, idempotency key): a repeat answers what the first did.
    func run(
        keyId: String,
        idempotencyKey: String,
        fingerprint: String,
        _ command: () async throws -> Answer
    ) async throws -> Answer {
        guard !idempotencyKey.isEmpty, idempotencyKey.utf8.count <= 255 else {
            throw APIError.badRequest("Idempotency-Key must be 1 to 255 bytes", field: "Idempotency-Key",
                                      value: idempotencyKey)
        }
        let name = "idem/\(keyId)/\(idempotencyKey)"
        if let stored = try lookup(name) { return try replay(stored, fingerprint: fingerprint, key: idempotencyKey) }
        guard inFlight.withLock({ $0.insert(name).inserted }) else {
            throw APIError(.conflict, "idempotency_in_progress",
                           "a request with Idempotency-Key \(idempotencyKey) is still being processed; retry later")
        }
        defer { _ = inFlight.withLock { $0.remove(name) } }
        // It may have finished between the lookup and the claim.
        if let stored = try lookup(name) { return try replay(stored, fingerprint: fingerprint, key: idempotencyKey) }
        do {
            let answer = try await command()
            await save(name, fingerprint, answer)
            return answer
        } catch let error as APIError where error.status.code < 500 {
            // A refusal is an answer too: the retry gets the same one.
            await save(name, fingerprint, Answer(error))
            throw error
        }
    }

    private func lookup(_ name: String) throws -> Stored? {
        guard let bytes = try store.requestRecord(name), let json = try? JSONValue(parsing: bytes),
              let fingerprint = json["fingerprint"]?.stringValue, case .integer(let status)? = json["status"],
              let body = json["body"]?.stringValue else { return nil }
        var headers: [String: String] = [:]
        for (name, value) in json["headers"]?.objectValue ?? [:] { headers[name] = value.stringValue }
        return Stored(fingerprint: fingerprint, status: Int(status), headers: headers, body: body)
    }

    private func replay(_ stored: Stored, fingerprint: String, key: String) throws -> Answer {
        guard stored.fingerprint == fingerprint else {
            throw APIError(.unprocessableContent, "idempotency_key_reused",
                           "Idempotency-Key \(key) was used for a different request (method, path or body)",
                           field: "Idempotency-Key", value: key)
        }
        var fields = HTTPFields()
        for (name, value) in stored.headers {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        fields[Self.replayed] = "true"
        return Answer(status: HTTPResponse.Status(code: stored.status), headers: fields, body: stored.body)
    }

    private func save(_ name: String, _ fingerprint: String, _ answer: Answer) async {
        var headers: [String: JSONValue] = [:]
        for field in answer.headers where Self.keptHeaders.contains(field.name) {
            headers[field.name.canonicalName] = .string(field.value)
        }
        let record: JSONValue = ["fingerprint": .string(fingerprint), "status": .integer(Int64(answer.status.code)),
                                 "headers": .object(headers), "body": .string(answer.body)]
        // When this fails the command still took effect; only a later replay is lost, so the
        // answer goes out rather than an error.
        try? await store.putRequestRecord(name, Array(record.jsonText.utf8))
    }

    static let keptHeaders: Set<HTTPField.Name> = [.contentType, .eTag, .location, .retryAfter]
    static let replayed = HTTPField.Name("Idempotent-Replayed")!
}
