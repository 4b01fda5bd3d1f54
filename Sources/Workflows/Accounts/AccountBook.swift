public import WorkflowModel
import RunlogJSON
public import EventLog
import Foundation
import Synchronization

/// An integration account as stored: plain name and username, secrets sealed by the `SecretBox`.
public struct AccountRecord: Sendable, Hashable {
    public var uid: String
    public var projectId: String
    public var integrationUid: String
    public var name: String
    public var username: String?
    /// Sealed (base64), never clear.
    public var apiKey: String?
    public var password: String?
    public var cookies: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The version of the account's stream.
    public var version: UInt64
}

/// `account.saved.v1` in the stream `account-<uid>`: the whole account after a change, its secrets
/// only as AES-GCM ciphertext.
public struct AccountSaved: Codable, Sendable, Hashable {
    public var accountUid: String
    public var projectId: String
    public var integrationUid: String
    public var name: String
    public var username: String?
    public var apiKey: SealedData?
    public var password: SealedData?
    /// Cookie name → sealed value.
    public var cookies: [String: SealedData]
}

/// What a client sends to add or update an account. For each field nil keeps it, `.some(nil)`
/// clears it; for cookies, each named cookie is set (or removed when nil) and the others kept.
public struct AccountChange: Sendable {
    public var uid: String?
    public var name: String?
    public var username: String??
    public var apiKey: String??
    public var password: String??
    public var cookies: [String: String?]

    public init(uid: String? = nil, name: String? = nil, username: String?? = nil, apiKey: String?? = nil,
                password: String?? = nil, cookies: [String: String?] = [:]) {
        self.uid = uid
        self.name = name
        self.username = username
        self.apiKey = apiKey
        self.password = password
        self.cookies = cookies
    }
}

/// Integration accounts (seed 001), kept current from the log, with their secrets sealed. Also
/// the engine's `CredentialProvider`: an account's secrets are opened only to build the headers
/// of the outbound request that uses them.
public final class AccountBook: CredentialProvider, Sendable {
    public static let savedType = "account.saved.v1"
    public static func stream(_ uid: String) -> String { "account-" + uid }

    public let store: any EventStore
    let box: SecretBox
    private let accounts = Mutex([String: AccountRecord]())

    /// Reads every account event of `store`.
    public convenience init(store: any EventStore, box: SecretBox) throws {
        let replay = LogReplay()
        self.init(store: store, box: box, registeringWith: replay)
        try replay.run(store)
    }

    /// Folds the account events of a start-up replay: empty until `replay` runs.
    public init(store: any EventStore, box: SecretBox, registeringWith replay: LogReplay) {
        self.store = store
        self.box = box
        replay.register(types: [Self.savedType]) { [unowned self] view in apply(view.decode()) }
    }

    /// Folds one event in (other types are ignored; an older version of an account never replaces a newer one).
    public func apply(_ event: RecordedEvent) {
        guard event.type == Self.savedType,
              let e = try? JSONDecoder().decode(AccountSaved.self, from: Data(event.payload)) else { return }
        accounts.withLock { accounts in
            let existing = accounts[e.accountUid]
            if let existing, existing.version >= event.streamVersion { return }
            accounts[e.accountUid] = AccountRecord(
                uid: e.accountUid, projectId: e.projectId, integrationUid: e.integrationUid, name: e.name,
                username: e.username, apiKey: e.apiKey?.sealed, password: e.password?.sealed,
                cookies: e.cookies.mapValues(\.sealed), createdAt: existing?.createdAt ?? event.recordedAt,
                updatedAt: event.recordedAt, version: event.streamVersion)
        }
    }

    /// The account `uid` of `project`, or nil.
    public func account(_ uid: String, project: String) -> AccountRecord? {
        accounts.withLock { $0[uid] }.flatMap { $0.projectId == project ? $0 : nil }
    }

    /// Every account, by project, integration and creation.
    public var all: [AccountRecord] {
        accounts.withLock { Array($0.values) }
            .sorted { ($0.projectId, $0.integrationUid, $0.createdAt, $0.uid) < ($1.projectId, $1.integrationUid, $1.createdAt, $1.uid) }
    }

    /// The accounts of an integration in a project, oldest first.
    public func accounts(integration: String, project: String) -> [AccountRecord] {
        accounts.withLock { Array($0.values) }
            .filter { $0.projectId == project && $0.integrationUid == integration }
            .sorted { ($0.createdAt, $0.uid) < ($1.createdAt, $1.uid) }
    }

    // MARK: Saving

    /// Adds an account (no uid) or changes the given fields of one (with its uid). Every bad field
    /// is named (secret values are never repeated in errors).
    public func save(_ change: AccountChange, integration: String, project: String,
                     actor: String?) async throws(WorkflowError) -> AccountRecord {
        try WorkflowEngine.validateObjectName("integration_uid", integration)
        try Self.validate(change)
        for _ in 0..<5 {
            var current: AccountRecord?
            let uid: String
            if let given = change.uid {
                guard let found = accounts.withLock({ $0[given] }), found.projectId == project,
                      found.integrationUid == integration else {
                    throw WorkflowError(.notFound, "account \(given) does not exist in integration \(integration) "
                                        + "of project \(project)")
                }
                current = found
                uid = given
            } else {
                uid = Ids.make("acc_")
            }
            let name = change.name ?? current?.name ?? ""
            guard !name.isEmpty else {
                throw WorkflowError(.invalid, "account.name is required for a new account",
                                    issues: [FieldIssue(field: "account.name", value: nil, rule: "is required for a new account")])
            }
            func sealed(_ field: String, _ given: String??, _ existing: String?) -> SealedData? {
                switch given {
                case .none: return existing.map(SealedData.init(sealed:))
                case .some(.none): return nil
                case .some(.some(let text)): return SealedData(sealed: box.seal(text, context: Self.context(uid, field)))
                }
            }
            var cookies = (current?.cookies ?? [:]).mapValues(SealedData.init(sealed:))
            for (cookie, value) in change.cookies {
                cookies[cookie] = value.map { SealedData(sealed: box.seal($0, context: Self.context(uid, "cookie/" + cookie))) }
            }
            let event = AccountSaved(
                accountUid: uid, projectId: project, integrationUid: integration, name: name,
                username: change.username ?? current?.username,
                apiKey: sealed("api_key", change.apiKey, current?.apiKey),
                password: sealed("password", change.password, current?.password), cookies: cookies)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let payload = Array((try? encoder.encode(event)) ?? Data("{}".utf8))
            let result: AppendResult
            do {
                result = try await store.append(
                    to: Self.stream(uid), expected: current.map { .exact($0.version) } ?? .noStream,
                    [NewEvent(type: Self.savedType, payload: payload, metadata: EventMetadata(actor: actor))])
            } catch {
                if error.code == .wrongExpectedVersion {
                    catchUp(uid)
                    continue
                }
                throw WorkflowError(appending: error)
            }
            for recorded in (try? store.readAll(from: result.firstPosition, limit: 1)) ?? [] { apply(recorded) }
            return accounts.withLock { $0[uid]! }
        }
        throw WorkflowError(.conflict, "account \(change.uid ?? "") is being changed by other requests; try again")
    }

    private func catchUp(_ uid: String) {
        for event in (try? store.readStream(Self.stream(uid))) ?? [] { apply(event) }
    }

    static func context(_ uid: String, _ field: String) -> String { "runlog-account/\(uid)/\(field)" }

    static func validate(_ change: AccountChange) throws(WorkflowError) {
        if let name = change.name, name.isEmpty || name.utf8.count > 200 {
            throw .invalid(field: "account.name", value: .string(name), rule: "must be 1 to 200 bytes")
        }
        func headerSafe(_ field: String, _ value: String??, secret: Bool) throws(WorkflowError) {
            guard case .some(.some(let text)) = value else { return }
            if text.isEmpty || text.utf8.count > 16_384
                || text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw WorkflowError(.invalid, "account.\(field) is invalid", issues: [FieldIssue(
                    field: "account.\(field)", value: secret ? nil : JSONValue.string(text).jsonText,
                    rule: "must be 1 to 16,384 bytes without control characters (line breaks, tabs)"
                        + (secret ? "; the value is not shown" : ""))])
            }
        }
        try headerSafe("username", change.username, secret: false)
        if case .some(.some(let username)) = change.username, username.contains(":") {
            throw .invalid(field: "account.username", value: .string(username), rule: "must not contain \":\" (basic auth)")
        }
        try headerSafe("api_key", change.apiKey, secret: true)
        try headerSafe("password", change.password, secret: true)
        for (cookie, value) in change.cookies.sorted(by: { $0.key < $1.key }) {
            let separators = Set("()<>@,;:\\\"/[]?={} \t".unicodeScalars)
            if cookie.isEmpty || cookie.utf8.count > 256
                || cookie.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F || separators.contains($0) }) {
                throw .invalid(field: "account.cookies", value: .string(cookie),
                               rule: "cookie names must be 1 to 256 characters of a cookie-name token (no spaces, ; , =)")
            }
            if case .some(let text) = value, text.unicodeScalars.contains(where: { $0 == ";" || $0 == "," }) {
                throw WorkflowError(.invalid, "account.cookies.\(cookie) is invalid", issues: [FieldIssue(
                    field: "account.cookies.\(cookie)", value: nil,
                    rule: "a cookie value must not contain ; or , (the value is not shown)")])
            }
            try headerSafe("cookies.\(cookie)", value.map { Optional($0) }, secret: true)
        }
    }

    // MARK: CredentialProvider

    public func headers(forAccount uid: String, project: String?) async throws(CredentialError) -> [String: String] {
        guard let account = accounts.withLock({ $0[uid] }), project == nil || account.projectId == project else {
            throw CredentialError("account \(uid) does not exist" + (project.map { " in project \($0)" } ?? ""))
        }
        do {
            var headers: [String: String] = [:]
            if let apiKey = account.apiKey {
                headers["Authorization"] = "Bearer " + (try box.open(apiKey, context: Self.context(uid, "api_key")))
            } else if let username = account.username, let password = account.password {
                let clear = try box.open(password, context: Self.context(uid, "password"))
                headers["Authorization"] = "Basic " + Data("\(username):\(clear)".utf8).base64EncodedString()
            }
            if !account.cookies.isEmpty {
                headers["Cookie"] = try account.cookies.sorted(by: { $0.key < $1.key }).map { name, sealed in
                    "\(name)=" + (try box.open(sealed, context: Self.context(uid, "cookie/" + name)))
                }.joined(separator: "; ")
            }
            return headers
        } catch {
            throw CredentialError("the secrets of account \(uid) cannot be decrypted with this server's secret key "
                                  + "(was \(SecretBox.environmentVariable) or \(SecretBox.keyFileName) changed?)")
        }
    }
}
