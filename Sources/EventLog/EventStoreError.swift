package import Foundation

/// An error from the event store: a code to switch on, a message for people, and the details.
public struct EventStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. Codes are a struct so new ones can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidArgument, payloadTooLarge, wrongExpectedVersion, idempotencyConflict
            case writerLocked, readOnly, mapFull, dataDirectoryMissing, corrupted, storage, closed
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// An argument broke a rule; `field`, `value` and `rule` say which.
        public static let invalidArgument = Code(.invalidArgument)
        /// A payload is larger than ``EventStore/maxPayloadBytes``.
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// A stream was not at the expected version; the append wrote nothing.
        public static let wrongExpectedVersion = Code(.wrongExpectedVersion)
        /// Some, but not all, of an append's event ids are already stored.
        public static let idempotencyConflict = Code(.idempotencyConflict)
        /// Another process holds the data directory for writing.
        public static let writerLocked = Code(.writerLocked)
        /// The store was opened read-only.
        public static let readOnly = Code(.readOnly)
        /// The data file reached its maximum size.
        public static let mapFull = Code(.mapFull)
        /// A read-only open found no data directory.
        public static let dataDirectoryMissing = Code(.dataDirectoryMissing)
        /// Stored bytes do not decode or do not match their hash.
        public static let corrupted = Code(.corrupted)
        /// LMDB or the file system failed.
        public static let storage = Code(.storage)
        /// The store has been closed.
        public static let closed = Code(.closed)

        public var description: String { "\(value)" }
    }

    public var code: Code
    public var message: String
    /// The argument at fault, when there is one.
    public var field: String?
    /// The offending value, when there is one.
    public var value: String?
    /// For `wrongExpectedVersion`: the stream and its versions.
    public var conflict: Conflict?

    /// The stream, the version the append expected and the version it found.
    public struct Conflict: Hashable, Sendable {
        public var stream: String
        public var expected: ExpectedVersion
        /// 0 when the stream does not exist.
        public var actual: UInt64

        public init(stream: String, expected: ExpectedVersion, actual: UInt64) {
            self.stream = stream
            self.expected = expected
            self.actual = actual
        }
    }

    public init(_ code: Code, _ message: String, field: String? = nil, value: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.value = value
    }

    public var description: String { message }

    package static func invalid(_ field: String, _ value: String, _ rule: String) -> EventStoreError {
        EventStoreError(.invalidArgument, "\(field) \(quoted(value)) is invalid: \(rule)", field: field, value: value)
    }

    package static let closedStore = EventStoreError(.closed, "the event store is closed")

    package static func quoted(_ value: String) -> String {
        let shown = value.count > 80 ? String(value.prefix(80)) + "…" : value
        return "\"\(shown)\""
    }
}

/// What an append expects of a stream before it writes.
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream must exist (any version).
    case streamExists
    /// The stream's current version must be exactly this (0 is the same as `noStream`).
    case exact(UInt64)

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .streamExists: "stream exists"
        case .exact(let v): "\(v)"
        }
    }

    public func accepts(_ current: UInt64) -> Bool {
        switch self {
        case .any: true
        case .noStream: current == 0
        case .streamExists: current > 0
        case .exact(let v): current == v
        }
    }
}

extension EventStoreError {
    /// An append whose ids are stored in part: `id` is the first stored one.
    package static func partlyStored(_ id: UUID, stored: Int, of total: Int) -> EventStoreError {
        EventStoreError(
            .idempotencyConflict,
            "event id \(id.uuidString.lowercased()) is already stored but \(total - stored) of this append's \(total) "
                + "events are not: retry an append whole, with the same ids",
            field: "id", value: id.uuidString.lowercased()
        )
    }

    /// A stream that is not at the version an append expects.
    package static func wrongVersion(_ stream: String, expected: ExpectedVersion, actual: UInt64) -> EventStoreError {
        var error = EventStoreError(
            .wrongExpectedVersion,
            "stream \"\(stream)\" is at version \(actual)" + (actual == 0 ? " (no stream)" : "") + ", expected \(expected)",
            field: "expectedVersion", value: "\(expected)"
        )
        error.conflict = .init(stream: stream, expected: expected, actual: actual)
        return error
    }
}
