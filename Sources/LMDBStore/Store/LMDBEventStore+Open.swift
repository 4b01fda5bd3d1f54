import EventLog
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The checks of `LMDBEventStore.init`: private files, a missing or damaged data file, the chain's tail.
extension LMDBEventStore {
    /// The files of a data directory that only a Runlog process that held it makes.
    static let traces = ["lock.mdb", "secret.key", "uploads"]

    /// Makes `directory` (and missing parents) with mode 0700 for the directory itself.
    static func makePrivateDirectory(_ directory: String) throws(EventStoreError) {
        let parent = (directory as NSString).deletingLastPathComponent
        do {
            if !parent.isEmpty {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            }
        } catch {
            throw EventStoreError(.storage, "cannot create data directory \(directory): \(error)")
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw EventStoreError(.storage,
                                  "cannot create data directory \(directory): \(String(cString: strerror(errno)))")
        }
    }

    /// Takes the group and other permissions off the files the store writes (older versions made
    /// them 0644); the directory's own mode is the operator's (`runlog serve` checks it).
    static func makePrivate(_ directory: String) {
        for name in [DataFile.name, "lock.mdb", DirectoryLock.fileName] {
            let path = directory + "/" + name
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o077 != 0 else { continue }
            _ = chmod(path, info.st_mode & 0o700)
        }
    }

    /// Throws when a writable open would make a new, empty log in a directory that shows a log
    /// was there: its `data.mdb` was deleted or moved.
    static func refuseMissingLog(_ directory: String) throws(EventStoreError) {
        let found = traces.filter { FileManager.default.fileExists(atPath: directory + "/" + $0) }
        guard !found.isEmpty else { return }
        throw EventStoreError(
            .corrupted,
            "\(directory)/\(DataFile.name) is missing, but the directory holds \(found.joined(separator: ", ")): "
                + "a log was kept here. Restore the data directory from a backup (docs/operations.md, \"Backup\"); "
                + "to start a new, empty log here instead, move those files away first"
        )
    }

    /// Walks the pages of the snapshot of a fresh read transaction (which keeps a writer from
    /// reusing them meanwhile) before any database is opened.
    static func checkPages(_ env: LMDBEnvironment, path: String) throws {
        for _ in 0..<10 {
            let walk = try env.read { txn in try DataFile.checkPages(path: path, txnid: txn.id) }
            if case .checked = walk { return }
        }
        throw EventStoreError(.storage, "cannot check the pages of \(path): a writer commits faster than the "
                              + "check can pin a snapshot; try again")
    }

    /// Checks the end of the log in `txn`: the last stored position is the recorded head, the
    /// last `count` events chain to one another, and the last one's hash is the head's.
    static func checkTail(_ txn: borrowing LMDBTransaction, _ dbs: Databases, count: Int) throws -> VerifyReport {
        let head = try LogHead.read(txn, dbs)
        let cursor = try txn.cursor(dbs.events)
        guard let lastEntry = try cursor.last() else {
            if head.position == 0 { return .intact(count: 0, head: head.hash) }
            return .broken(position: 1, reason: "the log holds no event, but its recorded head is position "
                           + "\(head.position): the log is shorter than its head")
        }
        guard let last = Keys.uint64(lastEntry.key) else {
            return .broken(position: head.position, reason: "a key in the events database is not a position")
        }
        guard last == head.position else {
            let shorter = last < head.position
            return .broken(
                position: min(last, head.position) + 1,
                reason: "the log ends at position \(last), but its recorded head is position \(head.position): "
                    + "the log is \(shorter ? "shorter" : "longer") than its head"
            )
        }
        let first = head.position > UInt64(count) ? head.position - UInt64(max(count, 1)) + 1 : 1
        var previous: EventHash?
        var entry = try Keys.withUInt64(first) { try cursor.seek(atLeast: $0) }
        var expected = first
        while let (key, value) = entry {
            let before = previous ?? (first == 1 ? EventHash.zero : nil)
            switch checkEntry(key: key, value: value, expected: expected, previous: before) {
            case .failure(let failure): return .broken(position: failure.position, reason: failure.reason)
            case .success(let hash): previous = hash
            }
            expected += 1
            entry = try cursor.next()
        }
        guard let previous, expected == head.position + 1 else {
            return .broken(position: expected, reason: "position \(expected) is missing")
        }
        guard previous == head.hash else {
            return .broken(position: head.position, reason: "the recorded head hash \(head.hash) is not the hash of "
                           + "the last event (\(previous))")
        }
        return .intact(count: head.position, head: previous)
    }
}
