import BenchLMDB
import Foundation

/// Raw LMDB from Swift: a fresh environment with the default (durable) flags, commits of
/// `eventsPerCommit` appended puts under big-endian `UInt64` keys.
struct Baseline {
    struct Run {
        var events: Int
        var commits: Int
        var elapsed: Duration
        var eventsPerSecond: Double { Double(events) / elapsed.seconds }
    }

    var eventsPerCommit = 1_000
    var valueBytes: Int
    var minDuration: Duration
    var minCommits: Int
    var maxDuration: Duration

    func run(_ temp: TempDirs) throws -> Run {
        let dir = try temp.make("baseline")
        defer { temp.remove(dir) }
        let env = try RawLMDB(path: dir, mapSize: 64 << 30)
        defer { env.close() }
        // Varied bytes, as envelopes are (LMDB does not compress, but keep it honest).
        var value = (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let perCommit = eventsPerCommit

        var position: UInt64 = 0
        var commits = 0
        let clock = ContinuousClock()
        let start = clock.now
        var elapsed = Duration.zero
        let dbi = try env.openDatabase("events")
        repeat {
            var txn: OpaquePointer?
            try RawLMDB.check(mdb_txn_begin(env.env, nil, 0, &txn), "mdb_txn_begin")
            do {
                try value.withUnsafeMutableBytes { v in
                    for _ in 0..<perCommit {
                        position += 1
                        var key = position.bigEndian
                        try withUnsafeMutableBytes(of: &key) { k in
                            var mk = MDB_val(mv_size: k.count, mv_data: k.baseAddress)
                            var mv = MDB_val(mv_size: v.count, mv_data: v.baseAddress)
                            try RawLMDB.check(mdb_put(txn, dbi, &mk, &mv, UInt32(MDB_APPEND)), "mdb_put")
                        }
                    }
                }
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            try RawLMDB.check(mdb_txn_commit(txn), "mdb_txn_commit")
            commits += 1
            elapsed = clock.now - start
        } while (elapsed < minDuration || commits < minCommits) && elapsed < maxDuration
        return Run(events: Int(position), commits: commits, elapsed: elapsed)
    }
}

/// An LMDB environment opened with the C API as the store opens its own: durable (no NOSYNC flags),
/// MDB_NOTLS, 32 databases, 512 readers.
final class RawLMDB {
    let env: OpaquePointer

    init(path: String, mapSize: Int = 0, readOnly: Bool = false) throws {
        var env: OpaquePointer?
        try Self.check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw BenchError("mdb_env_create gave no environment") }
        self.env = env
        do {
            try Self.check(mdb_env_set_maxdbs(env, 32), "mdb_env_set_maxdbs")
            try Self.check(mdb_env_set_maxreaders(env, 512), "mdb_env_set_maxreaders")
            if !readOnly { try Self.check(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize") }
            let flags = UInt32(MDB_NOTLS) | (readOnly ? UInt32(MDB_RDONLY) : 0)
            try Self.check(mdb_env_open(env, path, flags, 0o600), "mdb_env_open \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    func close() { mdb_env_close(env) }

    /// Opens (creating) the named database in a write transaction of its own.
    func openDatabase(_ name: String) throws -> MDB_dbi {
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
        var dbi = MDB_dbi()
        let opened = mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi)
        guard opened == 0 else {
            mdb_txn_abort(txn)
            try Self.check(opened, "mdb_dbi_open \(name)")
            return dbi
        }
        try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
        return dbi
    }

    static func check(_ code: Int32, _ what: String) throws {
        guard code != 0 else { return }
        throw BenchError("\(what): \(String(cString: mdb_strerror(code)))")
    }
}
