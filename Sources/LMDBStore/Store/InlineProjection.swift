public import EventLog
import Synchronization

/// `ProjectionTables` inside one LMDB transaction: read-write on the writer's thread, read-only in
/// `LMDBEventStore.readProjection`.
struct LMDBProjectionTables: ProjectionTables {
    let txn: OpaquePointer
    let dbs: [LMDBDatabase]

    private var transaction: LMDBTransaction { LMDBTransaction(handle: txn) }

    /// The value under `key` in table `table`, or nil.
    public func get(_ table: Int, _ key: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
        try transaction.get(dbs[table], key)
    }

    /// Stores `value` under `key`.
    public func put(_ table: Int, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        try transaction.put(dbs[table], key, value)
    }

    /// Deletes `key`; false when it was not there.
    @discardableResult
    public func delete(_ table: Int, _ key: UnsafeRawBufferPointer) throws -> Bool {
        try transaction.delete(dbs[table], key)
    }

    /// Calls `body` with the entries from the first key ≥ `from` (from the first key when nil),
    /// in key order, until it returns false.
    public func scan(
        _ table: Int,
        from: UnsafeRawBufferPointer?,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let cursor = try transaction.cursor(dbs[table])
        var entry = try from.map { try cursor.seek(atLeast: $0) } ?? cursor.first()
        while let (key, value) = entry, try body(key, value) {
            entry = try cursor.next()
        }
    }

    /// The number of entries in table `table`.
    public func count(_ table: Int) throws -> Int {
        try transaction.count(dbs[table])
    }
}

/// A projection attached to a store, with its tables opened.
struct AttachedProjection: Sendable {
    let projection: any InlineProjection
    let dbs: [LMDBDatabase]

    /// `meta` key of the projection's version and position.
    var metaKey: [UInt8] { Array("projection/\(projection.name)".utf8) }

    /// The version and last position folded in, as stored (nil when never stored).
    func stored(_ txn: borrowing LMDBTransaction, _ meta: LMDBDatabase) throws -> (version: UInt32, position: UInt64)? {
        guard let bytes = try metaKey.withUnsafeBytes({ try txn.get(meta, $0) }), bytes.count == 12 else { return nil }
        return (UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
    }

    func store(position: UInt64, _ txn: borrowing LMDBTransaction, _ meta: LMDBDatabase) throws {
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes.withUnsafeMutableBytes { out in
            out.storeBytes(of: projection.version.littleEndian, toByteOffset: 0, as: UInt32.self)
            out.storeBytes(of: position.littleEndian, toByteOffset: 4, as: UInt64.self)
        }
        try metaKey.withUnsafeBytes { k in try bytes.withUnsafeBytes { v in try txn.put(meta, k, v) } }
    }

    // Not inlined: Swift 6.3's optimizer crashes inlining this call (a noncopyable value
    // borrowed into an existential's method) into the writer's catch-up closure.
    @inline(never)
    func apply(_ view: Envelope.View, _ txn: borrowing LMDBTransaction, decoded: (any Sendable)? = nil) throws {
        try projection.apply(EventView(view: view, decoded: decoded), LMDBProjectionTables(txn: txn.handle, dbs: dbs))
    }
}

/// The projections attached to a store, by name (read by any thread, set by the writer).
final class ProjectionRegistry: Sendable {
    private let attached = Mutex<[String: AttachedProjection]>([:])

    subscript(name: String) -> AttachedProjection? { attached.withLock { $0[name] } }

    func add(_ projection: AttachedProjection) {
        attached.withLock { $0[projection.projection.name] = projection }
    }
}

extension LMDBEventStore {
    /// Attaches an inline projection (see `InlineProjection`). On a writable store it returns
    /// once the projection has folded in the whole log; attaching one already attached does
    /// nothing. A read-only store can only read a projection the writing process keeps: it
    /// throws `readOnly` when the tables were never built or were built by another version.
    public func attach(_ projection: any InlineProjection) async throws(EventStoreError) {
        if let attached = projections[projection.name] {
            guard attached.projection.version == projection.version else {
                throw EventStoreError.invalid("projection", projection.name,
                                              "already attached at version \(attached.projection.version)")
            }
            return
        }
        guard let writer else { return try attachReadOnly(projection) }
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                writer.submit(.attach(projection, continuation))
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.storage, "cannot attach projection \(projection.name): \(error)")
        }
    }

    private func attachReadOnly(_ projection: any InlineProjection) throws(EventStoreError) {
        let notBuilt = EventStoreError(
            .readOnly, "projection \(projection.name) version \(projection.version) is not built in \(directory); "
                + "the server builds it when it starts"
        )
        let attached: AttachedProjection
        do {
            attached = AttachedProjection(
                projection: projection,
                dbs: try projection.tables.map { try env.openDatabase("\(projection.name).\($0)") }
            )
        } catch {
            throw notBuilt
        }
        let stored = try read("read projection \(projection.name)") { txn in try attached.stored(txn, dbs.meta) }
        guard stored?.version == projection.version else { throw notBuilt }
        projections.add(attached)
    }

    /// Runs `body` on the tables of the attached projection `name` in one read transaction: what
    /// it sees is the projection as of one committed head (the same transaction's events).
    public func readProjection<T>(
        _ name: String,
        _ body: (any ProjectionTables) throws -> T
    ) throws(EventStoreError) -> T {
        guard let attached = projections[name] else {
            throw EventStoreError.invalid("projection", name, "is not attached to this store")
        }
        return try read("read projection \(name)") { txn in
            try body(LMDBProjectionTables(txn: txn.handle, dbs: attached.dbs))
        }
    }

    /// The position the attached projection `name` has folded in up to (the head it last
    /// committed with, or where a read-only store's writer left it).
    public func projectionPosition(_ name: String) throws(EventStoreError) -> UInt64? {
        return try read("read projection \(name)") { txn in
            // Inside the read even when not attached, so that a closed store throws `closed`.
            guard let attached = projections[name] else { return nil }
            return try attached.stored(txn, dbs.meta)?.position
        }
    }
}
