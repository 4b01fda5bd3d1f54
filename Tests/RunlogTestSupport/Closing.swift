/// A test resource (a server, a fixture) that must be shut down, awaited, when a test is done with it.
public protocol AsyncClosable: Sendable {
    func close() async
}

extension AsyncClosable {
    /// Runs `body` with this resource, then awaits `close()` whether `body` returned or threw; rethrows `body`'s
    /// error after closing. Unlike a `defer` that starts the close in a new `Task`, the close is over when this
    /// returns.
    public func closing<Value>(_ body: (Self) async throws -> Value) async throws -> Value {
        let value: Value
        do {
            value = try await body(self)
        } catch {
            await close()
            throw error
        }
        await close()
        return value
    }
}

/// Teardown given as a closure, for resources that have no `close()` of their own:
/// `try await Teardown { await service.shutdown() }.closing { _ in … }`.
public struct Teardown: AsyncClosable {
    private let action: @Sendable () async -> Void

    public init(_ action: @escaping @Sendable () async -> Void) { self.action = action }

    public func close() async { await action() }
}
