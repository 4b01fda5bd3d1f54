public import RunlogJSON
public import WorkflowModel
import Workflows

/// How a batch task finds the profile each data object is about.
public enum Matching: String, Sendable, Hashable, CaseIterable {
    /// By email, in the profile's `email` field or any of its email subscriptions.
    case email
    /// By the profile's own `email` field only.
    case emailProfile = "email_profile"
    /// By phone, in the profile's `phone` / `phones` fields or its phone subscriptions.
    case phone
    /// By the profile's 24-hex id.
    case profileId = "profile_id"
    /// By a custom field (`field_name`); a value with commas is a combination of tags.
    case custom
}

/// A valid `import_and_start_batch_task` request: every rule of the API checked, values
/// normalised, nothing recorded yet.
public struct BatchTaskRequest: Sendable, Hashable {
    /// One data object: the key that finds its profile and what to record about it.
    public struct Item: Sendable, Hashable {
        /// The normalised matching value (nil in `custom_request` mode).
        public var key: String?
        /// Profile fields to set (empty in `custom_request` mode).
        public var fields: [String: JSONValue]
        /// `content` (root, then the object's) as steps see it: `apicontent.NAME`.
        public var content: [String: JSONValue]
        /// `custom_data` (root, then the object's) as steps see it: `custom_data.NAME`.
        public var customData: [String: JSONValue]
    }

    public var token: String
    public var workflowNumber: Int
    /// nil in `custom_request` mode.
    public var matching: Matching?
    /// The custom field matched on (`matching: custom`).
    public var fieldName: String?
    /// The profile query of `custom_request` mode.
    public var customRequest: Condition?
    public var items: [Item]
    public var skipTriggers: Bool
    public var skipInvalidSubscriptions: Bool
    public var detectGeo: Bool
    /// Root `content` and `custom_data`: what `custom_request` mode's runs see.
    public var content: [String: JSONValue]
    public var customData: [String: JSONValue]

    static let rootFields: Set<String> = [
        "token", "format", "workflow_id", "matching", "profile_id", "email", "phone", "field_name", "field_value",
        "data", "skip_triggers", "skip_invalid_subscriptions", "detect_geo", "content", "custom_data",
        "custom_request", "attach",
    ]
    static let itemFields: Set<String> = ["data", "content", "custom_data", "profile_id", "email", "phone", "field_value"]

    /// The token of a request body: 401 in the API's shape when it is missing.
    public static func token(of body: JSONValue) throws(TaskAPIError) -> String {
        guard case .object(let o) = body else {
            throw TaskAPIError(400, "the request body must be a JSON object")
        }
        guard case .string(let token)? = o["token"], !token.isEmpty else {
            throw TaskAPIError.unauthorized("token is missing: send your API token in the \"token\" field of the body")
        }
        return token
    }

    /// Reads and checks a request body; at most `maxProfiles` data objects.
    public init(_ body: JSONValue, maxProfiles: Int) throws(TaskAPIError) {
        token = try Self.token(of: body)
        let o = body.objectValue ?? [:]
        if let unknown = o.keys.sorted().first(where: { !Self.rootFields.contains($0) }) {
            throw .invalid(unknown, o[unknown], "is not a parameter of this request; allowed: "
                           + Self.rootFields.sorted().joined(separator: ", "))
        }
        if let format = o["format"], format != .null, format != .string("json") {
            throw .invalid("format", format, "must be \"json\" (the only data format)")
        }
        if let attach = o["attach"], attach != .null, attach != .array([]) {
            throw .invalid("attach", attach, "attachments are not supported: Runlog sends no email messages")
        }
        guard case .integer(let number)? = o["workflow_id"], number > 0, number <= Int64(Int32.max) else {
            throw .invalid("workflow_id", o["workflow_id"], "must be a positive integer, the workflow's number")
        }
        workflowNumber = Int(number)
        skipTriggers = try Self.bool(o, "skip_triggers")
        skipInvalidSubscriptions = try Self.bool(o, "skip_invalid_subscriptions")
        detectGeo = try Self.bool(o, "detect_geo")
        content = try Self.object(o["content"], "content")
        customData = try Self.object(o["custom_data"], "custom_data")

        let dataItems: [JSONValue]
        switch o["data"] {
        case nil, .null?: dataItems = []
        case .array(let items)?: dataItems = items
        case let other?: throw .invalid("data", other, "must be an array of objects, each with its profile's \"data\"")
        }
        guard dataItems.count <= maxProfiles else {
            throw TaskAPIError(400, "data has \(dataItems.count) profiles; a request may carry at most \(maxProfiles) "
                               + "(split it into several requests)")
        }

        if o["matching"] == nil || o["matching"] == .null, let query = o["custom_request"], query != .null {
            // custom_request mode: the query picks existing profiles; data objects are not used.
            matching = nil
            fieldName = nil
            guard case .object = query else {
                throw .invalid("custom_request", query, "must be a MongoDB-style query object on profile fields")
            }
            do {
                customRequest = try Condition(query)
            } catch {
                throw .invalid("custom_request" + (error.path.isEmpty ? "" : "." + error.path), error.operator.map(JSONValue.string),
                               error.description)
            }
            guard dataItems.isEmpty else {
                throw .invalid("data", o["data"], "is not used with custom_request (the query picks the profiles); "
                               + "send \"matching\" to import profiles")
            }
            items = []
            return
        }
        customRequest = nil
        if let query = o["custom_request"], query != .null {
            throw .invalid("custom_request", query, "is only used without \"matching\"")
        }
        let matchingText = o["matching"] ?? .string("email")
        guard case .string(let text) = matchingText, let mode = Matching(rawValue: text) else {
            throw .invalid("matching", matchingText, "must be one of " + Matching.allCases.map(\.rawValue).joined(separator: ", "))
        }
        matching = mode
        if mode == .custom {
            guard case .string(let name)? = o["field_name"], Profile.validFieldName(name) else {
                throw .invalid("field_name", o["field_name"], "must name a custom profile field (1-128 letters, digits, _ or -)")
            }
            fieldName = name
        } else {
            fieldName = nil
            if let given = o["field_name"], given != .null {
                throw .invalid("field_name", given, "is only used with \"matching\": \"custom\"")
            }
        }
        var items: [Item] = []
        guard !dataItems.isEmpty else {
            throw .invalid("data", o["data"], "must be an array of at least one data object, each with its profile's "
                           + "\"data\" (or send custom_request without matching to start the workflow for existing profiles)")
        }
        items.reserveCapacity(dataItems.count)
        for (i, element) in dataItems.enumerated() {
            items.append(try Self.item(element, at: "data[\(i)]", root: o, mode: mode, fieldName: fieldName,
                                       skipInvalidSubscriptions: skipInvalidSubscriptions, detectGeo: detectGeo,
                                       content: content, customData: customData))
        }
        self.items = items
    }

    private static func item(
        _ element: JSONValue, at path: String, root: [String: JSONValue], mode: Matching, fieldName: String?,
        skipInvalidSubscriptions: Bool, detectGeo: Bool, content: [String: JSONValue], customData: [String: JSONValue]
    ) throws(TaskAPIError) -> Item {
        guard case .object(let e) = element else {
            throw .invalid(path, element, "must be an object with the profile's \"data\"")
        }
        if let unknown = e.keys.sorted().first(where: { !itemFields.contains($0) }) {
            throw .invalid("\(path).\(unknown)", e[unknown], "is not a field of a data object; allowed: "
                           + itemFields.sorted().joined(separator: ", "))
        }
        var fields = try object(e["data"], "\(path).data")
        let given = fields.removeValue(forKey: "profile_id")
        fields = try Profile.validated(fields, at: "\(path).data", skipInvalidSubscriptions: skipInvalidSubscriptions,
                                       detectGeo: detectGeo)
        // The matching value: on the data object, else in its profile data, else at the root.
        let key: String
        switch mode {
        case .email, .emailProfile:
            let (value, field) = first(e["email"], "\(path).email", fields["email"], "\(path).data.email",
                                       root["email"], "email")
            guard case .string(let text)? = value, let email = Profile.normalizedEmail(text) else {
                throw .invalid(field, value, "must be an email address (matching \(mode.rawValue))")
            }
            key = email
        case .phone:
            let phones = fields["phone"] ?? fields["phones"].flatMap { $0.arrayValue?.first ?? $0 }
            let (value, field) = first(e["phone"], "\(path).phone", phones, "\(path).data.phone", root["phone"], "phone")
            guard case .string(let text)? = value, let phone = Profile.normalizedPhone(text) else {
                throw .invalid(field, value, "must be a phone number of 5 to 20 digits (matching phone)")
            }
            key = phone
        case .profileId:
            let (value, field) = first(e["profile_id"], "\(path).profile_id", given, "\(path).data.profile_id",
                                       root["profile_id"], "profile_id")
            guard case .string(let text)? = value, let id = Profile.normalizedId(text) else {
                throw .invalid(field, value, "must be a profile id of 24 hexadecimal digits (matching profile_id)")
            }
            key = id
        case .custom:
            let name = fieldName ?? ""
            let (value, field) = first(e["field_value"], "\(path).field_value", fields[name], "\(path).data.\(name)",
                                       root["field_value"], "field_value")
            guard let value, let text = Profile.matchText(value), !text.isEmpty else {
                throw .invalid(field, value, "must be a non-empty string, number or boolean (matching custom on \(name))")
            }
            key = text
        }
        var itemContent = content
        for (k, v) in try object(e["content"], "\(path).content") { itemContent[k] = v }
        var itemData = customData
        for (k, v) in try object(e["custom_data"], "\(path).custom_data") { itemData[k] = v }
        return Item(key: key, fields: fields, content: itemContent, customData: itemData)
    }

    /// The first of three candidate values that is present, with its field path.
    private static func first(
        _ a: JSONValue?, _ aPath: String, _ b: JSONValue?, _ bPath: String, _ c: JSONValue?, _ cPath: String
    ) -> (JSONValue?, String) {
        if let a, a != .null { return (a, aPath) }
        if let b, b != .null { return (b, bPath) }
        if let c, c != .null { return (c, cPath) }
        return (nil, bPath)
    }

    static func bool(_ o: [String: JSONValue], _ name: String) throws(TaskAPIError) -> Bool {
        switch o[name] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case let other?: throw .invalid(name, other, "must be true or false")
        }
    }

    static func object(_ value: JSONValue?, _ field: String) throws(TaskAPIError) -> [String: JSONValue] {
        switch value {
        case nil, .null?: return [:]
        case .object(let o)?: return o
        case let other?: throw .invalid(field, other, "must be a JSON object")
        }
    }
}
