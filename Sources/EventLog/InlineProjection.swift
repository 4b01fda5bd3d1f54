/// A read model kept in tables beside the log and changed in the same write transaction as
/// the events it folds (an inline projection, as Marten keeps them): once an append returns, its
/// events are in the projection, and a crash can never leave one without the other.
///
/// Attach it to a writable store with `EventStore.attach(_:)`: the writer first folds in the
/// events the tables have not seen (all of them the first time, or when `version` changed), then
/// every event it writes, on its own thread, inside the commit.
public protocol InlineProjection: Sendable {
    /// Names the projection; its tables are `<name>.<table>`.
    var name: String { get }
    /// The layout and meaning of the tables. Tables built with another version are emptied and
    /// built again from the log when the projection is attached.
    var version: UInt32 { get }
    /// The tables' names, in the order `ProjectionTables` numbers them.
    var tables: [String] { get }
    /// Folds one event in. Throw only what the tables throw (a store failure aborts the
    /// whole commit); an event the projection cannot use changes nothing.
    func apply(_ event: EventView, _ tables: any ProjectionTables) throws

    /// Called on the writer's thread when a transaction that applied events to the projection
    /// did not commit (it is tried again, or failed): a projection that keeps anything of what
    /// it applied outside its tables (a cache) must forget it.
    func rolledBack()
}

extension InlineProjection {
    public func rolledBack() {}
}

/// The tables of one inline projection inside one transaction of the store: read-write while
/// the writer applies events, read-only in `EventStore.readProjection`. Keys and values are bytes,
/// tables are numbered in the order `InlineProjection.tables` names them; a value read is valid
/// until the transaction ends.
public protocol ProjectionTables {
    /// The value under `key` in table `table`, or nil.
    func get(_ table: Int, _ key: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer?
    /// Stores `value` under `key`.
    func put(_ table: Int, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws
    /// Deletes `key`; false when it was not there.
    @discardableResult
    func delete(_ table: Int, _ key: UnsafeRawBufferPointer) throws -> Bool
    /// Calls `body` with the entries from the first key ≥ `from` (from the first key when nil),
    /// in key order, until it returns false.
    func scan(
        _ table: Int,
        from: UnsafeRawBufferPointer?,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws
    /// The number of entries in table `table`.
    func count(_ table: Int) throws -> Int
}

extension ProjectionTables {
    /// Calls `body` with the entries whose key begins with `prefix`, in key order, until it
    /// returns false.
    public func scan(
        _ table: Int,
        prefix: UnsafeRawBufferPointer,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try scan(table, from: prefix) { key, value in
            guard key.count >= prefix.count, key.prefix(prefix.count).elementsEqual(prefix) else { return false }
            return try body(key, value)
        }
    }
}
