// The payloads of the object events (stream `object-<type>-<token>`), with their sealed data,
// and of the list events (stream `list-<id>`).
public import RunlogJSON

/// Object data in the log: AES-GCM under the object's own key, which is kept outside the hash
/// chain. Redacting an object destroys the key; the ciphertext (and so the chain) stays.
public struct SealedData: Codable, Sendable, Hashable {
    /// Base64 of nonce ‖ ciphertext ‖ tag.
    public var sealed: String

    package init(sealed: String) {
        self.sealed = sealed
    }
}

public struct ObjectEventRecorded: Codable, Sendable, Hashable {
    public var eventId: String
    public var objectType: String
    public var objectToken: String
    public var eventType: String
    /// UTC ms when it happened (as posted).
    public var occurredAt: Int64
    public var data: SealedData

    package init(eventId: String, objectType: String, objectToken: String, eventType: String, occurredAt: Int64, data: SealedData) {
        self.eventId = eventId
        self.objectType = objectType
        self.objectToken = objectToken
        self.eventType = eventType
        self.occurredAt = occurredAt
        self.data = data
    }
}

public struct ObjectTagged: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var tags: [String]
    public var runId: String

    package init(objectType: String, objectToken: String, tags: [String], runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.tags = tags
        self.runId = runId
    }
}

public struct ObjectFieldSet: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var field: String
    public var value: SealedData
    public var runId: String

    package init(objectType: String, objectToken: String, field: String, value: SealedData, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.field = field
        self.value = value
        self.runId = runId
    }
}

public struct ObjectDecided: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    /// `approved` or `declined`.
    public var decision: String
    public var reason: String?
    public var runId: String

    package init(objectType: String, objectToken: String, decision: String, reason: String? = nil, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.decision = decision
        self.reason = reason
        self.runId = runId
    }
}

public struct ObjectRedacted: Codable, Sendable, Hashable {
    public var objectType: String
    public var objectToken: String
    public var runId: String

    package init(objectType: String, objectToken: String, runId: String) {
        self.objectType = objectType
        self.objectToken = objectToken
        self.runId = runId
    }
}

public struct ListItemChanged: Codable, Sendable, Hashable {
    public var listId: String
    public var value: JSONValue
    public var runId: String?

    package init(listId: String, value: JSONValue, runId: String? = nil) {
        self.listId = listId
        self.value = value
        self.runId = runId
    }
}
