import EventLog
import CLMDB
import Foundation

/// A thin, typed layer over the LMDB C API.
///
/// It follows the rules in the design notes: one environment per process, opened with `MDB_NOTLS`
/// so read transactions may run on any thread; write transactions begin and commit on one thread
/// inside a synchronous closure and never span an `await`. Transactions and cursors are
/// non-copyable so they cannot escape the closure that owns them.
enum LMDB {}

/// An LMDB return code with a Swift name for the ones Runlog handles.
struct LMDBError: Error, Hashable, CustomStringConvertible, Sendable {
    let code: Int32

    init(code: Int32) { self.code = code }

    static let keyExists = LMDBError(code: MDB_KEYEXIST)
    static let notFound = LMDBError(code: MDB_NOTFOUND)
    static let mapFull = LMDBError(code: MDB_MAP_FULL)
    static let mapResized = LMDBError(code: MDB_MAP_RESIZED)
    static let readersFull = LMDBError(code: MDB_READERS_FULL)
    /// The codes with which LMDB reports a damaged file (rather than a failing system call).
    static let damage: Set<LMDBError> = [
        LMDBError(code: MDB_CORRUPTED), LMDBError(code: MDB_INVALID), LMDBError(code: MDB_PAGE_NOTFOUND),
        LMDBError(code: MDB_VERSION_MISMATCH),
    ]
    /// The environment was closed by this process.
    static let closed = LMDBError(code: EBADF)

    var description: String {
        "LMDB error \(code): \(String(cString: mdb_strerror(code)))"
    }
}

@inline(__always)
func check(_ rc: Int32) throws(LMDBError) {
    if rc != 0 { throw LMDBError(code: rc) }
}

/// A named database inside an environment.
struct LMDBDatabase: Sendable, Hashable {
    let dbi: MDB_dbi
}

/// An open LMDB environment. Open it once per process.
final class LMDBEnvironment: @unchecked Sendable {
    // `@unchecked`: the handle is used under LMDB's own threading rules (MDB_NOTLS), and the
    // resize lock below orders map-size changes against every live transaction of this process.
    let handle: OpaquePointer
    let path: String
    let isReadOnly: Bool
    /// Held shared by every transaction and exclusively while the map size changes, because
    /// `mdb_env_set_mapsize` requires that no transaction of this process is active.
    let resizeLock = ReadWriteLock()
    /// Set under the exclusive lock by `close()`; read under the shared lock.
    private var closed = false

    /// Opens the environment in `path` (a directory that must exist).
    init(
        path: String,
        mapSize: Int,
        maxDatabases: UInt32 = 32,
        maxReaders: UInt32 = 512,
        readOnly: Bool = false,
        syncsMetaPage: Bool = true
    ) throws {
        var env: OpaquePointer?
        try check(mdb_env_create(&env))
        guard let env else { throw LMDBError(code: EINVAL) }
        do {
            try check(mdb_env_set_maxdbs(env, maxDatabases))
            try check(mdb_env_set_maxreaders(env, maxReaders))
            if !readOnly {
                try check(mdb_env_set_mapsize(env, mapSize))
            }
            var flags = UInt32(MDB_NOTLS)
            if readOnly { flags |= UInt32(MDB_RDONLY) }
            if !syncsMetaPage { flags |= UInt32(MDB_NOMETASYNC) }
            // Files LMDB creates (data.mdb, lock.mdb) are private to the owner: the log holds
            // personal data and the hashes of the API keys.
            try check(mdb_env_open(env, path, flags, 0o600))
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.isReadOnly = readOnly
    }

    deinit {
        if !closed { mdb_env_close(handle) }
    }

    /// Closes the environment once every transaction has ended; later transactions throw `closed`.
    func close() {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        if !closed {
            closed = true
            mdb_env_close(handle)
        }
    }

    /// Opens (and when writable, creates) a named database.
    func openDatabase(_ name: String, integerKeys: Bool = false) throws -> LMDBDatabase {
        // Commit even a read-only transaction here: a handle opened in an aborted one is discarded.
        try withTransaction(readOnly: isReadOnly, commit: true) { txn in
            var flags: UInt32 = isReadOnly ? 0 : UInt32(MDB_CREATE)
            if integerKeys { flags |= UInt32(MDB_INTEGERKEY) }
            var dbi: MDB_dbi = 0
            try check(mdb_dbi_open(txn.handle, name, flags, &dbi))
            return LMDBDatabase(dbi: dbi)
        }
    }

    /// Runs `body` in a read-only transaction.
    func read<T>(_ body: (borrowing LMDBTransaction) throws -> T) throws -> T {
        try withTransaction(readOnly: true, body)
    }

    /// Runs `body` in a write transaction that commits (durably, unless the environment was
    /// opened otherwise) when `body` returns and aborts when it throws.
    ///
    /// Call it from one thread only, and never across an `await`.
    func write<T>(_ body: (borrowing LMDBTransaction) throws -> T) throws -> T {
        try withTransaction(readOnly: false, body)
    }

    private func withTransaction<T>(
        readOnly: Bool,
        commit: Bool = false,
        _ body: (borrowing LMDBTransaction) throws -> T
    ) throws -> T {
        while true {
            resizeLock.lockShared()
            if closed {
                resizeLock.unlock()
                throw LMDBError.closed
            }
            var txn: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn)
            if rc == MDB_MAP_RESIZED {
                // Another process grew the map: adopt its size, then try again.
                resizeLock.unlock()
                try adoptMapSize()
                continue
            }
            guard rc == 0, let txn else {
                resizeLock.unlock()
                throw LMDBError(code: rc)
            }
            defer { resizeLock.unlock() }
            let transaction = LMDBTransaction(handle: txn)
            let result: T
            do {
                result = try body(transaction)
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            if readOnly && !commit {
                mdb_txn_abort(txn)
            } else {
                let rc = mdb_txn_commit(txn)
                if rc != 0 { throw LMDBError(code: rc) }
            }
            return result
        }
    }

    private func adoptMapSize() throws {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        try check(mdb_env_set_mapsize(handle, 0))
    }

    /// Sets a new map size. Waits until no transaction of this process is active.
    func setMapSize(_ size: Int) throws {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        try check(mdb_env_set_mapsize(handle, size))
    }

    /// The environment's map size, last page number and reader counts.
    func info() throws -> MDB_envinfo {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info
    }

    /// The page size and tree statistics of the environment's main database.
    func stat() throws -> MDB_stat {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        var stat = MDB_stat()
        mdb_env_stat(handle, &stat)
        return stat
    }

    /// Writes a consistent copy of the environment as of one read transaction to the directory
    /// `path` (which must exist and hold no `data.mdb`); `compact` leaves out free pages and
    /// renumbers the rest (`mdb_env_copy2` with `MDB_CP_COMPACT`). Writers go on meanwhile.
    func copy(to path: String, compact: Bool) throws {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        try check(mdb_env_copy2(handle, path, compact ? UInt32(MDB_CP_COMPACT) : 0))
    }

    /// Flushes the data buffers to disk (`fdatasync`).
    func sync(force: Bool = true) throws {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        if closed { throw LMDBError.closed }
        try check(mdb_env_sync(handle, force ? 1 : 0))
    }
}

/// A transaction; valid only inside the closure that received it.
struct LMDBTransaction: ~Copyable {
    let handle: OpaquePointer

    /// The id of the transaction: for a read transaction, the id of the commit it reads.
    var id: UInt64 { UInt64(mdb_txn_id(handle)) }

    /// Returns the value stored under `key`, valid until the transaction ends, or nil.
    func get(_ db: LMDBDatabase, _ key: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(handle, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    /// Stores `value` under `key`.
    func put(
        _ db: LMDBDatabase,
        _ key: UnsafeRawBufferPointer,
        _ value: UnsafeRawBufferPointer,
        append: Bool = false
    ) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_put(handle, db.dbi, &k, &v, append ? UInt32(MDB_APPEND) : 0))
    }

    /// Puts `value` under `key` only when the key is absent; false when it was there (nothing
    /// changed).
    func put(
        _ db: LMDBDatabase,
        _ key: UnsafeRawBufferPointer,
        _ value: UnsafeRawBufferPointer,
        ifAbsent: Bool
    ) throws -> Bool {
        guard ifAbsent else {
            try put(db, key, value)
            return true
        }
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(handle, db.dbi, &k, &v, UInt32(MDB_NOOVERWRITE))
        if rc == MDB_KEYEXIST { return false }
        try check(rc)
        return true
    }

    /// Reserves `count` bytes under `key` and lets `fill` write them in place (no copy).
    func putReserved(
        _ db: LMDBDatabase,
        _ key: UnsafeRawBufferPointer,
        count: Int,
        append: Bool = false,
        _ fill: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: count, mv_data: nil)
        var flags = UInt32(MDB_RESERVE)
        if append { flags |= UInt32(MDB_APPEND) }
        try check(mdb_put(handle, db.dbi, &k, &v, flags))
        try fill(UnsafeMutableRawBufferPointer(start: v.mv_data, count: count))
    }

    /// Deletes `key`; returns false when it was not there.
    @discardableResult
    func delete(_ db: LMDBDatabase, _ key: UnsafeRawBufferPointer) throws -> Bool {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = mdb_del(handle, db.dbi, &k, nil)
        if rc == MDB_NOTFOUND { return false }
        try check(rc)
        return true
    }

    /// Deletes every entry of `db` (the database stays).
    func clear(_ db: LMDBDatabase) throws {
        try check(mdb_drop(handle, db.dbi, 0))
    }

    /// The number of entries in `db`.
    func count(_ db: LMDBDatabase) throws -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(handle, db.dbi, &stat))
        return stat.ms_entries
    }

    /// Opens a cursor on `db`; it closes when it goes out of scope.
    func cursor(_ db: LMDBDatabase) throws -> LMDBCursor {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, db.dbi, &cursor))
        return LMDBCursor(handle: cursor!)
    }
}

/// A position in a database's key order.
struct LMDBCursor: ~Copyable {
    let handle: OpaquePointer

    deinit { mdb_cursor_close(handle) }

    typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    private func move(_ op: MDB_cursor_op, key: UnsafeRawBufferPointer? = nil) throws -> Entry? {
        var k = MDB_val()
        if let key {
            k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        }
        var v = MDB_val()
        let rc = mdb_cursor_get(handle, &k, &v, op)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return (UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    func first() throws -> Entry? { try move(MDB_FIRST) }
    func last() throws -> Entry? { try move(MDB_LAST) }
    func next() throws -> Entry? { try move(MDB_NEXT) }
    func previous() throws -> Entry? { try move(MDB_PREV) }
    /// Positions at the first key greater than or equal to `key`.
    func seek(atLeast key: UnsafeRawBufferPointer) throws -> Entry? { try move(MDB_SET_RANGE, key: key) }
    /// Positions at exactly `key`.
    func seek(exactly key: UnsafeRawBufferPointer) throws -> Entry? { try move(MDB_SET_KEY, key: key) }
}

/// A pthread read-write lock.
final class ReadWriteLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() {
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func lockShared() { pthread_rwlock_rdlock(lock) }
    func lockExclusive() { pthread_rwlock_wrlock(lock) }
    func unlock() { pthread_rwlock_unlock(lock) }
}

extension EventStoreError {
    static func storage(_ error: LMDBError, _ context: String) -> EventStoreError {
        EventStoreError(.storage, "\(context): \(error)")
    }
}
