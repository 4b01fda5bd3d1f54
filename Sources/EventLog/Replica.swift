public import Foundation

/// A change to one entry of a side table, as a copy of a log carries it to another store.
public struct SideChange: Sendable, Equatable {
    /// The side tables a copy carries (see `EventStore`'s side-table methods).
    public enum Table: Int16, Sendable, CaseIterable {
        case vault = 1, requests = 2, checkpoints = 3
    }

    public var table: Table
    public var name: String
    /// The new value (a checkpoint's is its position, 8 bytes big-endian); nil deletes the entry.
    public var value: [UInt8]?

    public init(_ table: Table, _ name: String, _ value: [UInt8]?) {
        self.table = table
        self.name = name
        self.value = value
    }

    /// A checkpoint's value as a change carries it.
    public static func checkpointValue(_ position: UInt64) -> [UInt8] {
        withUnsafeBytes(of: position.bigEndian) { Array($0) }
    }

    /// The position a checkpoint change carries, or nil when `value` is not 8 bytes.
    public static func checkpointPosition(_ value: [UInt8]) -> UInt64? {
        guard value.count == 8 else { return nil }
        return value.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// What one commit of a copy brings from the log it copies: envelopes as they are stored there
/// (each continuing the copy's chain: the next position, linked to its head's hash), the side
/// changes made there, and how far the copy then is in the source's numbering of side changes.
public struct ReplicaBatch: Sendable {
    public var envelopes: [[UInt8]]
    public var changes: [SideChange]
    /// The source's number of the last side change included (kept with the commit), or nil to
    /// leave the kept number as it is.
    public var changesReached: UInt64?
    /// The appenders' own decodings of copied events' payloads, by event id (`NewEvent.decoded`),
    /// handed to inline projections as an append would: a node copying what it appended itself.
    public var decoded: [UUID: any Sendable]

    public init(envelopes: [[UInt8]], changes: [SideChange] = [], changesReached: UInt64? = nil,
                decoded: [UUID: any Sendable] = [:]) {
        self.envelopes = envelopes
        self.changes = changes
        self.changesReached = changesReached
        self.decoded = decoded
    }
}
