// The object records of the read models (`WorkflowsState.objects`): an object's key, its
// recorded events, fields, tags and decision.
public struct ObjectKey: Sendable, Hashable, Comparable {
    public var type: String
    public var token: String
    public init(type: String, token: String) {
        self.type = type
        self.token = token
    }
    public static func < (a: ObjectKey, b: ObjectKey) -> Bool { (a.type, a.token) < (b.type, b.token) }
}

public struct ObjectEventEntry: Sendable, Equatable {
    public var eventId: String
    public var eventType: String
    public var occurredAt: Int64
    public var data: SealedData
    public var recordedAt: Int64

    package init(eventId: String, eventType: String, occurredAt: Int64, data: SealedData, recordedAt: Int64) {
        self.eventId = eventId
        self.eventType = eventType
        self.occurredAt = occurredAt
        self.data = data
        self.recordedAt = recordedAt
    }
}

public struct ObjectRecord: Sendable, Equatable {
    public var key: ObjectKey
    public var createdAt: Int64
    public var events: [ObjectEventEntry] = []
    /// Fields set by steps, sealed like event data.
    public var fields: [String: SealedData] = [:]
    public var tags: [String] = []
    public var decision: String?
    public var redacted = false
    /// Counts the events that changed the object: a reader that saw revision N has seen it all
    /// when the revision is still N.
    public var revision = 0

    public init(key: ObjectKey, createdAt: Int64) {
        self.key = key
        self.createdAt = createdAt
    }
}
