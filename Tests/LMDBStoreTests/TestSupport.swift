import Foundation
import Testing
@testable import EventLog
@testable import LMDBStore

// `event(_:_:id:)`, `expectStoreError` and `attempt` come from EventStoreConformance.

extension LMDBEventStore {
    /// Opens a writable store with test-friendly defaults.
    static func open(_ directory: String, options: Options = Options(mapSize: 64 << 20)) throws -> LMDBEventStore {
        try LMDBEventStore(directory: directory, options: options)
    }
}
