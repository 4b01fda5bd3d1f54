public import EventLog
import Foundation

/// An append-only, hash-chained event log in one LMDB environment.
///
/// Open one store per data directory per process. The first process to open a directory for
/// writing holds it until it closes or exits; others may open it read-only at the same time.
/// Appends are answered only after their transaction is durably committed; appends waiting at the
/// same time share one transaction (group commit) on a dedicated writer thread.
public final class LMDBEventStore: EventStore, Sendable {
    /// Settings for opening a store.
    public struct Options: Sendable {
        /// Open without the writer lock; appends throw `readOnly`.
        public var readOnly: Bool
        /// The initial LMDB map size in bytes. Unused map costs nothing but address space.
        public var mapSize: Int
        /// The map doubles when full, up to this size; past it appends fail with `mapFull`.
        public var maxMapSize: Int
        /// The most events one group commit takes (one append larger than this commits alone).
        public var maxBatchEvents: Int
        /// The most payload bytes one group commit takes.
        public var maxBatchBytes: Int
        /// How often a read-only store looks for events appended by the writing process.
        public var pollInterval: Duration
        /// The longest the writer holds a commit open for the callers it answered last time to
        /// append again (group commit fill); it stops sooner when they are all back or when no
        /// new append arrives for a short gap. Zero commits whatever is queued at once.
        public var collectWindow: Duration
        /// While background appends are deferred (`deferBackground`), the share of the writer's
        /// time they still get: after a commit of them that took t, the next waits
        /// t × (1 − share) / share. Real-time work never starves them, and a real-time append waits
        /// behind one of their commits only that rarely.
        public var backgroundShare: Double
        /// The most events of background appends one commit takes (one larger append commits
        /// alone): with `maxBackgroundBytes`, how long a real-time append that arrives during
        /// such a commit can wait.
        public var maxBackgroundEvents: Int
        /// The most payload bytes of background appends one commit takes (one larger append
        /// commits alone). One event can carry much work (an importer's batch of 200 rows is one
        /// event of about 9 KB), so this bounds a background commit where the event count does
        /// not: 40 KiB is four such batches, a few milliseconds of commit here (docs/importers.md:
        /// an import's rows per second came out 3–4% lower at the median, within the noise).
        public var maxBackgroundBytes: Int
        /// While background appends are deferred, those at the head of their queue ride along
        /// with a commit of normal appends up to this many payload bytes. One fsync then commits
        /// both, where a commit of their own would make the next real-time append wait for it;
        /// a few small appends (a batch run's steps) add little to the commit they join, and a
        /// larger one (an importer's batch of rows) waits for its share of the writer's time.
        public var rideAlongBytes: Int
        /// While background appends are deferred, they also commit as when not deferred once no
        /// normal append has committed for this long: real-time work that waits on something
        /// else (a run's HTTP step) does not hold them back, while real-time runs that commit
        /// one after another (a fraction of a millisecond apart here) leave no such gap.
        public var backgroundGap: Duration
        /// Walk every B-tree page of the data file at open and check its header before LMDB reads
        /// it, so a zeroed or overwritten page ends the open with `corrupted` instead of an LMDB
        /// assertion that aborts the process. Costs one read of the file's pages.
        public var checksPages: Bool
        /// A writable open checks that the last stored event is the recorded head and recomputes
        /// the hash chain of this many events at the end of the log (0: only the head's own hash).
        public var verifyTailEvents: Int
        /// A writable open whose tail check fails goes ahead anyway instead of throwing
        /// `corrupted`: new events then chain onto a log that does not verify.
        public var allowBrokenChain: Bool
        /// Whether a commit also syncs LMDB's meta page (two syncs per commit). Without it
        /// (`MDB_NOMETASYNC`, one sync) a system crash can undo the last commits, never the file's
        /// consistency: for a copy that is made again from elsewhere (a PostgreSQL node's mirror),
        /// never for a log of record.
        public var syncsMetaPage: Bool = true

        public init(
            readOnly: Bool = false,
            mapSize: Int = 4 << 30,
            maxMapSize: Int = 1 << 40,
            maxBatchEvents: Int = 10_000,
            maxBatchBytes: Int = 64 << 20,
            pollInterval: Duration = .milliseconds(20),
            collectWindow: Duration = .milliseconds(1),
            backgroundShare: Double = 0.002,
            maxBackgroundEvents: Int = 2_000,
            maxBackgroundBytes: Int = 40 << 10,
            rideAlongBytes: Int = 8 << 10,
            backgroundGap: Duration = .milliseconds(5),
            checksPages: Bool = true,
            verifyTailEvents: Int = 10_000,
            allowBrokenChain: Bool = false
        ) {
            self.readOnly = readOnly
            self.mapSize = mapSize
            self.maxMapSize = maxMapSize
            self.maxBatchEvents = maxBatchEvents
            self.maxBatchBytes = maxBatchBytes
            self.pollInterval = pollInterval
            self.collectWindow = collectWindow
            self.backgroundShare = min(1, max(0.001, backgroundShare))
            self.maxBackgroundEvents = max(1, maxBackgroundEvents)
            self.maxBackgroundBytes = max(1, maxBackgroundBytes)
            self.rideAlongBytes = max(0, rideAlongBytes)
            self.backgroundGap = max(.zero, backgroundGap)
            self.checksPages = checksPages
            self.verifyTailEvents = max(0, verifyTailEvents)
            self.allowBrokenChain = allowBrokenChain
        }
    }


    public let directory: String
    public var location: String { directory }
    public var isReadOnly: Bool { writer == nil }
    public let options: Options
    let env: LMDBEnvironment
    let dbs: Databases
    let lock: DirectoryLock?
    let writer: Writer?
    let notifier = HeadNotifier()
    let projections = ProjectionRegistry()

    struct Databases: Sendable {
        /// position (UInt64 BE) → envelope
        let events: LMDBDatabase
        /// stream name, 0, version (UInt64 BE) → position (UInt64 BE)
        let streams: LMDBDatabase
        /// stream name → current version (UInt64 BE)
        let streamHeads: LMDBDatabase
        /// event id (16 bytes) → position (UInt64 BE)
        let eventIds: LMDBDatabase
        /// "head" → ``LogHead``; "format" → UInt32
        let meta: LMDBDatabase
        /// checkpoint name → position (UInt64 BE)
        let checkpoints: LMDBDatabase
        /// name → bytes, outside the hash chain (see `putVaultEntry`)
        let vault: LMDBDatabase
        /// name → bytes, outside the hash chain (see `putRequestRecord`); nil in a read-only open
        /// of a directory written before the table existed
        let requests: LMDBDatabase?

        func table(_ table: SideTable) -> LMDBDatabase? {
            switch table {
            case .vault: vault
            case .requests: requests
            }
        }
    }

    /// The key-value tables kept beside the log, outside the hash chain.
    enum SideTable: Sendable {
        case vault, requests
    }

    /// Opens (and, when writable, creates) the store in `directory`.
    ///
    /// A new directory is made with mode 0700 and its files with 0600. Before LMDB maps an
    /// existing `data.mdb`, its meta pages and size are checked (an empty or cut-short file throws
    /// `corrupted`); with `checksPages`, every page is checked too. A writable open refuses a
    /// directory whose `data.mdb` is missing while other files show a log was there, and checks
    /// the tail of the chain (`verifyTailEvents`, `allowBrokenChain`).
    public init(directory: String, options: Options = Options()) throws(EventStoreError) {
        self.directory = directory
        self.options = options
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if !fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
            if options.readOnly {
                throw EventStoreError(.dataDirectoryMissing, "data directory \(directory) does not exist")
            }
            try Self.makePrivateDirectory(directory)
        } else if !isDirectory.boolValue {
            throw EventStoreError.invalid("data directory", directory, "must be a directory")
        }
        let dataPath = directory + "/" + DataFile.name
        if options.readOnly && !fm.fileExists(atPath: dataPath) {
            throw EventStoreError(.dataDirectoryMissing, "data directory \(directory) holds no Runlog data")
        }
        lock = options.readOnly ? nil : try DirectoryLock(directory: directory)
        let existing = try DataFile.inspect(path: dataPath)
        if existing == nil && !options.readOnly {
            try Self.refuseMissingLog(directory)
        }
        let env: LMDBEnvironment
        let dbs: Databases
        do {
            env = try LMDBEnvironment(path: directory, mapSize: options.mapSize, readOnly: options.readOnly,
                                      syncsMetaPage: options.syncsMetaPage)
            if !options.readOnly { Self.makePrivate(directory) }
            if existing != nil && options.checksPages {
                try Self.checkPages(env, path: dataPath)
            }
            dbs = Databases(
                events: try env.openDatabase("events"),
                streams: try env.openDatabase("streams"),
                streamHeads: try env.openDatabase("stream_heads"),
                eventIds: try env.openDatabase("event_ids"),
                meta: try env.openDatabase("meta"),
                checkpoints: try env.openDatabase("checkpoints"),
                vault: try env.openDatabase("vault"),
                requests: options.readOnly ? try? env.openDatabase("requests") : try env.openDatabase("requests")
            )
        } catch let error as EventStoreError {
            throw error
        } catch let error as LMDBError where LMDBError.damage.contains(error) {
            throw DataFile.damaged(dataPath, "LMDB says: \(error)")
        } catch let error as LMDBError {
            throw .storage(error, "cannot open the LMDB environment in \(directory)")
        } catch {
            throw EventStoreError(.storage, "cannot open \(directory): \(error)")
        }
        self.env = env
        self.dbs = dbs
        let head = try Self.wrap("read the log head") { try env.read { txn in try LogHead.read(txn, dbs) } }
        notifier.advance(to: head.position)
        if !options.readOnly {
            let report = try Self.wrap("check the end of the log") {
                try env.read { txn in try Self.checkTail(txn, dbs, count: options.verifyTailEvents) }
            }
            if case .broken(let position, let reason) = report, !options.allowBrokenChain {
                env.close()
                throw EventStoreError(
                    .corrupted,
                    "the hash chain of \(dataPath) does not verify at position \(position): \(reason). Nothing "
                        + "is written on a broken chain: run `runlog log verify` and restore the data directory "
                        + "from a backup, or start with --allow-broken-chain to append to it anyway"
                )
            }
        }
        if options.readOnly {
            writer = nil
        } else {
            writer = Writer(env: env, dbs: dbs, head: head, options: options, notifier: notifier, registry: projections)
        }
    }

    deinit {
        close()
    }

    /// Finishes the appends already queued, stops the writer, releases the directory and ends
    /// every subscription. Further calls throw `closed`.
    public func close() {
        writer?.stop()
        notifier.close()
        env.close()
        lock?.release()
    }

    // MARK: Head


    /// Counters of the group commits since this store was opened (zero when read-only).
    public var writerStatistics: WriterStatistics { writer?.stats ?? WriterStatistics() }

    /// The committed head of the log.
    public func head() throws(EventStoreError) -> LogHead {
        try read("read the log head") { txn in try LogHead.read(txn, dbs) }
    }

    // MARK: Helpers

    /// Runs `body` in a read transaction, turning LMDB errors into `EventStoreError`.
    func read<T>(_ what: String, _ body: (borrowing LMDBTransaction) throws -> T) throws(EventStoreError) -> T {
        try Self.wrap(what) {
            do {
                return try env.read(body)
            } catch let error as LMDBError where LMDBError.damage.contains(error) {
                throw DataFile.damaged(directory + "/" + DataFile.name, "cannot \(what): LMDB says: \(error)")
            }
        }
    }

    static func wrap<T>(_ what: String, _ body: () throws -> T) throws(EventStoreError) -> T {
        do {
            return try body()
        } catch let error as EventStoreError {
            throw error
        } catch let error as LMDBError {
            if error == .closed { throw .closedStore }
            throw .storage(error, "cannot \(what)")
        } catch {
            throw EventStoreError(.storage, "cannot \(what): \(error)")
        }
    }

    /// Decodes the envelope stored at `position` inside `txn`, or nil when there is none.
    func envelope(at position: UInt64, in txn: borrowing LMDBTransaction) throws -> Envelope.View? {
        guard let bytes = try Keys.withUInt64(position, { try txn.get(dbs.events, $0) }) else { return nil }
        return try Envelope.View(bytes)
    }
}

/// The head as the store keeps it: 48 bytes under `head` in the meta table.
extension LogHead {
        static let key = Array("head".utf8)
        static let size = 48

        static func read(_ txn: borrowing LMDBTransaction, _ dbs: LMDBEventStore.Databases) throws -> LogHead {
            guard let bytes = try key.withUnsafeBytes({ try txn.get(dbs.meta, $0) }), bytes.count == size else {
                return .empty
            }
            return LogHead(
                position: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                hash: EventHash(UnsafeRawBufferPointer(rebasing: bytes[8..<40])),
                recordedAt: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 40, as: Int64.self))
            )
        }

        func write(_ txn: borrowing LMDBTransaction, _ dbs: LMDBEventStore.Databases) throws {
            var bytes = [UInt8](repeating: 0, count: LogHead.size)
            bytes.withUnsafeMutableBytes { out in
                out.storeBytes(of: position.littleEndian, toByteOffset: 0, as: UInt64.self)
                hash.write(to: out, at: 8)
                out.storeBytes(of: recordedAt.littleEndian, toByteOffset: 40, as: Int64.self)
            }
            try LogHead.key.withUnsafeBytes { k in try bytes.withUnsafeBytes { v in try txn.put(dbs.meta, k, v) } }
        }
    }
