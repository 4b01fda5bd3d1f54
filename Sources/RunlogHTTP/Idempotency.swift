import RunlogJSON
import Access
import HTTPTypes
import Crypto
import EventLog
import Foundation
import Hummingbird
import Synchronization
import WorkflowModel
import Workflows

/// `Idempotency-Key` on a POST: the first answer is kept (durably, in the store's request table)
/// and a retry with the same key gets it again without running the command, also after a
/// restart. Keys are scoped to the API key that sent them. A retry with a different method,
/// path or body is refused (422); one that arrives while the first is still running gets 409.
///
/// The command's appends carry a mark (`RequestMark.current`) that the writer puts in the
/// request table in the same transaction as the events, and the answer replaces it once it is
/// known. The answer goes out after that one commit: it is queued for the writer's next commit
/// (with the appends waiting then) and held in memory until that commit is durable, so a retry
/// meanwhile gets it too. A crash before it is durable leaves the mark: a retry then gets 409
/// `idempotency_answer_lost` and the command is not run again, so no key ever records its
/// command twice.
///
/// Records carry the time they were written (`at`, UTC ms) and are kept `retention` long
/// (default 24 hours, nil: forever): an older one counts as absent, so a retry after that runs
/// the command again, and `sweep` deletes them.
final class IdempotencyCache: Sendable {
    private let store: any EventStore
    private let inFlight = Mutex(Set<String>())
    /// Kept answers queued for the writer and not yet durable.
    private let pending = Mutex(Pending())

    private struct Pending {
        /// The records by name.
        var records: [String: [UInt8]] = [:]
        /// Numbers of the writes queued and not yet durable (or failed), and the last number given.
        var outstanding: Set<UInt64> = []
        var last: UInt64 = 0
        /// `settle()` callers, each waiting for the writes up to its number.
        var waiters: [(upTo: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    }
    /// How long records are kept, in ms; nil: forever.
    let retention: Int64?
    private let now: @Sendable () -> Int64

    static let defaultRetentionHours = 24

    init(store: any EventStore, retentionHours: Int? = IdempotencyCache.defaultRetentionHours,
         now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = store
        self.retention = retentionHours.map { Int64($0) * 3_600_000 }
        self.now = now
    }

    struct Stored {
        var fingerprint: String
        /// nil for a mark: the command's events were recorded, its answer not (yet) kept.
        var answer: (status: Int, headers: [String: String], body: String)?
    }

    static func fingerprint(method: String, path: String, body: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("\(method) \(path)\n".utf8))
        hasher.update(data: body)
        return hexString(hasher.finalize())
    }

    /// Runs `command` once per (API key, idempotency key): a repeat answers what the first did,
    /// or, with `kept`, what `kept` makes of a successful first answer (one that shows a secret
    /// must not be stored as it is).
    func run(
        keyId: String,
        idempotencyKey: String,
        fingerprint: String,
        kept: (@Sendable (Answer) -> Answer)? = nil,
        _ command: () async throws -> Answer
    ) async throws -> Answer {
        guard !idempotencyKey.isEmpty, idempotencyKey.utf8.count <= 255 else {
            throw APIError.badRequest("Idempotency-Key must be 1 to 255 bytes", field: "Idempotency-Key",
                                      value: idempotencyKey)
        }
        let name = "idem/\(keyId)/\(idempotencyKey)"
        if let stored = try await lookup(name) {
            return try replay(stored, fingerprint: fingerprint, key: idempotencyKey, name: name)
        }
        guard inFlight.withLock({ $0.insert(name).inserted }) else { throw Self.inProgress(idempotencyKey) }
        defer { _ = inFlight.withLock { $0.remove(name) } }
        // It may have finished between the lookup and the claim.
        if let stored = try await lookup(name) {
            return try replay(stored, fingerprint: fingerprint, key: idempotencyKey, name: nil)
        }
        let mark = RequestMark(name: name, value: Array(JSONValue.object([
            "fingerprint": .string(fingerprint), "recorded": true, "at": .integer(now()),
        ]).jsonText.utf8))
        do {
            let answer = try await RequestMark.$current.withValue(mark) { try await command() }
            keep(name, fingerprint, kept?(answer) ?? answer)
            return answer
        } catch let error as APIError where error.status.code < 500 {
            // A refusal is an answer too: the retry gets the same one.
            keep(name, fingerprint, Answer(error))
            throw error
        }
    }

    private func lookup(_ name: String) async throws -> Stored? {
        guard let bytes = try pending.withLock({ $0.records[name] }) ?? store.requestRecord(name), let json = try? JSONValue(parsing: bytes),
              let fingerprint = json["fingerprint"]?.stringValue, !isExpired(json) else { return nil }
        guard case .integer(let status)? = json["status"], let body = json["body"]?.stringValue else {
            return json["recorded"] == true ? Stored(fingerprint: fingerprint, answer: nil) : nil
        }
        if let scrubbed = Self.withoutKeyText(json) {
            // Kept by a version that stored new keys' text: never answer it again, nor keep it.
            try? await store.putRequestRecord(name, scrubbed.jsonBytes)
            return Self.stored(scrubbed)
        }
        return Stored(fingerprint: fingerprint, answer: Self.stored(json)?.answer ?? (Int(status), [:], body))
    }

    private static func stored(_ json: JSONValue) -> Stored? {
        guard let fingerprint = json["fingerprint"]?.stringValue, case .integer(let status)? = json["status"],
              let body = json["body"]?.stringValue else { return nil }
        var headers: [String: String] = [:]
        for (name, value) in json["headers"]?.objectValue ?? [:] { headers[name] = value.stringValue }
        return Stored(fingerprint: fingerprint, answer: (Int(status), headers, body))
    }

    /// A record holding the answer to `POST /v1/keys` with the new key's text, as versions before
    /// this one kept it, made into what is kept now (`Answer.keyAlreadyCreated`); nil for any other.
    static func withoutKeyText(_ record: JSONValue) -> JSONValue? {
        guard let stored = stored(record), let answer = stored.answer,
              let body = try? JSONValue(parsing: Array(answer.body.utf8)),
              body["key"]?.stringValue?.hasPrefix(KeyEvent.textPrefix) == true,
              body["id"]?.stringValue?.hasPrefix("key_") == true else { return nil }
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        let kept = Answer.keyAlreadyCreated(Answer(status: HTTPResponse.Status(code: answer.status), headers: fields,
                                                   body: answer.body))
        var object = record.objectValue ?? [:]
        object["status"] = .integer(Int64(kept.status.code))
        object["body"] = .string(kept.body)
        let headers = kept.headers.filter { keptHeaders.contains($0.name) }
            .map { ($0.name.canonicalName, JSONValue.string($0.value)) }
        object["headers"] = .object(Dictionary(headers) { $1 })
        return .object(object)
    }

    /// The kept answer again. For a mark: 409, in progress while this process runs the command
    /// (`name` given and claimed), else answer lost (it ran before a crash, or failed after
    /// recording its events).
    private func replay(_ stored: Stored, fingerprint: String, key: String, name: String?) throws -> Answer {
        guard stored.fingerprint == fingerprint else {
            throw APIError(.unprocessableContent, "idempotency_key_reused",
                           "Idempotency-Key \(key) was used for a different request (method, path or body)",
                           field: "Idempotency-Key", value: key)
        }
        guard let answer = stored.answer else {
            if let name, inFlight.withLock({ $0.contains(name) }) { throw Self.inProgress(key) }
            throw APIError(.conflict, "idempotency_answer_lost",
                           "the request with Idempotency-Key \(key) was recorded, but its answer was not kept (the "
                           + "server stopped or failed before answering); it is not run again: read the result instead",
                           field: "Idempotency-Key", value: key)
        }
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        fields[Self.replayed] = "true"
        return Answer(status: HTTPResponse.Status(code: answer.status), headers: fields, body: answer.body)
    }

    static func inProgress(_ key: String) -> APIError {
        APIError(.conflict, "idempotency_in_progress",
                 "a request with Idempotency-Key \(key) is still being processed; retry later")
    }

    /// Keeps the answer: queued for the writer's next commit, and answered from memory until
    /// that commit is durable. When the write fails the command still took effect; only a later
    /// replay is lost (the mark stays), so the answer goes out rather than an error.
    private func keep(_ name: String, _ fingerprint: String, _ answer: Answer) {
        var headers: [String: JSONValue] = [:]
        for field in answer.headers where Self.keptHeaders.contains(field.name) {
            headers[field.name.canonicalName] = .string(field.value)
        }
        let record = JSONValue.object(["fingerprint": .string(fingerprint), "status": .integer(Int64(answer.status.code)),
                                       "headers": .object(headers), "body": .string(answer.body), "at": .integer(now())])
            .jsonBytes
        let number = pending.withLock { pending in
            pending.records[name] = record
            pending.last += 1
            pending.outstanding.insert(pending.last)
            return pending.last
        }
        let written: @Sendable (EventStoreError?) -> Void = { [self] _ in
            let settled = pending.withLock { pending in
                if pending.records[name] == record { pending.records[name] = nil }
                pending.outstanding.remove(number)
                let done = pending.outstanding.min().map { $0 - 1 } ?? pending.last
                let settled = pending.waiters.filter { $0.upTo <= done }.map(\.continuation)
                pending.waiters.removeAll { $0.upTo <= done }
                return settled
            }
            for waiter in settled { waiter.resume() }
        }
        do {
            try store.queueRequestRecord(name, record, whenDurable: written)
        } catch {
            written(error)
        }
    }

    /// Waits until the answers kept so far are durable (or their writes failed).
    func settle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = pending.withLock { pending in
                guard let first = pending.outstanding.min(), first <= pending.last else { return false }
                pending.waiters.append((pending.last, continuation))
                return true
            }
            if !waits { continuation.resume() }
        }
    }

    /// Whether a record is past the retention (one without `at`, from before records had it,
    /// counts as written at time 0).
    private func isExpired(_ json: JSONValue) -> Bool {
        guard let retention else { return false }
        let at: Int64
        if case .integer(let value)? = json["at"] { at = value } else { at = 0 }
        return now() - at > retention
    }

    /// Deletes the records past the retention, a page at a time, and rewrites those that still
    /// hold a new key's text (`withoutKeyText`); returns how many were deleted.
    @discardableResult
    func sweep(pageSize: Int = 1_000) async throws -> Int {
        await settle()
        var after: String?
        var deleted = 0
        repeat {
            let page = try store.requestRecords(after: after, limit: pageSize) { bytes -> JSONValue? in
                guard let json = try? JSONValue(parsing: Array(bytes)) else { return nil }
                return isExpired(json) ? .null : Self.withoutKeyText(json)
            }
            for (name, scrubbed) in page.records where scrubbed != .null {
                try await store.putRequestRecord(name, scrubbed.jsonBytes)
            }
            let names = page.records.filter { $0.value == .null }.map(\.name)
                .filter { name in !inFlight.withLock { $0.contains(name) } && pending.withLock { $0.records[name] == nil } }
            try await store.deleteRequestRecords(names)
            deleted += names.count
            after = page.last
        } while after != nil
        return deleted
    }

    static let keptHeaders: Set<HTTPField.Name> = [.contentType, .eTag, .location, .retryAfter]
    static let replayed = HTTPField.Name("Idempotent-Replayed")!
}
