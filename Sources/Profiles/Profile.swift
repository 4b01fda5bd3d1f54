import RunlogJSON
import WorkflowModel
import Workflows

/// The rules of profile data: field names, the fields with a meaning (`email`, `phone` /
/// `phones`, `_tags`, `subscriptions`, `_ip` / `_regip`) and how matching values are normalised.
public enum Profile {
    /// Profiles are objects of this type; their token is the 24-hex profile id.
    public static let objectType = "profile"
    public static let createdEvent = "profile.created"
    public static let updatedEvent = "profile.updated"

    static let phoneChannels: Set<String> = ["sms", "whatsapp", "viber", "telegram"]

    /// 1–128 letters, digits, `_` or `-` (no dots: steps reach fields by dotted paths).
    static func validFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    /// Checks profile fields and normalises `_tags` to an array. An invalid subscription is an
    /// error, or dropped with `skipInvalidSubscriptions`.
    static func validated(
        _ fields: [String: JSONValue], at path: String, skipInvalidSubscriptions: Bool, detectGeo: Bool
    ) throws(TaskAPIError) -> [String: JSONValue] {
        var out = fields
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            guard validFieldName(name) else {
                throw .invalid("\(path).\(name)", value, "a profile field name is 1-128 letters, digits, _ or -")
            }
            switch name {
            case "email":
                guard case .string(let s) = value, normalizedEmail(s) != nil else {
                    throw .invalid("\(path).email", value, "must be an email address")
                }
            case "phone", "phones":
                let list = value.arrayValue ?? [value]
                for (i, p) in list.enumerated() {
                    guard case .string(let s) = p, normalizedPhone(s) != nil else {
                        throw .invalid("\(path).\(name)" + (value.arrayValue == nil ? "" : "[\(i)]"), p,
                                       "must be a phone number of 5 to 20 digits")
                    }
                }
            case "_tags":
                let tags = tagList(value)
                guard let tags, !tags.contains(where: \.isEmpty) else {
                    throw .invalid("\(path)._tags", value, "must be a string \"tag-1, tag-2\" or an array of non-empty strings")
                }
                out[name] = .array(tags.map(JSONValue.string))
            case "subscriptions":
                guard case .array(let subscriptions) = value else {
                    throw .invalid("\(path).subscriptions", value, "must be an array of subscriptions")
                }
                var kept: [JSONValue] = []
                for (i, subscription) in subscriptions.enumerated() {
                    if let problem = subscriptionProblem(subscription) {
                        if skipInvalidSubscriptions { continue }
                        throw .invalid("\(path).subscriptions[\(i)]\(problem.field)", problem.value,
                                       problem.rule + " (or send skip_invalid_subscriptions: true to skip it)")
                    }
                    kept.append(subscription)
                }
                out[name] = .array(kept)
            case "_ip" where detectGeo, "_regip" where detectGeo:
                guard case .string(let s) = value, isIPAddress(s) else {
                    throw .invalid("\(path).\(name)", value, "must be an IPv4 or IPv6 address (detect_geo)")
                }
            default:
                break
            }
        }
        return out
    }

    private static func subscriptionProblem(_ value: JSONValue) -> (field: String, value: JSONValue?, rule: String)? {
        guard case .object(let s) = value else { return ("", value, "must be an object with a \"channel\"") }
        guard case .string(let channel)? = s["channel"], !channel.isEmpty else {
            return (".channel", s["channel"], "must name the channel (email, sms, push, …)")
        }
        if channel == "email" {
            guard case .string(let e)? = s["email"], normalizedEmail(e) != nil else {
                return (".email", s["email"], "an email subscription needs an email address")
            }
        }
        if phoneChannels.contains(channel) {
            guard case .string(let p)? = s["phone"], normalizedPhone(p) != nil else {
                return (".phone", s["phone"], "a \(channel) subscription needs a phone number of 5 to 20 digits")
            }
        }
        return nil
    }

    /// Lowercased and trimmed; nil unless it looks like `local@domain`.
    public static func normalizedEmail(_ text: String) -> String? {
        let e = text.trimmingSpaces.lowercased()
        let parts = e.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
              !parts[1].hasSuffix("."), e.utf8.count <= 254,
              !e.unicodeScalars.contains(where: { $0 == " " || $0 == "," || $0.value < 0x21 }) else { return nil }
        return e
    }

    /// The digits (spaces, dashes, dots and parentheses dropped, a leading + ignored); nil unless
    /// 5–20 digits.
    public static func normalizedPhone(_ text: String) -> String? {
        var digits = ""
        for (i, c) in text.trimmingSpaces.enumerated() {
            if c.isASCII, c.isNumber { digits.append(c) }
            else if c == "+" && i == 0 { continue }
            else if c == " " || c == "-" || c == "(" || c == ")" || c == "." { continue }
            else { return nil }
        }
        return (5...20).contains(digits.count) ? digits : nil
    }

    /// Lowercased; nil unless 24 hexadecimal digits.
    public static func normalizedId(_ text: String) -> String? {
        let id = text.lowercased()
        return id.utf8.count == 24 && id.utf8.allSatisfy({ ("0"..."9").contains(Character(UnicodeScalar($0))) || ("a"..."f").contains(Character(UnicodeScalar($0))) }) ? id : nil
    }

    /// A scalar's text for custom matching: strings as they are, numbers and booleans as JSON.
    static func matchText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): s.trimmingSpaces
        case .integer, .number, .bool: value.jsonText
        default: nil
        }
    }

    /// The terms a custom field's value is matched by: an array's elements, a string's
    /// comma-separated parts (`"tag-1, tag-2"`), a number's or boolean's text.
    static func terms(_ value: JSONValue) -> Set<String> {
        if let list = tagList(value) { return Set(list.filter { !$0.isEmpty }) }
        return matchText(value).map { [$0] } ?? []
    }

    /// `"a, b"` → `["a", "b"]`; an array of strings as it is; nil otherwise.
    static func tagList(_ value: JSONValue) -> [String]? {
        switch value {
        case .string(let s):
            return s.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        case .array(let items):
            var tags: [String] = []
            for item in items {
                guard let text = matchText(item) else { return nil }
                tags.append(text)
            }
            return tags
        default:
            return nil
        }
    }

    static func isIPAddress(_ s: String) -> Bool {
        let v4 = s.split(separator: ".", omittingEmptySubsequences: false)
        if v4.count == 4 {
            return v4.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
            }
        }
        guard s.contains(":"), s.count <= 45 else { return false }
        let groups = s.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count >= 3, groups.count <= 8 || (groups.count == 9 && s.contains("::")) else { return false }
        return groups.allSatisfy { g in g.count <= 4 && g.allSatisfy(\.isHexDigit) }
            && (groups.count == 8 || s.contains("::"))
    }

    /// A new profile id: 4 bytes of seconds since 1970 and 8 random bytes, as 24 hex digits.
    public static func newId(now: Int64) -> String {
        var bytes: [UInt8] = []
        let seconds = UInt32(truncatingIfNeeded: now / 1000)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: seconds >> UInt32(shift))) }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<8 { bytes.append(UInt8.random(in: 0...255, using: &random)) }
        let hex = Array("0123456789abcdef")
        return String(bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0x0F)]] })
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
