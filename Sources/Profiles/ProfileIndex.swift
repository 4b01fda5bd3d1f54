import RunlogJSON
import WorkflowModel
import Workflows

/// The profiles' data in the clear with the lookups matching needs: by profile email, by
/// subscription email, by phone, and per custom field by term. Kept by `BatchTasks`, refreshed
/// from the engine's objects before each task (objects whose revision changed are read again).
struct ProfileIndex: Sendable {
    private(set) var fields: [String: [String: JSONValue]] = [:]
    private var revisions: [String: Int] = [:]
    private var byEmail: [String: Set<String>] = [:]
    private var bySubscriptionEmail: [String: Set<String>] = [:]
    private var byPhone: [String: Set<String>] = [:]
    /// Field name → term → profiles, for the custom fields matched so far.
    private var custom: [String: [String: Set<String>]] = [:]

    /// Brings the index up to date with the engine's profile objects.
    mutating func refresh(from engine: WorkflowEngine) async {
        let current = await engine.objectRevisions(type: Profile.objectType)
        var changed: [String] = []
        for (token, revision) in current where revisions[token] != revision { changed.append(token) }
        // Keys copied out first: changing a dictionary while iterating it copies it whole.
        for token in Array(revisions.keys) where current[token] == nil { put(token, nil) }
        guard !changed.isEmpty else { return }
        let data = await engine.objectData(type: Profile.objectType, tokens: changed)
        for token in changed {
            put(token, data[token].flatMap { $0 }?.objectValue)
            revisions[token] = current[token]
        }
    }

    /// Sets (nil: removes) a profile's fields and its lookups.
    mutating func put(_ token: String, _ new: [String: JSONValue]?) {
        if let old = fields[token] {
            for email in Self.emails(old) { byEmail[email]?.remove(token) }
            for email in Self.subscriptionEmails(old) { bySubscriptionEmail[email]?.remove(token) }
            for phone in Self.phones(old) { byPhone[phone]?.remove(token) }
            for name in Array(custom.keys) {
                for term in old[name].map(Profile.terms) ?? [] { custom[name]?[term]?.remove(token) }
            }
        }
        fields[token] = new
        guard let new else {
            revisions[token] = nil
            return
        }
        for email in Self.emails(new) { byEmail[email, default: []].insert(token) }
        for email in Self.subscriptionEmails(new) { bySubscriptionEmail[email, default: []].insert(token) }
        for phone in Self.phones(new) { byPhone[phone, default: []].insert(token) }
        for name in Array(custom.keys) {
            for term in new[name].map(Profile.terms) ?? [] { custom[name]?[term, default: []].insert(token) }
        }
    }

    /// Builds the lookup of a custom field if it is not kept yet.
    mutating func indexCustom(_ name: String) {
        guard custom[name] == nil else { return }
        var lookup: [String: Set<String>] = [:]
        for (token, f) in fields { for term in f[name].map(Profile.terms) ?? [] { lookup[term, default: []].insert(token) } }
        custom[name] = lookup
    }

    /// The profiles a normalised matching value finds, in id order.
    func find(_ mode: Matching, _ key: String, fieldName: String?) -> [String] {
        let found: Set<String>
        switch mode {
        case .email: found = (byEmail[key] ?? []).union(bySubscriptionEmail[key] ?? [])
        case .emailProfile: found = byEmail[key] ?? []
        case .phone: found = byPhone[key] ?? []
        case .profileId: found = fields[key] == nil ? [] : [key]
        case .custom:
            // A combination of terms ("tag-1, tag-2") finds the profiles holding all of them.
            let lookup = custom[fieldName ?? ""] ?? [:]
            var result: Set<String>?
            for term in Profile.terms(.string(key)) {
                let holders = lookup[term] ?? []
                result = result.map { $0.intersection(holders) } ?? holders
            }
            found = result ?? []
        }
        return found.sorted()
    }

    /// The profiles whose fields satisfy `condition`, in id order.
    func query(_ condition: Condition) -> [String] {
        fields.filter { condition.matches(.object($0.value)) }.keys.sorted()
    }

    private static func emails(_ f: [String: JSONValue]) -> [String] {
        f["email"]?.stringValue.flatMap(Profile.normalizedEmail).map { [$0] } ?? []
    }

    private static func subscriptionEmails(_ f: [String: JSONValue]) -> [String] {
        (f["subscriptions"]?.arrayValue ?? []).compactMap { $0["email"]?.stringValue.flatMap(Profile.normalizedEmail) }
    }

    private static func phones(_ f: [String: JSONValue]) -> [String] {
        var texts: [String] = []
        for name in ["phone", "phones"] {
            guard let value = f[name] else { continue }
            texts += (value.arrayValue ?? [value]).compactMap(\.stringValue)
        }
        texts += (f["subscriptions"]?.arrayValue ?? []).compactMap { $0["phone"]?.stringValue }
        return texts.compactMap(Profile.normalizedPhone)
    }
}
