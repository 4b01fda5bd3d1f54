public import EventLog
import Synchronization
public import Testing

/// What a backend gives the conformance suite: fresh stores, and the same store closed and opened again.
///
/// A test target of a backend implements this and runs every check of `EventStoreConformance.checks`
/// against it:
///
/// ```swift
/// @Test(arguments: EventStoreConformance.checks)
/// func conformance(_ check: EventStoreConformance.Check) async throws {
///     try await EventStoreConformance.run(check, on: MyBackend())
/// }
/// ```
public protocol EventStoreBackend: Sendable {
    /// Opens a new, empty, writable store (a new directory, a new database schema).
    func fresh() async throws -> any EventStore
    /// Closes `store` and opens the same log again, writable: what a restart of the process does.
    func reopen(_ store: any EventStore) async throws -> any EventStore
    /// Closes `store` and removes what `fresh()` made for it. The suite awaits it after each check
    /// for every store the check opened, whether the check passed or not.
    func discard(_ store: any EventStore) async
}

/// The checks every `EventStore` implementation must pass: the guarantees of the protocol's
/// documentation, checked through the protocol alone.
public enum EventStoreConformance {
    /// One named check of the suite. Its name is what a failing test case shows.
    public struct Check: Sendable, CustomStringConvertible, CustomTestStringConvertible {
        public let name: String
        let body: @Sendable (Stores) async throws -> Void

        init(_ name: String, _ body: @escaping @Sendable (Stores) async throws -> Void) {
            self.name = name
            self.body = body
        }

        public var description: String { name }
        public var testDescription: String { name }
    }

    /// Every check, by area.
    public static let checks: [Check] =
        appendChecks + submitChecks + chainChecks + readChecks + subscriptionChecks + sideTableChecks
            + projectionChecks + lifecycleChecks

    /// Runs `check` against stores of `backend`, then discards each store it opened (awaited),
    /// and rethrows what the check threw.
    public static func run(_ check: Check, on backend: some EventStoreBackend) async throws {
        let stores = Stores(backend)
        do {
            try await check.body(stores)
        } catch {
            await stores.discardAll()
            throw error
        }
        await stores.discardAll()
    }
}

/// The stores one check opened, through its backend; each is discarded when the check ends.
final class Stores: Sendable {
    private let backend: any EventStoreBackend
    private let opened = Mutex<[any EventStore]>([])

    init(_ backend: any EventStoreBackend) {
        self.backend = backend
    }

    /// A new, empty, writable store.
    func fresh() async throws -> any EventStore {
        let store = try await backend.fresh()
        opened.withLock { $0.append(store) }
        return store
    }

    /// `store` closed and opened again.
    func reopen(_ store: any EventStore) async throws -> any EventStore {
        let again = try await backend.reopen(store)
        opened.withLock { list in
            list.removeAll { $0 === store }
            list.append(again)
        }
        return again
    }

    func discardAll() async {
        let all = opened.withLock { list in
            defer { list = [] }
            return list
        }
        for store in all.reversed() {
            await backend.discard(store)
        }
    }
}
