import Foundation
import Testing
@testable import EventLog
@testable import LMDBStore

extension LMDBEventStore {
    /// Opens a writable store with test-friendly defaults.
    static func open(_ directory: String, options: Options = Options(mapSize: 64 << 20)) throws -> LMDBEventStore {
        try LMDBEventStore(directory: directory, options: options)
    }
}

func event(_ type: String = "test.happened", _ json: String = "{}", id: UUID = .timeOrdered()) -> NewEvent {
    NewEvent(id: id, type: type, json: json)
}

/// Expects `body` to throw an `EventStoreError` with `code`, and returns it.
@discardableResult
func expectStoreError(
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
