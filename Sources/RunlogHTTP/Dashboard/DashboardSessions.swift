import Crypto
import Foundation
import Synchronization

/// The dashboard's sign-in sessions, in this server's memory: a random token (the cookie) names the
/// API key that signed in, the session's CSRF token and its expiry. A session ends when it expires,
/// when it signs out, or when its key is revoked (checked on every request); a restart ends them
/// all. Several nodes on one database each keep their own (a browser stays on the node it signed
/// in to).
final class DashboardSessions: Sendable {
    struct Session: Sendable {
        let token: String
        let keyId: String
        /// Sent back in every form (`csrf`) and checked on every POST.
        let csrf: String
        let expires: ContinuousClock.Instant
    }

    /// How long a session lasts after signing in.
    let lifetime: Duration
    /// Sessions kept at most; signing in past it ends the oldest.
    let capacity: Int
    private let sessions = Mutex<[String: Session]>([:])

    init(lifetime: Duration = .seconds(8 * 3_600), capacity: Int = 10_000, perKey: Int = 20) {
        self.lifetime = lifetime
        self.capacity = capacity
        self.perKey = perKey
    }

    /// Sessions one key may hold at once; signing in past it ends that key's oldest (so one key
    /// signing in again and again never ends anyone else's session).
    let perKey: Int

    /// A new session for `keyId`.
    func start(keyId: String) -> Session {
        let now = ContinuousClock.now
        let session = Session(token: Self.randomToken(), keyId: keyId, csrf: Self.randomToken(), expires: now + lifetime)
        sessions.withLock { sessions in
            let own = sessions.values.filter { $0.keyId == keyId }.sorted { $0.expires < $1.expires }
            for old in own.prefix(max(0, own.count - perKey + 1)) { sessions[old.token] = nil }
            if sessions.count >= capacity {
                sessions = sessions.filter { $0.value.expires > now }
                while sessions.count >= capacity, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                    sessions[oldest.key] = nil
                }
            }
            sessions[session.token] = session
        }
        return session
    }

    /// The live session of `token`, if any (an expired one is forgotten).
    func session(_ token: String) -> Session? {
        sessions.withLock { sessions in
            guard let session = sessions[token] else { return nil }
            guard session.expires > ContinuousClock.now else {
                sessions[token] = nil
                return nil
            }
            return session
        }
    }

    func end(_ token: String) {
        _ = sessions.withLock { $0.removeValue(forKey: token) }
    }

    var count: Int { sessions.withLock { $0.count } }

    /// 32 random bytes, hex.
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
    }

    /// Compares two tokens in time that does not depend on where they differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A flag shared by the copies of a value type (the API struct): one verification at a time.
final class SharedFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    /// Sets the flag; false when it was set already.
    func take() -> Bool {
        flag.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    func release() {
        flag.store(false, ordering: .releasing)
    }
}
