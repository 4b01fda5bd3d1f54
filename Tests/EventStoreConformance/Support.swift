public import EventLog
public import Foundation
public import Testing

/// An event of `type` whose payload is the UTF-8 of `json`.
public func event(_ type: String = "test.happened", _ json: String = "{}", id: UUID = .timeOrdered()) -> NewEvent {
    NewEvent(id: id, type: type, json: json)
}

/// Expects `body` to throw an `EventStoreError` with `code`, and returns it.
@discardableResult
public func expectStoreError(
    _ code: EventStoreError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> EventStoreError? {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as EventStoreError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The outcome of `body` as a `Result`, for appends expected to fail beside others that succeed.
public func attempt(_ body: () async throws -> AppendResult) async -> Result<AppendResult, EventStoreError> {
    do {
        return .success(try await body())
    } catch let error as EventStoreError {
        return .failure(error)
    } catch {
        return .failure(EventStoreError(.storage, "unexpected \(error)"))
    }
}

/// The streams and types of `seed(_:)`: 30 events, stream `streams[i % 3]` and type `types[(i / 3) % 3]`
/// for event i (position i + 1), payload `{"i":i}`.
let seedStreams = ["order-1", "order-2", "user-1"]
let seedTypes = ["placed", "paid", "seen"]

/// Appends the 30 events described at `seedStreams`, one append each.
func seed(_ store: any EventStore) async throws {
    for i in 0..<30 {
        try await store.append(to: seedStreams[i % 3], [event(seedTypes[(i / 3) % 3], "{\"i\":\(i)}")])
    }
}

/// Every event of the log, read forward in pages.
func wholeLog(_ store: any EventStore) throws -> [RecordedEvent] {
    var all: [RecordedEvent] = []
    while true {
        let page = try store.readAll(from: UInt64(all.count + 1), limit: 1000)
        if page.isEmpty { return all }
        all += page
    }
}

/// The payload's `"i"` number, for events made by `seed(_:)`.
func seedIndex(_ event: RecordedEvent) -> Int? {
    let text = String(decoding: event.payload, as: UTF8.self)
    guard text.hasPrefix("{\"i\":"), text.hasSuffix("}") else { return nil }
    return Int(text.dropFirst(5).dropLast())
}

/// The envelope bytes of `event` as `Envelope` lays them out from its fields (with its stored previous
/// hash), and the hash they give: what every backend must have stored.
func canonicalEnvelope(of event: RecordedEvent) -> (bytes: [UInt8], hash: EventHash) {
    let new = NewEvent(id: event.id, type: event.type, payload: event.payload, metadata: event.metadata)
    let size = Envelope.size(stream: event.stream.utf8.count, event: new)
    var bytes = [UInt8](repeating: 0, count: size)
    let hash = bytes.withUnsafeMutableBytes { out in
        Envelope.encode(
            into: out, position: event.position, stream: event.stream, streamVersion: event.streamVersion,
            recordedAt: event.recordedAt, event: new, previousHash: event.previousHash
        )
    }
    return (bytes, hash)
}

extension VerifyReport {
    /// The count and head of an intact chain, nil when broken.
    var intact: (count: UInt64, head: EventHash)? {
        if case .intact(let count, let head) = self { return (count, head) }
        return nil
    }
}

/// A check's failure that ends it: what did not happen.
struct CheckFailed: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `body`'s value, or `CheckFailed` when it has not returned after `seconds`: a wait that never ends
/// (a subscription that missed an event, a wake-up that never comes) fails with what it waited for
/// instead of hanging until the test's time limit. `body` must end when cancelled.
func within<T: Sendable>(
    _ seconds: Int,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw CheckFailed("\(what): not done within \(seconds) s")
        }
        return value
    }
}

/// The value of `task`, cancelling it when the waiting task is cancelled (`Task.value` alone waits on).
func value<T: Sendable>(of task: Task<T, any Error>) async throws -> T {
    try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        task.cancel()
    }
}
