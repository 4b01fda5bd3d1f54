import Foundation

/// Which way a read goes.
public enum ReadDirection: Sendable, Hashable {
    case forward, backward
}

/// Selects events of the whole log by type and stream name prefix; empty selects all.
public struct EventFilter: Sendable, Hashable {
    /// Only events of these types (any type when nil).
    public var types: Set<String>?
    /// Only events whose stream name begins with this (any stream when nil).
    public var streamPrefix: String?

    public static let all = EventFilter()

    public init(types: Set<String>? = nil, streamPrefix: String? = nil) {
        self.types = types
        self.streamPrefix = streamPrefix
    }

    package var isAll: Bool { types == nil && streamPrefix == nil }

    /// The filter in byte form, for matching envelopes without decoding them.
    package struct Compiled {
        package let types: [[UInt8]]?
        package let prefix: [UInt8]?

        package init(_ filter: EventFilter) {
            types = filter.types.map { $0.map { Array($0.utf8) } }
            prefix = filter.streamPrefix.map { Array($0.utf8) }
        }

        package func matches(_ view: Envelope.View) -> Bool {
            if let prefix {
                guard prefix.withUnsafeBytes({ view.streamBytes.hasPrefix($0) }) else { return false }
            }
            if let types {
                let type = view.typeBytes
                guard types.contains(where: { $0.withUnsafeBytes { type.equals($0) } }) else { return false }
            }
            return true
        }
    }
}

/// The last event's position, hash and time, as committed.
public struct LogHead: Sendable, Hashable {
    public var position: UInt64
    public var hash: EventHash
    public var recordedAt: Int64

    public static let empty = LogHead(position: 0, hash: .zero, recordedAt: 0)

    public init(position: UInt64, hash: EventHash, recordedAt: Int64) {
        self.position = position
        self.hash = hash
        self.recordedAt = recordedAt
    }
}

/// Counts and sizes of a store.
public struct LogStats: Sendable, Hashable {
    public var eventCount: UInt64
    public var streamCount: Int
    public var head: LogHead
    /// Bytes of the store's files on disk.
    public var fileBytes: Int
    /// Bytes the store has used of them.
    public var usedBytes: Int
    /// Bytes the store may grow to before it must grow its map (LMDB) or 0 when it has no such limit.
    public var mapBytes: Int

    public init(eventCount: UInt64, streamCount: Int, head: LogHead, fileBytes: Int, usedBytes: Int, mapBytes: Int) {
        self.eventCount = eventCount
        self.streamCount = streamCount
        self.head = head
        self.fileBytes = fileBytes
        self.usedBytes = usedBytes
        self.mapBytes = mapBytes
    }
}

/// The outcome of recomputing the hash chain.
public enum VerifyReport: Sendable, Hashable {
    /// Every event is present, in order, and hashes to its successor's previous hash.
    case intact(count: UInt64, head: EventHash)
    /// The first position that does not verify, and why.
    case broken(position: UInt64, reason: String)
}

/// A stored envelope read in place (see `EventStore.forEachView`); valid only during the call
/// that receives it.
public struct EventView {
    @usableFromInline package let view: Envelope.View
    /// The appender's own decoding of the payload (`NewEvent.decoded`), while the writer applies
    /// an event it is writing; nil when the event is read from the log.
    public let decoded: (any Sendable)?

    package init(view: Envelope.View, decoded: (any Sendable)? = nil) {
        self.view = view
        self.decoded = decoded
    }

    @inlinable public var position: UInt64 { view.position }
    @inlinable public var streamVersion: UInt64 { view.streamVersion }
    @inlinable public var recordedAt: Int64 { view.recordedAt }
    /// The stream name's UTF-8 bytes.
    @inlinable public var streamBytes: UnsafeRawBufferPointer { view.streamBytes }
    /// The event type's UTF-8 bytes.
    @inlinable public var typeBytes: UnsafeRawBufferPointer { view.typeBytes }
    @inlinable public var payloadBytes: UnsafeRawBufferPointer { view.payloadBytes }
    /// The metadata actor's UTF-8 bytes (nil: none).
    @inlinable public var actorBytes: UnsafeRawBufferPointer? { view.actorBytes }
    /// The metadata's actor (decoded on each call).
    @inlinable public var actor: String? { view.actor }
    /// The stream name (decoded on each call).
    @inlinable public var stream: String { String(decoding: view.streamBytes, as: UTF8.self) }
    /// The whole event, copied out of the map.
    public func decode() -> RecordedEvent { view.decode() }
}
